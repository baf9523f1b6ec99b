"""Records the service keeps, and the enums of the AWS IoT Jobs model.

Fields are snake_case here; the wire modules (``http_payloads.py``, ``device_plane/``)
translate to the lowerCamelCase of each plane explicitly.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ExecutionStatus",
    "Job",
    "JobExecution",
    "JobStatus",
    "JobTemplate",
    "TargetSelection",
    "Thing",
    "ThingGroup",
]


class ExecutionStatus(StrEnum):
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"
    REMOVED = "REMOVED"
    CANCELED = "CANCELED"


class JobStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    CANCELED = "CANCELED"
    COMPLETED = "COMPLETED"
    DELETION_IN_PROGRESS = "DELETION_IN_PROGRESS"
    SCHEDULED = "SCHEDULED"


class TargetSelection(StrEnum):
    SNAPSHOT = "SNAPSHOT"
    CONTINUOUS = "CONTINUOUS"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Thing(_Record):
    name: str
    thing_id: str
    thing_type_name: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    version: int = 1
    created_at: float


class ThingGroup(_Record):
    name: str
    group_id: str
    parent_name: str | None = None
    description: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    version: int = 1
    created_at: float
    # Dynamic groups hold the things matching a fleet-indexing query.
    query_string: str | None = None
    query_version: str | None = None
    index_name: str | None = None

    @property
    def is_dynamic(self) -> bool:
        return self.query_string is not None


class Job(_Record):
    job_id: str
    status: JobStatus
    target_selection: TargetSelection = TargetSelection.SNAPSHOT
    targets: list[str]
    document: str
    description: str | None = None
    created_at: float
    last_updated_at: float
    completed_at: float | None = None
    force_canceled: bool = False
    reason_code: str | None = None
    comment: str | None = None
    # Optional settings kept in their wire form (jobExecutionsRolloutConfig,
    # abortConfig, timeoutConfig, ...), keyed by their wire name.
    settings: dict[str, Any] = Field(default_factory=dict)
    # The document before ${aws:iot:parameter:...} substitution, when it differs.
    raw_document: str | None = None
    namespace_id: str | None = None
    # Scheduling: when the job starts and ends (from schedulingConfig), and whether its end was applied.
    start_at: float | None = None
    end_at: float | None = None
    ended: bool = False
    # Rollout: when the next execution may be released, and how many have been.
    next_release_at: float | None = None
    released: int = 0


class JobTemplate(_Record):
    template_id: str
    description: str
    document: str | None = None
    document_source: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    created_at: float


class JobExecution(_Record):
    job_id: str
    thing_name: str
    execution_number: int
    status: ExecutionStatus
    status_details: dict[str, str] = Field(default_factory=dict)
    queued_at: float
    started_at: float | None = None
    last_updated_at: float
    version_number: int = 1
    force_canceled: bool = False
    retry_attempt: int = 0
    # When the device's current step timer runs out (stepTimeoutInMinutes), if one runs.
    step_timeout_at: float | None = None
    # When the job's in-progress timer runs out (timeoutConfig), once the execution has started.
    timeout_at: float | None = None
    # Creation order across the whole store: breaks queuedAt ties in the pending list.
    seq: int = 0

    def deadline(self) -> float | None:
        """When this execution times out: the earlier of its two timers, if any runs."""
        timers = [t for t in (self.timeout_at, self.step_timeout_at) if t is not None]
        return min(timers) if timers else None
