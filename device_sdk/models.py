"""Typed views of every payload the jobs service sends to a device.

Each ``from_payload`` checks the JSON against ``schemas/device_responses.json``
first (unknown keys are tolerated, as the AWS SDKs tolerate them), so a
malformed reply surfaces as :class:`InvalidResponse` naming the field, never as
a ``KeyError`` deep inside a handler. Field names are snake_case here and
camelCase on the wire; the mapping is spelled out in each parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iot_jobs_bridge import schemas

from .errors import InvalidResponse

__all__ = [
    "TERMINAL_STATUSES",
    "JobExecution",
    "JobExecutionState",
    "JobExecutionSummary",
    "JobExecutionsChanged",
    "NextJobExecutionChanged",
    "PendingJobs",
    "UpdateResult",
]

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "REMOVED", "CANCELED"})


def _checked(definition: str, payload: Any) -> dict[str, Any]:
    try:
        schemas.check("device_responses", definition, payload, allow_unknown_keys=True)
    except schemas.SchemaError as exc:
        raise InvalidResponse(f"{definition}: {exc}") from exc
    result: dict[str, Any] = payload
    return result


@dataclass(frozen=True)
class JobExecutionState:
    """Status, details and version of an execution, as carried by update replies and rejections."""

    status: str
    version_number: int
    status_details: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> JobExecutionState:
        return cls(
            status=data["status"],
            version_number=data["versionNumber"],
            status_details=dict(data.get("statusDetails") or {}),
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class JobExecutionSummary:
    """One entry of a pending list (it carries no status: the list it sits in says it)."""

    job_id: str
    queued_at: int
    last_updated_at: int
    version_number: int
    execution_number: int
    started_at: int | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> JobExecutionSummary:
        return cls(
            job_id=data["jobId"],
            queued_at=data["queuedAt"],
            last_updated_at=data["lastUpdatedAt"],
            version_number=data["versionNumber"],
            execution_number=data["executionNumber"],
            started_at=data.get("startedAt"),
        )


@dataclass(frozen=True)
class JobExecution:
    """A job execution with its document, as describe, start-next and notify-next carry it."""

    job_id: str
    status: str
    queued_at: int
    last_updated_at: int
    version_number: int
    execution_number: int
    thing_name: str | None = None
    status_details: dict[str, str] = field(default_factory=dict)
    started_at: int | None = None
    job_document: dict[str, Any] | None = None
    approximate_seconds_before_timed_out: int | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> JobExecution:
        return cls(
            job_id=data["jobId"],
            status=data["status"],
            queued_at=data["queuedAt"],
            last_updated_at=data["lastUpdatedAt"],
            version_number=data["versionNumber"],
            execution_number=data["executionNumber"],
            thing_name=data.get("thingName"),
            status_details=dict(data.get("statusDetails") or {}),
            started_at=data.get("startedAt"),
            job_document=data.get("jobDocument"),
            approximate_seconds_before_timed_out=data.get("approximateSecondsBeforeTimedOut"),
        )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def execution_from_payload(definition: str, payload: Any) -> JobExecution | None:
    """The ``execution`` of a describe or start-next reply, or ``None`` when nothing is pending."""
    data = _checked(definition, payload)
    return JobExecution.from_wire(data["execution"]) if "execution" in data else None


@dataclass(frozen=True)
class PendingJobs:
    """The reply to GetPendingJobExecutions: IN_PROGRESS first, then QUEUED, each by queue time."""

    in_progress: tuple[JobExecutionSummary, ...]
    queued: tuple[JobExecutionSummary, ...]
    timestamp: int

    @classmethod
    def from_payload(cls, payload: Any) -> PendingJobs:
        data = _checked("GetPendingJobExecutionsResponse", payload)
        return cls(
            in_progress=tuple(JobExecutionSummary.from_wire(s) for s in data["inProgressJobs"]),
            queued=tuple(JobExecutionSummary.from_wire(s) for s in data["queuedJobs"]),
            timestamp=data["timestamp"],
        )

    @property
    def job_ids(self) -> tuple[str, ...]:
        return tuple(s.job_id for s in (*self.in_progress, *self.queued))


@dataclass(frozen=True)
class UpdateResult:
    """The reply to UpdateJobExecution.

    ``execution_state`` is present when the update asked for it; ``reconciled`` is
    true when the service rejected a repeat of an update that had already taken
    effect (its reply lost to a reconnect), so the client reports the earlier success.
    """

    timestamp: int
    execution_state: JobExecutionState | None = None
    job_document: dict[str, Any] | None = None
    reconciled: bool = False

    @classmethod
    def from_payload(cls, payload: Any) -> UpdateResult:
        data = _checked("UpdateJobExecutionResponse", payload)
        state = data.get("executionState")
        return cls(
            timestamp=data["timestamp"],
            execution_state=JobExecutionState.from_wire(state) if state is not None else None,
            job_document=data.get("jobDocument"),
        )


@dataclass(frozen=True)
class JobExecutionsChanged:
    """A ``notify`` message: the thing's whole pending set after a change of membership."""

    in_progress: tuple[JobExecutionSummary, ...]
    queued: tuple[JobExecutionSummary, ...]
    timestamp: int

    @classmethod
    def from_payload(cls, payload: Any) -> JobExecutionsChanged:
        data = _checked("JobExecutionsChangedEvent", payload)
        jobs = data["jobs"]
        return cls(
            in_progress=tuple(JobExecutionSummary.from_wire(s) for s in jobs.get("IN_PROGRESS", [])),
            queued=tuple(JobExecutionSummary.from_wire(s) for s in jobs.get("QUEUED", [])),
            timestamp=data["timestamp"],
        )

    @property
    def job_ids(self) -> tuple[str, ...]:
        return tuple(s.job_id for s in (*self.in_progress, *self.queued))


@dataclass(frozen=True)
class NextJobExecutionChanged:
    """A ``notify-next`` message: the new head of the pending list, or ``None`` when it is empty."""

    execution: JobExecution | None
    timestamp: int

    @classmethod
    def from_payload(cls, payload: Any) -> NextJobExecutionChanged:
        data = _checked("NextJobExecutionChangedEvent", payload)
        execution = data.get("execution")
        return cls(
            execution=JobExecution.from_wire(execution) if execution is not None else None,
            timestamp=data["timestamp"],
        )


def rejection_from_payload(payload: Any) -> tuple[str, str, JobExecutionState | None]:
    """``(code, message, execution_state)`` of a ``/rejected`` payload."""
    data = _checked("ErrorResponse", payload)
    state = data.get("executionState")
    return data["code"], data["message"], JobExecutionState.from_wire(state) if state is not None else None
