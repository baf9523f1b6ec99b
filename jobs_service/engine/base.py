"""The engine's core, which its parts share: transactions that diff pending lists, events, queuing."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..arns import Arns
from ..clock import Clock
from ..domain_events import (
    Activity,
    DomainEvent,
    ExecutionChanged,
    ExecutionWritten,
    JobChanged,
    PendingChanged,
)
from ..errors import ResourceNotFound
from ..limits import DeviceLimits
from ..models import ExecutionStatus, Job, JobExecution
from ..states import INITIAL_STATUSES, Actor, IllegalTransition, moved
from ..store import Store

__all__ = ["EngineCore", "Observer", "Outcome", "Part", "no_execution"]

T = TypeVar("T")

# The operator's log of jobs (see `jobs_service.logs`).
jobs_log = logging.getLogger("iotjobs.jobs")
log = logging.getLogger(__name__)
# level, message, its arguments, the structured fields
_Note = tuple[int, str, tuple[Any, ...], dict[str, Any]]
#: Told what each transaction changed once it is committed, on the committing thread.
Observer = Callable[[Activity], None]


@dataclass(frozen=True)
class Outcome:
    """What an operation produced, and the domain events to announce after the commit."""

    value: Any
    events: list[DomainEvent] = field(default_factory=list)


class EngineCore:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        arns: Arns,
        limits: DeviceLimits | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.arns = arns
        self.limits = limits or DeviceLimits()
        # Events raised inside the current transaction; only touched while the store lock is held.
        self._events: list[DomainEvent] = []
        # Log lines of the current transaction, written once it is committed; same lock rule.
        self._notes: list[_Note] = []
        # Executions the current transaction wrote; same lock rule.
        self._writes: list[ExecutionWritten] = []
        self._observers: list[Observer] = []

    # -- observers (the console, metrics) ------------------------------------
    def observe(self, observer: Observer) -> None:
        """Tell ``observer`` what every committed change did; it must be quick and must not block."""
        self._observers.append(observer)

    def save_execution(self, before: JobExecution, after: JobExecution) -> None:
        """Write ``after`` over ``before`` (the same execution), noting the change for observers."""
        self.store.jobs.save_execution(after)
        self._writes.append(ExecutionWritten(after.job_id, after.thing_name, before.status, after.status))

    def observers_told(self, events: list[DomainEvent]) -> Callable[[], None]:
        """What to run after the commit: tell the observers (the events are also the caller's)."""
        writes, self._writes = tuple(self._writes), []
        if not self._observers:
            return lambda: None
        activity = Activity(tuple(events), writes)

        def tell() -> None:
            for observer in self._observers:
                try:
                    observer(activity)
                except Exception:
                    log.exception("An observer of committed changes failed")

        return tell

    # -- the operator's log -------------------------------------------------
    def note(self, level: int, message: str, *args: Any, **fields: Any) -> None:
        """Log ``message`` on ``iotjobs.jobs`` after the commit; ``fields`` become the record's extras."""
        self._notes.append((level, message, args, fields))

    def take_notes(self) -> list[_Note]:
        notes, self._notes = self._notes, []
        return notes

    # -- events -----------------------------------------------------------
    def emit_execution(self, execution: JobExecution, operation: str | None = None) -> None:
        """Record that an execution ended (or, with ``operation="deleted"``, was deleted)."""
        name = operation or execution.status.value.lower()
        self._events.append(ExecutionChanged(execution, name, self.clock.now()))

    def emit_job(self, job: Job, operation: str, status: str) -> None:
        counts = self.store.jobs.execution_counts(job.job_id) if operation == "completed" else None
        self._events.append(JobChanged(job, operation, status, self.clock.now(), counts))

    def take_events(self) -> list[DomainEvent]:
        events, self._events = self._events, []
        return events

    def watching(
        self, things: Iterable[str] | Callable[[], Iterable[str]], change: Callable[[], T]
    ) -> Outcome:
        """Run ``change`` in one transaction; diff the pending lists of ``things``.

        ``things`` may be a callable so the affected things are read inside the
        same transaction as the change.
        """
        now = self.clock.now()
        documents: dict[str, str] = {}

        def document_of(job_id: str) -> str:
            if job_id not in documents:
                documents.update(self.store.jobs.get_documents([job_id]))
            return documents[job_id]

        with self.store.atomic() as work:
            self.take_events()  # anything left by a change that failed
            self.take_notes()
            self._writes.clear()
            # Only the head of each pending list and what a notify shows are read,
            # plus a signature that tells whether membership changed: a thing with
            # thousands of pending executions costs no more than one with ten.
            cap = self.limits.notify_entries
            before: dict[str, tuple[tuple[int, int], list[JobExecution]]] = {}

            def touch(name: str) -> None:
                if name not in before:
                    before[name] = self.store.jobs.pending_view(name, cap)

            for name in dict.fromkeys(things() if callable(things) else things):
                touch(name)
            # Things the change reaches beyond those named (an abort canceling
            # other things' executions, a retry) are seen just before it does.
            with work.watching(touch):
                value = change()
            # Everything the events say is read inside the transaction: a
            # concurrent change (e.g. a deletion finishing) cannot make them fail
            # after this change is committed. They are announced after the commit.
            events: list[DomainEvent] = []
            for name, (signature, old) in before.items():
                new_signature, new = self.store.jobs.pending_view(name, cap)
                membership_changed = signature != new_signature
                head = _identity(new[0]) if new else None
                head_changed = (_identity(old[0]) if old else None) != head
                if membership_changed or head_changed:
                    document = document_of(new[0].job_id) if head_changed and new else None
                    events.append(
                        PendingChanged(name, tuple(new), membership_changed, head_changed, document, now)
                    )
            events += self.take_events()
            notes = self.take_notes()
            work.after_commit(lambda: write_notes(notes))
            work.after_commit(self.observers_told(events))
        return Outcome(value, events)

    def queue(
        self,
        job_id: str,
        thing_name: str,
        now: float,
        *,
        retry_attempt: int = 0,
        status: ExecutionStatus = ExecutionStatus.QUEUED,
    ) -> JobExecution:
        """A new execution, numbered after the thing's previous one for the job.

        It starts QUEUED, or CANCELED for a thing a canceled job never released (counted, never run).
        """
        if status not in INITIAL_STATUSES:
            raise IllegalTransition(f"an execution of {job_id} on {thing_name} cannot begin {status.value}")
        previous = self.store.jobs.get_execution(job_id, thing_name)
        self._writes.append(ExecutionWritten(job_id, thing_name, None, status))
        return self.store.jobs.insert_execution(
            JobExecution(
                job_id=job_id,
                thing_name=thing_name,
                execution_number=previous.execution_number + 1 if previous else 1,
                status=status,
                queued_at=now,
                last_updated_at=now,
                retry_attempt=retry_attempt,
            )
        )

    def end_by_service(
        self,
        execution: JobExecution,
        status: ExecutionStatus,
        now: float,
        *,
        force: bool = False,
        status_details: dict[str, str] | None = None,
    ) -> JobExecution:
        """A service-side terminal change (cancel, remove, time out): the version moves so devices notice."""
        ended = moved(
            execution,
            status,
            Actor.SERVICE,
            now,
            force_canceled=execution.force_canceled or force,
            status_details=execution.status_details if status_details is None else status_details,
        )
        self.save_execution(execution, ended)
        self.emit_execution(ended)
        return ended

    def resolve_targets(self, targets: list[str]) -> list[str]:
        """Thing names covered by the targets: groups include their descendants."""
        things: dict[str, None] = {}
        for arn in targets:
            kind, name = self.arns.parse_target(arn)
            if kind == "thing":
                if not self.store.registry.thing_exists(name):
                    raise ResourceNotFound(f"Thing {name} does not exist")
                things[name] = None
            else:
                if self.store.registry.get_group(name) is None:
                    raise ResourceNotFound(f"Thing group {name} does not exist")
                things.update(
                    dict.fromkeys(
                        self.store.registry.group_things(self.store.registry.descendant_groups(name))
                    )
                )
        return list(things)

    def document(self, job_id: str) -> str:
        return self.get_job(job_id).document

    def get_job(self, job_id: str) -> Job:
        job = self.store.jobs.get_job(job_id)
        if job is None:
            raise ResourceNotFound(f"Job {job_id} does not exist")
        return job

    def get_execution(self, job_id: str, thing_name: str, execution_number: int | None) -> JobExecution:
        execution = self.store.jobs.get_execution(job_id, thing_name, execution_number)
        if execution is None:
            raise ResourceNotFound(no_execution(job_id, thing_name, execution_number))
        return execution


class Part:
    """One part of the engine (its device, jobs, membership, rollout or lifecycle operations).

    Every part works over the same `EngineCore`: its store, clock and the events
    and log lines of the transaction under way.
    """

    def __init__(self, core: EngineCore) -> None:
        self.core = core
        self.store = core.store
        self.clock = core.clock
        self.arns = core.arns
        self.limits = core.limits


def _identity(execution: JobExecution) -> tuple[str, int]:
    return execution.job_id, execution.execution_number


def write_notes(notes: list[_Note]) -> None:
    for level, message, args, fields in notes:
        jobs_log.log(level, message, *args, extra=fields)


def counted(n: int, noun: str) -> str:
    """``1 thing``, ``2 things``: for log lines."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def utc_text(seconds: float) -> str:
    """A service time for a log line: ISO 8601, UTC, to the second."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def no_execution(job_id: str, thing_name: str, execution_number: int | None) -> str:
    number = f" with execution number {execution_number}" if execution_number is not None else ""
    return f"Job execution {job_id} on {thing_name}{number} does not exist"
