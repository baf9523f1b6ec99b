"""What the engine reports after a change: domain events, in its own words (no topics, no payloads).

Everything an event carries is read inside the transaction that made the
change, so rendering it later (after the commit) reads nothing. The device
plane renders them to MQTT messages (:mod:`.device_plane.render`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import ExecutionStatus, Job, JobExecution

__all__ = ["Activity", "DomainEvent", "ExecutionChanged", "ExecutionWritten", "JobChanged", "PendingChanged"]


@dataclass(frozen=True)
class PendingChanged:
    """A thing's pending list changed: its set of executions, its head, or both."""

    thing_name: str
    #: The list after the change, in "next" order, as far as a notify shows it.
    pending: tuple[JobExecution, ...]
    membership_changed: bool
    head_changed: bool
    #: The job document of the new head, when the head changed to an execution.
    head_document: str | None
    at: float


@dataclass(frozen=True)
class ExecutionChanged:
    """An execution ended (``operation`` is its status in lower case) or was deleted (``deleted``)."""

    execution: JobExecution
    operation: str
    at: float


@dataclass(frozen=True)
class JobChanged:
    """A job was canceled, completed or deleted, or its cancellation or deletion began.

    ``counts`` (things per status) come with ``completed`` only.
    """

    job: Job
    operation: str
    status: str
    at: float
    counts: dict[ExecutionStatus, int] | None = None


DomainEvent = PendingChanged | ExecutionChanged | JobChanged


@dataclass(frozen=True, slots=True)
class ExecutionWritten:
    """An execution was created or saved: its status before (None when new) and after.

    Written for every save, a status change or not (progress in ``statusDetails``),
    so that watchers of a job (the console, metrics) see each change of it.
    """

    job_id: str
    thing_name: str
    previous: ExecutionStatus | None
    status: ExecutionStatus

    @property
    def transition(self) -> bool:
        return self.previous is not self.status


@dataclass(frozen=True)
class Activity:
    """What one committed transaction changed, for observers (not rendered to devices)."""

    events: tuple[DomainEvent, ...]
    writes: tuple[ExecutionWritten, ...]

    @property
    def job_ids(self) -> frozenset[str]:
        """Jobs whose executions or status this transaction changed."""
        ids = {write.job_id for write in self.writes}
        for event in self.events:
            if isinstance(event, JobChanged):
                ids.add(event.job.job_id)
            elif isinstance(event, ExecutionChanged):
                ids.add(event.execution.job_id)
        return frozenset(ids)
