"""Shared machinery of the engine: transactions that diff pending lists, queuing, completion."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..arns import Arns
from ..clock import Clock
from ..errors import ResourceNotFound
from ..events import job_event, job_execution_event
from ..limits import DeviceLimits
from ..models import ExecutionStatus, Job, JobExecution
from ..notifications import Message, pending_changes
from ..states import INITIAL_STATUSES, Actor, IllegalTransition, moved
from ..store import Store

__all__ = ["EngineBase", "Outcome", "no_execution"]

T = TypeVar("T")

# The operator's log of jobs (see `jobs_service.logs`).
jobs_log = logging.getLogger("iotjobs.jobs")
# level, message, its arguments, the structured fields
_Note = tuple[int, str, tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class Outcome:
    """What an operation produced, and what devices must be told after the commit."""

    value: Any
    messages: list[Message] = field(default_factory=list)


class EngineBase:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        arns: Arns,
        limits: DeviceLimits | None = None,
        *,
        events: bool = True,
    ) -> None:
        self.store = store
        self.clock = clock
        self.arns = arns
        self.limits = limits or DeviceLimits()
        self.events_enabled = events
        # Events raised inside the current transaction; only touched while the store lock is held.
        self._events: list[Message] = []
        # Log lines of the current transaction, written once it is committed; same lock rule.
        self._notes: list[_Note] = []

    # -- the operator's log -------------------------------------------------
    def _note(self, level: int, message: str, *args: Any, **fields: Any) -> None:
        """Log ``message`` on ``iotjobs.jobs`` after the commit; ``fields`` become the record's extras."""
        self._notes.append((level, message, args, fields))

    def _take_notes(self) -> list[_Note]:
        notes, self._notes = self._notes, []
        return notes

    # -- events -----------------------------------------------------------
    def _emit_execution(self, execution: JobExecution, operation: str | None = None) -> None:
        """Record a JOB_EXECUTION event (terminal statuses and deletions only)."""
        if self.events_enabled:
            name = operation or execution.status.value.lower()
            self._events.append(job_execution_event(execution, name, self.arns, self.clock.now()))

    def _emit_job(self, job: Job, operation: str, status: str) -> None:
        if self.events_enabled:
            counts = self.store.execution_counts(job.job_id) if operation == "completed" else None
            self._events.append(job_event(job, operation, status, self.clock.now(), counts))

    def _take_events(self) -> list[Message]:
        events, self._events = self._events, []
        return events

    def _watching(
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
                documents.update(self.store.get_documents([job_id]))
            return documents[job_id]

        with self.store.atomic() as work:
            self._take_events()  # anything left by a change that failed
            self._take_notes()
            # Only the head of each pending list and what a notify shows are read,
            # plus a signature that tells whether membership changed: a thing with
            # thousands of pending executions costs no more than one with ten.
            cap = self.limits.notify_entries
            before: dict[str, tuple[tuple[int, int], list[JobExecution]]] = {}

            def touch(name: str) -> None:
                if name not in before:
                    store = self.store
                    before[name] = (store.pending_signature(name), store.pending_executions(name, cap))

            for name in dict.fromkeys(things() if callable(things) else things):
                touch(name)
            # Things the change reaches beyond those named (an abort canceling
            # other things' executions, a retry) are seen just before it does.
            with work.watching(touch):
                value = change()
            # Everything the messages say is read inside the transaction: a
            # concurrent change (e.g. a deletion finishing) cannot make them fail
            # after this change is committed. They are sent after the commit.
            messages: list[Message] = []
            for name, (signature, old) in before.items():
                messages += pending_changes(
                    name,
                    old,
                    self.store.pending_executions(name, cap),
                    now=now,
                    document_of=document_of,
                    notify_cap=cap,
                    membership_changed=signature != self.store.pending_signature(name),
                )
            messages += self._take_events()
            notes = self._take_notes()
        write_notes(notes)
        return Outcome(value, messages)

    def _queue(
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
        previous = self.store.get_execution(job_id, thing_name)
        return self.store.insert_execution(
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

    def _end_by_service(
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
        self.store.save_execution(ended)
        self._emit_execution(ended)
        return ended

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

    def document(self, job_id: str) -> str:
        return self.get_job(job_id).document

    def get_job(self, job_id: str) -> Job:
        job = self.store.get_job(job_id)
        if job is None:
            raise ResourceNotFound(f"Job {job_id} does not exist")
        return job

    def get_execution(self, job_id: str, thing_name: str, execution_number: int | None) -> JobExecution:
        execution = self.store.get_execution(job_id, thing_name, execution_number)
        if execution is None:
            raise ResourceNotFound(no_execution(job_id, thing_name, execution_number))
        return execution


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
