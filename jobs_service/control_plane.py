"""Control-plane operations: boto3 ``iot`` requests in, rest-json payloads out.

Parameters arrive checked against the botocore model (lengths, patterns,
enums, ranges) and keyed by the model's member names; the handlers here add
what the model cannot express and call the engine and the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import http_payloads as wire
from .arns import Arns
from .engine import JobsEngine, NewJob, Outcome
from .errors import InvalidRequest
from .models import ExecutionStatus, TargetSelection
from .notifications import Message
from .pagination import decode_token, encode_token, page_size
from .registry import Registry

__all__ = ["ControlPlane"]

Params = dict[str, Any]
Handler = Callable[[Params], dict[str, Any] | None]

# CreateJob settings kept verbatim and returned by DescribeJob.
_JOB_SETTINGS = (
    "presignedUrlConfig",
    "jobExecutionsRolloutConfig",
    "abortConfig",
    "timeoutConfig",
    "jobExecutionsRetryConfig",
    "schedulingConfig",
    "namespaceId",
)


class ControlPlane:
    def __init__(
        self, engine: JobsEngine, registry: Registry, arns: Arns, publish: Callable[[list[Message]], None]
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.arns = arns
        self._publish = publish

    def handlers(self) -> dict[str, Handler]:
        return {
            "CreateThing": self.create_thing,
            "DescribeThing": self.describe_thing,
            "ListThings": self.list_things,
            "CreateThingGroup": self.create_thing_group,
            "DescribeThingGroup": self.describe_thing_group,
            "AddThingToThingGroup": self.add_thing_to_thing_group,
            "ListThingsInThingGroup": self.list_things_in_thing_group,
            "CreateJob": self.create_job,
            "DescribeJob": self.describe_job,
            "GetJobDocument": self.get_job_document,
            "ListJobExecutionsForJob": self.list_job_executions_for_job,
            "ListJobExecutionsForThing": self.list_job_executions_for_thing,
            "DescribeJobExecution": self.describe_job_execution,
        }

    def _sent(self, outcome: Outcome) -> Any:
        """Hand the outcome's messages to MQTT (the change is committed) and return its value."""
        if outcome.messages:
            self._publish(outcome.messages)
        return outcome.value

    # -- things -----------------------------------------------------------
    def create_thing(self, params: Params) -> dict[str, Any]:
        payload = params.get("attributePayload") or {}
        thing = self.registry.create_thing(
            params["thingName"],
            thing_type_name=params.get("thingTypeName"),
            attributes=payload.get("attributes"),
        )
        return {"thingName": thing.name, "thingArn": self.arns.thing(thing.name), "thingId": thing.thing_id}

    def describe_thing(self, params: Params) -> dict[str, Any]:
        return wire.thing(self.registry.get_thing(params["thingName"]), self.arns)

    def list_things(self, params: Params) -> dict[str, Any]:
        if params.get("thingTypeName") is not None:
            return {"things": []}
        limit = page_size(params.get("maxResults"))
        name, value = params.get("attributeName"), params.get("attributeValue")
        prefix = bool(params.get("usePrefixAttributeValue"))
        after = decode_token(params.get("nextToken"))
        found: list[dict[str, Any]] = []
        # Scan in name order until a page of matches is filled.
        while len(found) < limit:
            batch = self.registry.store.list_things(after=after, limit=max(limit, 100))
            if not batch:
                after = None
                break
            for thing in batch:
                after = thing.name
                if _attribute_matches(thing.attributes, name, value, prefix):
                    found.append(wire.thing_summary(thing, self.arns))
                    if len(found) == limit:
                        break
        result: dict[str, Any] = {"things": found}
        if after is not None and self.registry.store.list_things(after=after, limit=1):
            result["nextToken"] = encode_token(after)
        return result

    # -- thing groups -----------------------------------------------------
    def create_thing_group(self, params: Params) -> dict[str, Any]:
        properties = params.get("thingGroupProperties") or {}
        group = self.registry.create_group(
            params["thingGroupName"],
            parent_name=params.get("parentGroupName"),
            description=properties.get("thingGroupDescription"),
            attributes=(properties.get("attributePayload") or {}).get("attributes"),
        )
        return {
            "thingGroupName": group.name,
            "thingGroupArn": self.arns.thing_group(group.name),
            "thingGroupId": group.group_id,
        }

    def describe_thing_group(self, params: Params) -> dict[str, Any]:
        group = self.registry.get_group(params["thingGroupName"])
        ancestors = list(reversed(self.registry.store.ancestor_groups(group.name)[1:]))
        return wire.thing_group(group, self.arns, ancestors)

    def add_thing_to_thing_group(self, params: Params) -> None:
        group = self.registry.group_name_from(params.get("thingGroupName"), params.get("thingGroupArn"))
        thing = self.registry.thing_name_from(params.get("thingName"), params.get("thingArn"))
        self._sent(self.engine.thing_joined_group(thing, group))

    def list_things_in_thing_group(self, params: Params) -> dict[str, Any]:
        limit = page_size(params.get("maxResults"))
        names = self.registry.things_in_group(
            params["thingGroupName"],
            recursive=bool(params.get("recursive")),
            after=decode_token(params.get("nextToken")),
            limit=limit + 1,
        )
        result: dict[str, Any] = {"things": names[:limit]}
        if len(names) > limit:
            result["nextToken"] = encode_token(names[limit - 1])
        return result

    # -- jobs -------------------------------------------------------------
    def create_job(self, params: Params) -> dict[str, Any]:
        for unsupported in (
            "documentSource",
            "jobTemplateArn",
            "documentParameters",
            "destinationPackageVersions",
        ):
            if params.get(unsupported) is not None:
                raise InvalidRequest(f"{unsupported} is not supported by this server yet")
        if params.get("document") is None:
            raise InvalidRequest("A job needs a document")
        job = self._sent(
            self.engine.create_job(
                NewJob(
                    job_id=params["jobId"],
                    targets=params["targets"],
                    document=params["document"],
                    description=params.get("description"),
                    target_selection=TargetSelection(params.get("targetSelection") or "SNAPSHOT"),
                    settings={key: params[key] for key in _JOB_SETTINGS if params.get(key) is not None},
                )
            )
        )
        result = {"jobArn": self.arns.job(job.job_id), "jobId": job.job_id}
        if job.description is not None:
            result["description"] = job.description
        return result

    def describe_job(self, params: Params) -> dict[str, Any]:
        job = self.engine.get_job(params["jobId"])
        counts = self.engine.store.execution_counts(job.job_id)
        return {"job": wire.job(job, self.arns, counts)}

    def get_job_document(self, params: Params) -> dict[str, Any]:
        return {"document": self.engine.document(params["jobId"])}

    # -- executions -------------------------------------------------------
    def list_job_executions_for_job(self, params: Params) -> dict[str, Any]:
        job = self.engine.get_job(params["jobId"])
        limit = page_size(params.get("maxResults"))
        position = decode_token(params.get("nextToken"))
        rows = self.engine.store.executions_for_job(
            job.job_id,
            status=_status(params.get("status")),
            after=(str(position[0]), int(position[1])) if position else None,
            limit=limit + 1,
        )
        result: dict[str, Any] = {
            "executionSummaries": [
                {
                    "thingArn": self.arns.thing(row.thing_name),
                    "jobExecutionSummary": wire.execution_summary(row),
                }
                for row in rows[:limit]
            ]
        }
        if len(rows) > limit:
            last = rows[limit - 1]
            result["nextToken"] = encode_token([last.thing_name, last.execution_number])
        return result

    def list_job_executions_for_thing(self, params: Params) -> dict[str, Any]:
        thing = self.registry.get_thing(params["thingName"])
        limit = page_size(params.get("maxResults"))
        rows = self.engine.store.executions_for_thing(
            thing.name,
            status=_status(params.get("status")),
            job_id=params.get("jobId"),
            after=decode_token(params.get("nextToken")),
            limit=limit + 1,
        )
        result: dict[str, Any] = {
            "executionSummaries": [
                {"jobId": row.job_id, "jobExecutionSummary": wire.execution_summary(row)}
                for row in rows[:limit]
            ]
        }
        if len(rows) > limit:
            result["nextToken"] = encode_token(rows[limit - 1].seq)
        return result

    def describe_job_execution(self, params: Params) -> dict[str, Any]:
        execution = self.engine.get_execution(
            params["jobId"], params["thingName"], params.get("executionNumber")
        )
        return {"execution": wire.execution(execution, self.arns)}


def _status(value: str | None) -> ExecutionStatus | None:
    return ExecutionStatus(value) if value is not None else None


def _attribute_matches(attributes: dict[str, str], name: str | None, value: str | None, prefix: bool) -> bool:
    if name is None:
        return True
    if name not in attributes:
        return False
    if value is None:
        return True
    return attributes[name].startswith(value) if prefix else attributes[name] == value
