"""The state machines of executions and jobs, as transition tables plus pure functions: no I/O here.

Spec §3: devices may move an execution to IN_PROGRESS, SUCCEEDED, FAILED or
REJECTED; the service ends executions as CANCELED, REMOVED or TIMED_OUT;
terminal executions never change again; the pending list puts every
IN_PROGRESS execution before every QUEUED one, oldest first.

Every status change of an execution is made by :func:`moved` and of a job by
:func:`job_moved`, which refuse a change their table does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from .models import ExecutionStatus, Job, JobExecution, JobStatus

__all__ = [
    "DEVICE_STATUSES",
    "EXECUTION_TRANSITIONS",
    "INITIAL_STATUSES",
    "JOB_TRANSITIONS",
    "PENDING_STATUSES",
    "TERMINAL_STATUSES",
    "Actor",
    "IllegalTransition",
    "Verdict",
    "device_update_verdict",
    "is_terminal",
    "job_moved",
    "moved",
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
#: How an execution begins: QUEUED, or CANCELED for a thing a canceled job never released.
INITIAL_STATUSES = frozenset({ExecutionStatus.QUEUED, ExecutionStatus.CANCELED})
DEVICE_STATUSES = frozenset(
    {
        ExecutionStatus.IN_PROGRESS,
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.REJECTED,
    }
)


class Actor(Enum):
    """Who makes a change: the device (its MQTT requests) or the service (operators, timers, membership)."""

    DEVICE = "device"
    SERVICE = "service"


_S = ExecutionStatus
_DEVICE, _SERVICE = frozenset({Actor.DEVICE}), frozenset({Actor.SERVICE})
# Start-next or an update (IN_PROGRESS -> IN_PROGRESS is a progress report), and a device's own end.
_DEVICE_MOVES = (_S.IN_PROGRESS, _S.SUCCEEDED, _S.FAILED, _S.REJECTED)
# Cancel (an IN_PROGRESS execution only with force), the thing leaving the targets or being deleted.
_SERVICE_ENDS = (_S.CANCELED, _S.REMOVED)
#: (from, to) -> who may make that change. A pair that is absent is never made.
EXECUTION_TRANSITIONS: Mapping[tuple[ExecutionStatus, ExecutionStatus], frozenset[Actor]] = {
    **{(before, after): _DEVICE for before in PENDING_STATUSES for after in _DEVICE_MOVES},
    **{(before, after): _SERVICE for before in PENDING_STATUSES for after in _SERVICE_ENDS},
    (_S.IN_PROGRESS, _S.TIMED_OUT): _SERVICE,
}

_J = JobStatus
#: (from, to) for jobs; every job status change is the service's.
JOB_TRANSITIONS: frozenset[tuple[JobStatus, JobStatus]] = frozenset(
    {
        (_J.SCHEDULED, _J.IN_PROGRESS),
        (_J.SCHEDULED, _J.CANCELED),
        (_J.IN_PROGRESS, _J.COMPLETED),
        (_J.IN_PROGRESS, _J.CANCELED),
        (_J.CANCELED, _J.CANCELED),  # a later cancel with force
        *((before, _J.DELETION_IN_PROGRESS) for before in _J if before is not _J.DELETION_IN_PROGRESS),
    }
)


class IllegalTransition(RuntimeError):
    """A change the state machine does not allow: a bug in the caller, never a client's error."""


def moved(
    execution: JobExecution, status: ExecutionStatus, by: Actor, now: float, **changes: Any
) -> JobExecution:
    """``execution`` after ``by`` moves it to ``status`` at ``now``.

    The version moves on, so devices notice; a terminal execution keeps no
    timer. ``changes`` sets other fields (details, timers, ``force_canceled``).
    """
    if by not in EXECUTION_TRANSITIONS.get((execution.status, status), ()):
        raise IllegalTransition(
            f"execution of {execution.job_id} on {execution.thing_name}: "
            f"{execution.status.value} -> {status.value} by the {by.value}"
        )
    update: dict[str, Any] = {
        "status": status,
        "last_updated_at": now,
        "version_number": execution.version_number + 1,
        **changes,
    }
    if status in TERMINAL_STATUSES:
        update["timeout_at"] = update["step_timeout_at"] = None
    return execution.model_copy(update=update)


def job_moved(job: Job, status: JobStatus, now: float, **changes: Any) -> Job:
    """``job`` moved to ``status`` at ``now``; ``changes`` sets other fields (reason, comment)."""
    if (job.status, status) not in JOB_TRANSITIONS:
        raise IllegalTransition(f"job {job.job_id}: {job.status.value} -> {status.value}")
    return job.model_copy(update={"status": status, "last_updated_at": now, **changes})


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
    if Actor.DEVICE not in EXECUTION_TRANSITIONS.get((current, target), ()):
        return Verdict.FROM_TERMINAL
    return Verdict.ALLOWED


def pending_order(executions: Iterable[JobExecution]) -> list[JobExecution]:
    """Pending executions in "next" order: IN_PROGRESS first, then by queue time."""
    pending = [e for e in executions if e.status in PENDING_STATUSES]
    return sorted(
        pending,
        key=lambda e: (e.status is not ExecutionStatus.IN_PROGRESS, e.queued_at, e.seq),
    )
