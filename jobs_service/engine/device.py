"""Device-plane operations: get-pending, start-next, describe, update."""

from __future__ import annotations

from ..errors import InvalidRequest, InvalidStateTransition, ResourceNotFound, VersionMismatch
from ..models import ExecutionStatus, JobExecution
from ..mqtt_payloads import execution_state
from ..states import Verdict, device_update_verdict, is_terminal
from .base import EngineBase, Outcome, no_execution

__all__ = ["NEXT", "DeviceOps"]

NEXT = "$next"


class DeviceOps(EngineBase):
    def pending(self, thing_name: str) -> list[JobExecution]:
        """The thing's pending executions in "next" order (empty for unknown things)."""
        return self.store.pending_executions(thing_name)

    def start_next(self, thing_name: str, status_details: dict[str, str] | None) -> Outcome:
        """Start the head of the pending list; an IN_PROGRESS head is returned unchanged."""

        def change() -> JobExecution | None:
            pending = self.store.pending_executions(thing_name)
            if not pending:
                return None
            head = pending[0]
            if head.status is ExecutionStatus.IN_PROGRESS:
                return head
            now = self.clock.now()
            started = head.model_copy(
                update={
                    "status": ExecutionStatus.IN_PROGRESS,
                    "started_at": now,
                    "last_updated_at": now,
                    "version_number": head.version_number + 1,
                    "status_details": head.status_details if status_details is None else status_details,
                }
            )
            self.store.save_execution(started)
            return started

        return self._watching([thing_name], change)

    def describe(self, thing_name: str, job_id: str, execution_number: int | None) -> JobExecution | None:
        """One execution of a job on a thing; for ``$next`` the head (or None)."""
        if job_id == NEXT:
            pending = self.store.pending_executions(thing_name)
            return pending[0] if pending else None
        execution = self.store.get_execution(job_id, thing_name, execution_number)
        if execution is None:
            raise ResourceNotFound(no_execution(job_id, thing_name, execution_number))
        return execution

    def update(
        self,
        thing_name: str,
        job_id: str,
        *,
        status: ExecutionStatus,
        status_details: dict[str, str] | None,
        expected_version: int | None,
        execution_number: int | None,
    ) -> Outcome:
        """A device's UpdateJobExecution; the version check happens inside the transaction."""

        def change() -> JobExecution:
            current = self.store.get_execution(job_id, thing_name, execution_number)
            if current is None:
                raise ResourceNotFound(no_execution(job_id, thing_name, execution_number))
            verdict = device_update_verdict(current.status, status)
            if verdict is Verdict.NOT_A_DEVICE_STATUS:
                raise InvalidRequest(
                    f"A device cannot set status {status.value};"
                    " use IN_PROGRESS, SUCCEEDED, FAILED or REJECTED"
                )
            if verdict is Verdict.FROM_TERMINAL:
                raise InvalidStateTransition(
                    f"Job execution {job_id} on {thing_name} is {current.status.value};"
                    f" it cannot move to {status.value}",
                    execution_state=execution_state(current),
                )
            if expected_version is not None and expected_version != current.version_number:
                raise VersionMismatch(
                    f"Job execution {job_id} on {thing_name} is at version {current.version_number},"
                    f" not {expected_version}",
                    execution_state=execution_state(current),
                )
            now = self.clock.now()
            first_start = current.started_at is None and status is ExecutionStatus.IN_PROGRESS
            updated = current.model_copy(
                update={
                    "status": status,
                    "status_details": current.status_details if status_details is None else status_details,
                    "started_at": now if first_start else current.started_at,
                    "last_updated_at": now,
                    "version_number": current.version_number + 1,
                }
            )
            self.store.save_execution(updated)
            if is_terminal(status):
                self._complete_if_done(job_id, now)
            return updated

        return self._watching([thing_name], change)
