"""The device MQTT API: a request topic and payload in, the messages to publish out.

Replies go to the literal request topic plus ``/accepted`` or ``/rejected``,
echo the request's ``clientToken`` (and leave it out when the request had
none, as V1 clients send), and always carry an integer ``timestamp``. Nothing
is returned before the engine has committed its change.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from iot_jobs_bridge import schemas
from iot_jobs_bridge.schemas import topics
from iot_jobs_bridge.schemas.topics import Operation, Request

from .. import json_input
from ..domain_events import DomainEvent
from ..engine import JobsEngine
from ..errors import InternalError, InvalidJson, InvalidRequest, InvalidTopic, JobsError, Throttled
from ..models import ExecutionStatus
from .payloads import execution_data, execution_state, seconds, summary
from .render import Message, Renderer
from .throttle import Throttle

__all__ = ["DeviceApi", "rejection"]

log = logging.getLogger(__name__)

_PAYLOAD = "The payload"
_SCHEMAS = {
    Operation.GET_PENDING: "GetPendingJobExecutionsRequest",
    Operation.START_NEXT: "StartNextPendingJobExecutionRequest",
    Operation.DESCRIBE: "DescribeJobExecutionRequest",
    Operation.UPDATE: "UpdateJobExecutionRequest",
}


def rejection(error: JobsError, client_token: str | None, now: float) -> dict[str, Any]:
    """The ``ErrorResponse`` payload; ``executionState`` only where the spec allows it."""
    payload: dict[str, Any] = {"code": error.mqtt_code, "message": error.message}
    if client_token is not None:
        payload["clientToken"] = client_token
    payload["timestamp"] = seconds(now)
    if error.execution is not None and error.mqtt_code in ("InvalidStateTransition", "VersionMismatch"):
        payload["executionState"] = execution_state(error.execution)
    return payload


class DeviceApi:
    def __init__(self, engine: JobsEngine, renderer: Renderer, throttle: Throttle | None = None) -> None:
        self.engine = engine
        self.renderer = renderer
        limits = engine.limits
        self.throttle = throttle or Throttle(limits.requests_per_second, limits.request_burst)

    def handle(self, topic: str, payload: bytes) -> list[Message]:
        """Answer one publish; returns [] for topics that are not requests (e.g. replies)."""
        request = topics.parse_request(topic)
        if request is None:
            return []
        client_token: str | None = None
        # Every publish counts against the thing's rate, however malformed.
        allowed = self.throttle.allow(request.thing_name)
        try:
            limit = self.engine.limits.max_payload_bytes
            if len(payload) > limit:
                raise InvalidRequest(f"The payload is {len(payload)} bytes; the limit is {limit}")
            if request.operation is Operation.INVALID:
                # The topic is wrong whatever the payload says; echo a token if one can be read.
                with contextlib.suppress(InvalidRequest):
                    client_token = _token(_decode(payload))
                raise InvalidTopic(f"{request.topic} is not a jobs API topic")
            body = _decode(payload)
            client_token = _token(body)
            # After the token is read, so that the rejection echoes it.
            json_input.check_text(body, what=_PAYLOAD, source=payload)
            if not allowed:
                raise Throttled(f"Too many requests from {request.thing_name}; slow down and retry")
            reply, events = self._dispatch(request, body)
        except JobsError as error:
            return [Message(topics.rejected(topic), rejection(error, client_token, self.engine.clock.now()))]
        except Exception:
            log.exception("Request on %s failed", topic)
            internal = InternalError("The service could not process the request")
            return [
                Message(topics.rejected(topic), rejection(internal, client_token, self.engine.clock.now()))
            ]
        if client_token is not None:
            reply["clientToken"] = client_token
        reply["timestamp"] = seconds(self.engine.clock.now())
        return [Message(topics.accepted(topic), reply), *self.renderer.render(events)]

    def _dispatch(self, request: Request, body: dict[str, Any]) -> tuple[dict[str, Any], list[DomainEvent]]:
        try:
            schemas.check("device_requests", _SCHEMAS[request.operation], body)
        except schemas.SchemaError as exc:
            raise InvalidRequest(str(exc)) from exc
        if request.operation is Operation.GET_PENDING:
            return self._get_pending(request), []
        if request.operation is Operation.START_NEXT:
            return self._start_next(request, body)
        if request.operation is Operation.DESCRIBE:
            return self._describe(request, body), []
        return self._update(request, body)

    def _get_pending(self, request: Request) -> dict[str, Any]:
        pending = self.engine.device.pending(request.thing_name)
        queued = [summary(e) for e in pending if e.status is ExecutionStatus.QUEUED]
        return {
            "inProgressJobs": [summary(e) for e in pending if e.status is ExecutionStatus.IN_PROGRESS],
            "queuedJobs": queued[: self.engine.limits.queued_in_pending],
        }

    def _start_next(self, request: Request, body: dict[str, Any]) -> tuple[dict[str, Any], list[DomainEvent]]:
        outcome = self.engine.device.start_next(
            request.thing_name, body.get("statusDetails"), body.get("stepTimeoutInMinutes")
        )
        reply: dict[str, Any] = {}
        if outcome.value is not None:
            reply["execution"] = execution_data(
                outcome.value,
                document=self.engine.document(outcome.value.job_id),
                seconds_left=self.engine.lifecycle.seconds_before_timed_out(outcome.value),
            )
        return reply, outcome.events

    def _describe(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        assert request.job_id is not None
        execution = self.engine.device.describe(
            request.thing_name, request.job_id, body.get("executionNumber")
        )
        if execution is None:
            return {}
        include_document = body.get("includeJobDocument", True)
        document = self.engine.document(execution.job_id) if include_document else None
        seconds_left = self.engine.lifecycle.seconds_before_timed_out(execution)
        return {
            "execution": execution_data(
                execution, document=document, include_thing_name=True, seconds_left=seconds_left
            )
        }

    def _update(self, request: Request, body: dict[str, Any]) -> tuple[dict[str, Any], list[DomainEvent]]:
        assert request.job_id is not None
        expected = body.get("expectedVersion")
        outcome = self.engine.device.update(
            request.thing_name,
            request.job_id,
            status=ExecutionStatus(body["status"]),
            status_details=body.get("statusDetails"),
            expected_version=int(expected) if expected is not None else None,
            execution_number=body.get("executionNumber"),
            step_timeout_minutes=body.get("stepTimeoutInMinutes"),
        )
        reply: dict[str, Any] = {}
        if body.get("includeJobExecutionState"):
            reply["executionState"] = execution_state(outcome.value)
        if body.get("includeJobDocument"):
            reply["jobDocument"] = json.loads(self.engine.document(request.job_id))
        return reply, outcome.events


def _decode(payload: bytes) -> dict[str, Any]:
    """The request object, not yet checked for lone surrogates (``json_input.check_text``).

    An empty payload counts as ``{}``, as V1 clients without fields send.
    """
    if not payload.strip():
        return {}
    body = json_input.parse_json(payload, what=_PAYLOAD)
    if not isinstance(body, dict):
        raise InvalidJson("The payload must be a JSON object")
    return body


def _token(body: dict[str, Any]) -> str | None:
    token = body.get("clientToken")
    return token if isinstance(token, str) else None
