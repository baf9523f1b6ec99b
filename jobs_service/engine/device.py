"""Device-plane operations: get-pending, start-next, describe, update."""

from __future__ import annotations

from ..errors import (
    InvalidRequest,
    InvalidStateTransition,
    ResourceNotFound,
    TerminalStateReached,
    VersionMismatch,
)
from ..models import ExecutionStatus, JobExecution, JobStatus
from ..states import Actor, Verdict, device_update_verdict, is_terminal, moved
from .base import EngineCore, Outcome, Part, no_execution
from .lifecycle import LifecycleOps

__all__ = ["NEXT", "DeviceOps"]

NEXT = "$next"


class DeviceOps(Part):
    def __init__(self, core: EngineCore, lifecycle: LifecycleOps) -> None:
        super().__init__(core)
        self.lifecycle = lifecycle

    def pending(self, thing_name: str) -> list[JobExecution]:
        """The thing's pending executions in "next" order (empty for unknown things)."""
        return self.store.jobs.pending_executions(thing_name)

    def start_next(
        self, thing_name: str, status_details: dict[str, str] | None, step_timeout_minutes: int | None = None
    ) -> Outcome:
        """Start the head of the pending list; an IN_PROGRESS head is returned unchanged.

        ``status_details`` and ``step_timeout_minutes`` apply only when the head
        moves QUEUED→IN_PROGRESS.
        """

        def change() -> JobExecution | None:
            pending = self.store.jobs.pending_executions(thing_name)
            if not pending:
                return None
            head = pending[0]
            if head.status is ExecutionStatus.IN_PROGRESS:
                return head
            now = self.clock.now()
            started = moved(
                head,
                ExecutionStatus.IN_PROGRESS,
                Actor.DEVICE,
                now,
                started_at=now,
                status_details=head.status_details if status_details is None else status_details,
                step_timeout_at=_step_deadline(head.step_timeout_at, step_timeout_minutes, now),
                timeout_at=self.lifecycle.started_timers(head.job_id, now),
            )
            self.core.save_execution(head, started)
            return started

        return self.core.watching([thing_name], change)

    def describe(self, thing_name: str, job_id: str, execution_number: int | None) -> JobExecution | None:
        """One execution of a job on a thing; for ``$next`` the head (or None).

        A terminal execution of a job that is no longer active (COMPLETED or
        CANCELED) is TerminalStateReached (decisions.md D27).
        """
        if job_id == NEXT:
            pending = self.store.jobs.pending_executions(thing_name)
            return pending[0] if pending else None
        execution = self.store.jobs.get_execution(job_id, thing_name, execution_number)
        if execution is None:
            raise ResourceNotFound(no_execution(job_id, thing_name, execution_number))
        if is_terminal(execution.status):
            job = self.store.jobs.get_job(job_id)
            if job is not None and job.status in (JobStatus.COMPLETED, JobStatus.CANCELED):
                raise TerminalStateReached(
                    f"Job {job_id} is {job.status.value} and its execution on {thing_name}"
                    f" is {execution.status.value}"
                )
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
        step_timeout_minutes: int | None = None,
    ) -> Outcome:
        """A device's UpdateJobExecution; the version check happens inside the transaction.

        ``step_timeout_minutes`` replaces the step timer; -1 stops it.
        """

        def change() -> JobExecution:
            current = self.store.jobs.get_execution(job_id, thing_name, execution_number)
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
                    execution=current,
                )
            if expected_version is not None and expected_version != current.version_number:
                raise VersionMismatch(
                    f"Job execution {job_id} on {thing_name} is at version {current.version_number},"
                    f" not {expected_version}",
                    execution=current,
                )
            now = self.clock.now()
            first_start = current.started_at is None and status is ExecutionStatus.IN_PROGRESS
            # The timers of an execution that ends here are dropped by `moved`.
            updated = moved(
                current,
                status,
                Actor.DEVICE,
                now,
                status_details=current.status_details if status_details is None else status_details,
                started_at=now if first_start else current.started_at,
                step_timeout_at=_step_deadline(current.step_timeout_at, step_timeout_minutes, now),
                timeout_at=self.lifecycle.started_timers(job_id, now) if first_start else current.timeout_at,
            )
            self.core.save_execution(current, updated)
            if is_terminal(status):
                self.core.emit_execution(updated)
                self.lifecycle.after_execution_ended(updated, now)
            return updated

        return self.core.watching([thing_name], change)


def _step_deadline(current: float | None, minutes: int | None, now: float) -> float | None:
    """The step timer after a request: unchanged, replaced, or stopped by -1."""
    if minutes is None:
        return current
    if minutes == -1:
        return None
    return now + minutes * 60.0
