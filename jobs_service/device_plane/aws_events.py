"""Payloads of the ``$aws/events/job/...`` and ``$aws/events/jobExecution/...`` topics (spec §5).

As documented, ``timestamp`` is in epoch seconds and ``createdAt``,
``lastUpdatedAt`` and ``completedAt`` are in epoch milliseconds (§12.11).
"""

from __future__ import annotations

import uuid
from typing import Any

from ..arns import Arns
from ..models import ExecutionStatus, Job, JobExecution

__all__ = ["job_event", "job_execution_event"]

# The counters the documented `completed` event carries.
_COMPLETED_COUNTERS = {
    ExecutionStatus.CANCELED: "numberOfCanceledThings",
    ExecutionStatus.REJECTED: "numberOfRejectedThings",
    ExecutionStatus.FAILED: "numberOfFailedThings",
    ExecutionStatus.REMOVED: "numberOfRemovedThings",
    ExecutionStatus.SUCCEEDED: "numberOfSucceededThings",
}


def _millis(timestamp: float) -> int:
    return int(timestamp * 1000)


def job_event(
    job: Job, operation: str, status: str, now: float, counts: dict[ExecutionStatus, int] | None = None
) -> dict[str, Any]:
    """A JOB event's payload; ``counts`` (things per status) are sent with ``completed`` only."""
    payload: dict[str, Any] = {
        "eventType": "JOB",
        "eventId": str(uuid.uuid4()),
        "timestamp": int(now),
        "operation": operation,
        "jobId": job.job_id,
        "status": status,
        "targetSelection": job.target_selection.value,
        "targets": list(job.targets),
    }
    if job.description is not None:
        payload["description"] = job.description
    payload["createdAt"] = _millis(job.created_at)
    payload["lastUpdatedAt"] = _millis(job.last_updated_at)
    if operation == "completed":
        if job.completed_at is not None:
            payload["completedAt"] = _millis(job.completed_at)
        payload["jobProcessDetails"] = {
            name: (counts or {}).get(s, 0) for s, name in _COMPLETED_COUNTERS.items()
        }
    elif job.comment is not None:
        payload["comment"] = job.comment
    return payload


def job_execution_event(execution: JobExecution, operation: str, arns: Arns, now: float) -> dict[str, Any]:
    """A JOB_EXECUTION event's payload: ``operation`` is the lower-case status, or ``deleted``."""
    payload: dict[str, Any] = {
        "eventType": "JOB_EXECUTION",
        "eventId": str(uuid.uuid4()),
        "timestamp": int(now),
        "operation": operation,
        "jobId": execution.job_id,
        "thingArn": arns.thing(execution.thing_name),
        "status": execution.status.value,
    }
    if execution.status_details:
        payload["statusDetails"] = dict(execution.status_details)
    return payload
