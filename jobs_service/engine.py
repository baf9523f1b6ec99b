"""The jobs engine: jobs and executions, for both planes.

Each operation validates, changes the store in one transaction, and returns
the messages (notify, notify-next) owed to devices. Callers send those only
after the method returns, that is after the commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .arns import Arns
from .clock import Clock
from .errors import (
    InvalidRequest,
    InvalidStateTransition,
    LimitExceeded,
    ResourceAlreadyExists,
    ResourceNotFound,
    VersionMismatch,
)
from .models import ExecutionStatus, Job, JobExecution, JobStatus, TargetSelection
from .mqtt_payloads import execution_state
from .notifications import Message, pending_changes
from .states import Verdict, device_update_verdict, is_terminal
from .store import Store

__all__ = ["JobsEngine", "NewJob", "Outcome"]

T = TypeVar("T")
NEXT = "$next"
MAX_TARGETS = 100


@dataclass(frozen=True)
class Outcome:
    """What an operation produced, and what devices must be told after the commit."""

    value: Any
    messages: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class NewJob:
    """A CreateJob request, already checked against the API model."""

    job_id: str
    targets: list[str]
    document: str
    description: str | None = None
    target_selection: TargetSelection = TargetSelection.SNAPSHOT
    settings: dict[str, Any] = field(default_factory=dict)


class JobsEngine:
    def __init__(self, store: Store, clock: Clock, arns: Arns) -> None:
        self.store = store
        self.clock = clock
        self.arns = arns

    # -- shared machinery -------------------------------------------------
    def _watching(self, things: Iterable[str], change: Callable[[], T]) -> Outcome:
        """Run ``change`` in one transaction; diff the pending lists of ``things``."""
        now = self.clock.now()
        with self.store.atomic():
            names = list(dict.fromkeys(things))
            before = {name: self.store.pending_executions(name) for name in names}
            value = change()
            after = {name: self.store.pending_executions(name) for name in names}
        documents: dict[str, str] = {}

        def document_of(job_id: str) -> str:
            if job_id not in documents:
                documents.update(self.store.get_documents([job_id]))
            return documents[job_id]

        messages: list[Message] = []
        for name in names:
            messages += pending_changes(name, before[name], after[name], now=now, document_of=document_of)
        return Outcome(value, messages)

    def _complete_if_done(self, job_id: str, now: float) -> None:
        """A snapshot job is COMPLETED once none of its executions is pending."""
        job = self.store.get_job(job_id)
        if job is None or job.status is not JobStatus.IN_PROGRESS:
            return
        if job.target_selection is TargetSelection.SNAPSHOT and not self.store.count_open_executions(job_id):
            self.store.set_job_status(job_id, JobStatus.COMPLETED, now=now, completed_at=now)

    def document(self, job_id: str) -> str:
        job = self.store.get_job(job_id)
        if job is None:
            raise ResourceNotFound(f"Job {job_id} does not exist")
        return job.document

    # -- device plane -----------------------------------------------------
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
            raise ResourceNotFound(_no_execution(job_id, thing_name, execution_number))
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
                raise ResourceNotFound(_no_execution(job_id, thing_name, execution_number))
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
            updated = current.model_copy(
                update={
                    "status": status,
                    "status_details": current.status_details if status_details is None else status_details,
                    "started_at": current.started_at
                    if current.started_at is not None or status is not ExecutionStatus.IN_PROGRESS
                    else now,
                    "last_updated_at": now,
                    "version_number": current.version_number + 1,
                }
            )
            self.store.save_execution(updated)
            if is_terminal(status):
                self._complete_if_done(job_id, now)
            return updated

        return self._watching([thing_name], change)

    # -- control plane ----------------------------------------------------
    def create_job(self, new: NewJob) -> Outcome:
        """Store a job and queue one execution per distinct target thing."""
        _require_json_object(new.document)
        if len(new.targets) > MAX_TARGETS:
            raise LimitExceeded(f"A job can have at most {MAX_TARGETS} targets, not {len(new.targets)}")
        things = self.resolve_targets(new.targets)
        now = self.clock.now()
        job_arn = self.arns.job(new.job_id)

        def change() -> Job:
            if self.store.get_job(new.job_id) is not None:
                raise ResourceAlreadyExists(
                    f"Job {new.job_id} already exists",
                    extra={"resourceId": new.job_id, "resourceArn": job_arn},
                )
            job = Job(
                job_id=new.job_id,
                status=JobStatus.IN_PROGRESS,
                target_selection=new.target_selection,
                targets=list(new.targets),
                document=new.document,
                description=new.description,
                created_at=now,
                last_updated_at=now,
                settings=new.settings,
            )
            self.store.insert_job(job)
            for thing_name in things:
                self._queue(job.job_id, thing_name, now)
            if job.target_selection is TargetSelection.SNAPSHOT and not things:
                self.store.set_job_status(job.job_id, JobStatus.COMPLETED, now=now, completed_at=now)
            return self.store.get_job(job.job_id) or job

        return self._watching(things, change)

    def _queue(self, job_id: str, thing_name: str, now: float) -> JobExecution:
        previous = self.store.get_execution(job_id, thing_name)
        return self.store.insert_execution(
            JobExecution(
                job_id=job_id,
                thing_name=thing_name,
                execution_number=previous.execution_number + 1 if previous else 1,
                status=ExecutionStatus.QUEUED,
                queued_at=now,
                last_updated_at=now,
            )
        )

    def resolve_targets(self, targets: list[str]) -> list[str]:
        """Thing names covered by the targets: groups include their descendants."""
        things: dict[str, None] = {}
        for arn in targets:
            kind, name = self.arns.parse_target(arn)
            if kind == "thing":
                if not self.store.thing_exists(name):
                    raise ResourceNotFound(f"Thing {name} does not exist")
                things[name] = None
            else:
                if self.store.get_group(name) is None:
                    raise ResourceNotFound(f"Thing group {name} does not exist")
                things.update(dict.fromkeys(self.store.group_things(self.store.descendant_groups(name))))
        return list(things)

    def thing_joined_group(self, thing_name: str, group_name: str) -> Outcome:
        """Add a thing to a group and queue executions of continuous jobs that now cover it."""

        def change() -> bool:
            if not self.store.add_member(group_name, thing_name):
                return False
            now = self.clock.now()
            arns = [self.arns.thing_group(name) for name in self.store.ancestor_groups(group_name)]
            for job in self.store.continuous_jobs_targeting(arns):
                latest = self.store.get_execution(job.job_id, thing_name)
                if latest is None or is_terminal(latest.status):
                    self._queue(job.job_id, thing_name, now)
            return True

        return self._watching([thing_name], change)

    def get_job(self, job_id: str) -> Job:
        job = self.store.get_job(job_id)
        if job is None:
            raise ResourceNotFound(f"Job {job_id} does not exist")
        return job

    def get_execution(self, job_id: str, thing_name: str, execution_number: int | None) -> JobExecution:
        execution = self.store.get_execution(job_id, thing_name, execution_number)
        if execution is None:
            raise ResourceNotFound(_no_execution(job_id, thing_name, execution_number))
        return execution


def _no_execution(job_id: str, thing_name: str, execution_number: int | None) -> str:
    number = f" with execution number {execution_number}" if execution_number is not None else ""
    return f"Job execution {job_id} on {thing_name}{number} does not exist"


def _require_json_object(document: str) -> None:
    try:
        parsed = json.loads(document)
    except ValueError as exc:
        raise InvalidRequest(f"The job document is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InvalidRequest("The job document must be a JSON object")
