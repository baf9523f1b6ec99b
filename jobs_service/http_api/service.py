"""One AWS service served from its botocore model: routes, input, handlers."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.session

from iot_jobs_bridge.jobs_service.errors import InvalidRequest
from iot_jobs_bridge.jobs_service.http_api.params import parse_input
from iot_jobs_bridge.jobs_service.http_api.routing import Router
from iot_jobs_bridge.jobs_service.http_api.validation import check_input

__all__ = ["Call", "Handler", "ServiceApi", "load_service_model"]

Handler = Callable[[dict[str, Any]], dict[str, Any] | None]
"""A synchronous operation handler.

It receives the operation's input keyed by model member names and returns the
output as a wire-format dict (camelCase keys, timestamps as epoch seconds), or
``None`` for an empty ``{}`` body. It reports failures by raising
:class:`jobs_service.errors.JobsError` subclasses.
"""


@functools.cache
def load_service_model(service_name: str) -> Any:
    """botocore's ``ServiceModel`` for ``service_name`` (loaded once per process)."""
    return botocore.session.get_session().get_service_model(service_name)


@dataclass(frozen=True)
class Call:
    """A routed, parsed and validated request, ready for its handler."""

    operation: str
    handler: Handler
    params: dict[str, Any]
    status: int
    output_shape: Any

    def render(self, result: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, str], int]:
        """Split a handler's result into JSON body, headers and status code.

        Output members the model places in headers (or in the status code)
        are moved out of the body; everything else stays as the handler gave it.
        """
        body = dict(result or {})
        headers: dict[str, str] = {}
        status = self.status
        members = self.output_shape.members if self.output_shape is not None else {}
        for name, member in members.items():
            location = member.serialization.get("location")
            if location is None or body.get(name) is None:
                continue
            value = body.pop(name)
            if location == "statusCode":
                status = int(value)
            elif location == "header":
                headers[member.serialization.get("name", name)] = _header_text(value)
            elif location == "headers":
                prefix = member.serialization.get("name", "")
                headers.update({prefix + key: _header_text(item) for key, item in value.items()})
        return body, headers, status


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ServiceApi:
    """Routes and checks requests for one service model and dispatches to handlers.

    ``signing_name`` (``iot``, ``iot-jobs-data``) is the SigV4 scope service that
    selects this API when several share one listener.
    """

    def __init__(self, service_model: Any, handlers: Mapping[str, Handler]) -> None:
        unknown = sorted(set(handlers) - set(service_model.operation_names))
        if unknown:
            raise ValueError(f"Not operations of {service_model.service_name}: {', '.join(unknown)}")
        self.model = service_model
        self.signing_name: str = service_model.signing_name
        self.router = Router.from_model(service_model)
        self._handlers = dict(handlers)

    @classmethod
    def for_service(cls, service_name: str, handlers: Mapping[str, Handler]) -> ServiceApi:
        """Build the API of the botocore service ``service_name``."""
        return cls(load_service_model(service_name), handlers)

    def prepare(
        self,
        *,
        method: str,
        raw_path: str,
        query: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Call | None:
        """Resolve the request to a :class:`Call`, or ``None`` if no operation matches.

        Raises :class:`InvalidRequest` for an operation without a handler and
        for input that does not parse or validate.
        """
        found = self.router.match(method, raw_path, query)
        if found is None:
            return None
        handler = self._handlers.get(found.operation)
        if handler is None:
            raise InvalidRequest(f"Operation {found.operation} is not supported by this server")
        operation = self.model.operation_model(found.operation)
        params = parse_input(operation, found.labels, query, headers, body)
        check_input(operation.input_shape, params)
        status = int(operation.http.get("responseCode", 200))
        return Call(found.operation, handler, params, status, operation.output_shape)
