"""What the engine reports after a change: domain events, in its own words (no topics, no payloads).

Everything an event carries is read inside the transaction that made the
change, so rendering it later (after the commit) reads nothing. The device
plane renders them to MQTT messages (:mod:`.device_plane.render`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import ExecutionStatus, Job, JobExecution

__all__ = ["DomainEvent", "ExecutionChanged", "JobChanged", "PendingChanged"]


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
