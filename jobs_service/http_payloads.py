"""Control-plane (HTTP rest-json) payload shapes, spec §6.2.

Timestamps are epoch seconds as JSON numbers; ``statusDetails`` is wrapped
in ``detailsMap``; absent fields are left out, never sent as null.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .arns import Arns
from .models import ExecutionStatus, Job, JobExecution, JobTemplate, Thing, ThingGroup

__all__ = [
    "execution",
    "execution_summary",
    "job",
    "job_process_details",
    "job_template",
    "thing",
    "thing_group",
    "thing_summary",
]

_COUNTERS = {
    ExecutionStatus.CANCELED: "numberOfCanceledThings",
    ExecutionStatus.SUCCEEDED: "numberOfSucceededThings",
    ExecutionStatus.FAILED: "numberOfFailedThings",
    ExecutionStatus.REJECTED: "numberOfRejectedThings",
    ExecutionStatus.QUEUED: "numberOfQueuedThings",
    ExecutionStatus.IN_PROGRESS: "numberOfInProgressThings",
    ExecutionStatus.REMOVED: "numberOfRemovedThings",
    ExecutionStatus.TIMED_OUT: "numberOfTimedOutThings",
}


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        data[key] = value


def job_process_details(counts: dict[ExecutionStatus, int]) -> dict[str, int]:
    """Every counter, 0 when no thing is in that status."""
    return {name: counts.get(status, 0) for status, name in _COUNTERS.items()}


def job(
    record: Job,
    arns: Arns,
    counts: dict[ExecutionStatus, int],
    *,
    rolling_out: bool = False,
    window_starts: list[float] | None = None,
) -> dict[str, Any]:
    """DescribeJob's ``job``; ``window_starts`` are the next maintenance-window starts."""
    data: dict[str, Any] = {
        "jobArn": arns.job(record.job_id),
        "jobId": record.job_id,
        "targetSelection": record.target_selection.value,
        "status": record.status.value,
        "forceCanceled": record.force_canceled,
        "targets": list(record.targets),
        "createdAt": record.created_at,
        "lastUpdatedAt": record.last_updated_at,
        "jobProcessDetails": job_process_details(counts),
        "isConcurrent": rolling_out,
    }
    if rolling_out:
        data["jobProcessDetails"]["processingTargets"] = list(record.targets)
    if window_starts:
        data["scheduledJobRollouts"] = [{"startTime": _iso(start)} for start in window_starts]
    _set(data, "reasonCode", record.reason_code)
    _set(data, "comment", record.comment)
    _set(data, "description", record.description)
    _set(data, "completedAt", record.completed_at)
    data.update(record.settings)
    return data


def execution(record: JobExecution, arns: Arns, seconds_left: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "jobId": record.job_id,
        "status": record.status.value,
        "forceCanceled": record.force_canceled,
        "statusDetails": {"detailsMap": dict(record.status_details)},
        "thingArn": arns.thing(record.thing_name),
        "queuedAt": record.queued_at,
        "lastUpdatedAt": record.last_updated_at,
        "executionNumber": record.execution_number,
        "versionNumber": record.version_number,
    }
    _set(data, "startedAt", record.started_at)
    _set(data, "approximateSecondsBeforeTimedOut", seconds_left)
    return data


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M")


def execution_summary(record: JobExecution) -> dict[str, Any]:
    data: dict[str, Any] = {
        "status": record.status.value,
        "queuedAt": record.queued_at,
        "lastUpdatedAt": record.last_updated_at,
        "executionNumber": record.execution_number,
        "retryAttempt": record.retry_attempt,
    }
    _set(data, "startedAt", record.started_at)
    return data


def thing(record: Thing, arns: Arns) -> dict[str, Any]:
    """DescribeThing: the summary plus the id and the default client id."""
    return {"defaultClientId": record.name, "thingId": record.thing_id, **thing_summary(record, arns)}


def thing_summary(record: Thing, arns: Arns) -> dict[str, Any]:
    data: dict[str, Any] = {
        "thingName": record.name,
        "thingArn": arns.thing(record.name),
        "attributes": dict(record.attributes),
        "version": record.version,
    }
    _set(data, "thingTypeName", record.thing_type_name)
    return data


def thing_group(record: ThingGroup, arns: Arns, ancestors: list[str]) -> dict[str, Any]:
    """DescribeThingGroup; ``ancestors`` runs from the root down to the parent."""
    properties: dict[str, Any] = {}
    _set(properties, "thingGroupDescription", record.description)
    if record.attributes:
        properties["attributePayload"] = {"attributes": dict(record.attributes)}
    metadata: dict[str, Any] = {"creationDate": record.created_at}
    if record.parent_name is not None:
        metadata["parentGroupName"] = record.parent_name
        metadata["rootToParentThingGroups"] = [
            {"groupName": name, "groupArn": arns.thing_group(name)} for name in ancestors
        ]
    data: dict[str, Any] = {
        "thingGroupName": record.name,
        "thingGroupId": record.group_id,
        "thingGroupArn": arns.thing_group(record.name),
        "version": record.version,
        "thingGroupProperties": properties,
        "thingGroupMetadata": metadata,
    }
    if record.is_dynamic:
        # Membership is kept current on every registry change, so the index is always ACTIVE.
        data.update(
            indexName=record.index_name,
            queryString=record.query_string,
            queryVersion=record.query_version,
            status="ACTIVE",
        )
    return data


def job_template(record: JobTemplate, arns: Arns) -> dict[str, Any]:
    """DescribeJobTemplate: the document plus the settings the template carries."""
    data: dict[str, Any] = {
        "jobTemplateArn": arns.job_template(record.template_id),
        "jobTemplateId": record.template_id,
        "description": record.description,
        "createdAt": record.created_at,
    }
    _set(data, "document", record.document)
    _set(data, "documentSource", record.document_source)
    data.update(record.settings)
    return data
