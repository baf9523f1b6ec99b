"""Device-plane (MQTT) payload shapes, spec §2.4 and §2.11.

MQTT timestamps are integer epoch seconds (the SDK calls
``datetime.fromtimestamp`` on them), ``jobDocument`` is a JSON object, and
``statusDetails`` is a flat map present only when not empty.
"""

from __future__ import annotations

import json
from typing import Any

from ..models import ExecutionStatus, JobExecution

__all__ = [
    "NOTIFY_CAP",
    "document_object",
    "execution_data",
    "execution_state",
    "notify_next_payload",
    "notify_payload",
    "seconds",
    "summary",
]

# At most this many executions in a ListNotification (spec §8, §12.2).
NOTIFY_CAP = 10


def seconds(timestamp: float) -> int:
    return int(timestamp)


def document_object(document: str) -> dict[str, Any]:
    parsed = json.loads(document)
    # CreateJob only stores JSON objects, so this holds for every stored job.
    return parsed if isinstance(parsed, dict) else {"document": parsed}


def execution_data(
    execution: JobExecution,
    *,
    document: str | None = None,
    include_thing_name: bool = False,
    seconds_left: int | None = None,
) -> dict[str, Any]:
    """A ``JobExecutionData`` object; the document is added when given."""
    data: dict[str, Any] = {"jobId": execution.job_id}
    if include_thing_name:
        data["thingName"] = execution.thing_name
    data["status"] = execution.status.value
    if execution.status_details:
        data["statusDetails"] = dict(execution.status_details)
    data["queuedAt"] = seconds(execution.queued_at)
    if execution.started_at is not None:
        data["startedAt"] = seconds(execution.started_at)
    data["lastUpdatedAt"] = seconds(execution.last_updated_at)
    data["versionNumber"] = execution.version_number
    data["executionNumber"] = execution.execution_number
    if seconds_left is not None:
        data["approximateSecondsBeforeTimedOut"] = seconds_left
    if document is not None:
        data["jobDocument"] = document_object(document)
    return data


def execution_state(execution: JobExecution) -> dict[str, Any]:
    """A ``JobExecutionState``: what rejections and update replies carry."""
    state: dict[str, Any] = {"status": execution.status.value}
    if execution.status_details:
        state["statusDetails"] = dict(execution.status_details)
    state["versionNumber"] = execution.version_number
    return state


def summary(execution: JobExecution) -> dict[str, Any]:
    """A ``JobExecutionSummary``: no status, the list it sits in implies it."""
    data: dict[str, Any] = {"jobId": execution.job_id, "queuedAt": seconds(execution.queued_at)}
    if execution.started_at is not None:
        data["startedAt"] = seconds(execution.started_at)
    data["lastUpdatedAt"] = seconds(execution.last_updated_at)
    data["versionNumber"] = execution.version_number
    data["executionNumber"] = execution.execution_number
    return data


def notify_payload(pending: list[JobExecution], now: float, cap: int = NOTIFY_CAP) -> dict[str, Any]:
    """``JobExecutionsChangedEvent``: at most ``cap`` entries; empty status keys are left out."""
    jobs: dict[str, list[dict[str, Any]]] = {}
    for execution in pending[:cap]:
        jobs.setdefault(execution.status.value, []).append(summary(execution))
    ordered = {key: jobs[key] for key in (ExecutionStatus.IN_PROGRESS, ExecutionStatus.QUEUED) if key in jobs}
    return {"timestamp": seconds(now), "jobs": ordered}


def notify_next_payload(head: JobExecution | None, document: str | None, now: float) -> dict[str, Any]:
    """``NextJobExecutionChangedEvent``: no ``execution`` once nothing is pending."""
    payload: dict[str, Any] = {"timestamp": seconds(now)}
    if head is not None:
        payload["execution"] = execution_data(head, document=document)
    return payload
