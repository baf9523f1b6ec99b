"""The job-execution state machine as data plus pure functions: no I/O here.

Spec §3: devices may move an execution to IN_PROGRESS, SUCCEEDED, FAILED or
REJECTED; terminal executions never change again; the pending list puts every
IN_PROGRESS execution before every QUEUED one, oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from .models import ExecutionStatus, JobExecution

__all__ = [
    "DEVICE_STATUSES",
    "PENDING_STATUSES",
    "TERMINAL_STATUSES",
    "Verdict",
    "device_update_verdict",
    "is_terminal",
    "pending_order",
]

TERMINAL_STATUSES = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.REJECTED,
        ExecutionStatus.REMOVED,
        ExecutionStatus.CANCELED,
    }
)
PENDING_STATUSES = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS})
DEVICE_STATUSES = frozenset(
    {
        ExecutionStatus.IN_PROGRESS,
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.REJECTED,
    }
)


class Verdict(Enum):
    """The outcome of asking whether a device may make a change."""

    ALLOWED = "allowed"
    NOT_A_DEVICE_STATUS = "not-a-device-status"
    FROM_TERMINAL = "from-terminal"


def is_terminal(status: ExecutionStatus) -> bool:
    return status in TERMINAL_STATUSES


def device_update_verdict(current: ExecutionStatus, target: ExecutionStatus) -> Verdict:
    """May a device move an execution from ``current`` to ``target``?

    A status no device may set is refused before the current state is looked
    at (InvalidRequest, decisions.md); any change of a terminal execution is an
    invalid transition.
    """
    if target not in DEVICE_STATUSES:
        return Verdict.NOT_A_DEVICE_STATUS
    if current in TERMINAL_STATUSES:
        return Verdict.FROM_TERMINAL
    return Verdict.ALLOWED


def pending_order(executions: Iterable[JobExecution]) -> list[JobExecution]:
    """Pending executions in "next" order: IN_PROGRESS first, then by queue time."""
    pending = [e for e in executions if e.status in PENDING_STATUSES]
    return sorted(
        pending,
        key=lambda e: (e.status is not ExecutionStatus.IN_PROGRESS, e.queued_at, e.seq),
    )
