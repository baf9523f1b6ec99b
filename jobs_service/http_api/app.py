"""The ASGI application: read, authenticate, route, validate, dispatch, render."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from iot_jobs_bridge.jobs_service.errors import InvalidRequest, InvalidSignature, JobsError
from iot_jobs_bridge.jobs_service.http_api.errors import UnknownOperation
from iot_jobs_bridge.jobs_service.http_api.health import Health
from iot_jobs_bridge.jobs_service.http_api.responses import (
    error_response,
    internal_error_response,
    json_response,
)
from iot_jobs_bridge.jobs_service.http_api.service import Handler, ServiceApi
from iot_jobs_bridge.jobs_service.http_api.sigv4 import verify_request

__all__ = [
    "MAX_BODY_BYTES",
    "Answered",
    "ExtraApi",
    "Settle",
    "build_app",
    "create_app",
    "handler_worker",
]

logger = logging.getLogger("iot_jobs_bridge.jobs_service.http_api")
# One line per request (see `jobs_service.logs`).
access_logger = logging.getLogger("iotjobs.access")


class ExtraApi(Protocol):
    """Routes beyond the botocore model (``/schedules``), signed like the rest."""

    def handles(self, path: str) -> bool: ...

    def __call__(self, method: str, path: str, body: bytes) -> Mapping[str, Any]: ...


#: Awaited after an operation's handler returns and before it is answered (given the operation's name).
Settle = Callable[[str], Awaitable[None]]
#: Told of each signed request once answered: its operation ("-" when none matched), status, seconds.
Answered = Callable[[str, int, float], None]


def handler_worker() -> Executor:
    """The one thread handlers run on.

    Every handler goes through the store's single connection and its lock, so
    more threads would only queue on that lock and take the GIL from each other:
    with a pool, concurrent clients cost a third more CPU per call.
    """
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="control-plane")


#: Largest request body accepted (a job document is at most 32 KB).
MAX_BODY_BYTES = 1024 * 1024
# Characters of a request's path an access-log line keeps.
_LOGGED_PATH = 256


def build_app(
    handlers: Mapping[str, Handler],
    credentials: Mapping[str, str],
    *,
    region: str,
    service_name: str = "iot",
    wall_clock: Callable[[], float] = time.time,
    extra: ExtraApi | None = None,
    access_log_level: int = logging.DEBUG,
    health: Health | None = None,
    worker: Executor | None = None,
    inline: frozenset[str] = frozenset(),
    settle: Settle | None = None,
    routes: Sequence[BaseRoute] = (),
    answered: Answered | None = None,
) -> Starlette:
    """Serve the botocore service ``service_name`` with ``handlers``.

    ``handlers`` maps operation names of the model (``"CreateJob"``) to
    :data:`Handler` functions; a name the model does not know is a
    ``ValueError``. Operations without a handler answer InvalidRequestException.
    ``credentials`` maps access key ids to secret keys; it is consulted on every
    request, so a mutable mapping may be updated while serving. Every request
    must be SigV4-signed by one of them for this service's signing name, with
    ``region`` in its credential scope (AWS refuses a scope for another region).
    ``wall_clock`` (epoch seconds) bounds signature age; it is real time, never
    scaled, because clients sign with real time. Each request is logged on
    ``iotjobs.access`` at ``access_log_level``. ``health`` answers ``GET /health``, unsigned.
    Handlers run on ``worker`` (default: a new :func:`handler_worker`; its owner
    shuts it down), except those of the ``inline`` operations, which run on the
    event loop: only for work too small to be worth the hop between threads.
    ``settle``, if given, is awaited after each handler returns, on the event
    loop, so waiting there holds no other request back. ``routes`` are served
    before the API, unsigned: they authenticate for themselves (the console, ``/metrics``).
    ``answered`` is told of every API request once it is answered.
    """
    apis = [ServiceApi.for_service(service_name, handlers)]
    return create_app(
        apis,
        credentials,
        region=region,
        wall_clock=wall_clock,
        extra=extra,
        access_log_level=access_log_level,
        health=health,
        worker=worker,
        inline=inline,
        settle=settle,
        routes=routes,
        answered=answered,
    )


def create_app(
    apis: list[ServiceApi],
    credentials: Mapping[str, str],
    *,
    region: str,
    wall_clock: Callable[[], float] = time.time,
    extra: ExtraApi | None = None,
    access_log_level: int = logging.DEBUG,
    health: Health | None = None,
    worker: Executor | None = None,
    inline: frozenset[str] = frozenset(),
    settle: Settle | None = None,
    routes: Sequence[BaseRoute] = (),
    answered: Answered | None = None,
) -> Starlette:
    """Serve several services on one listener, chosen by the SigV4 scope's service.

    The ``iot`` control plane and the ``iot-jobs-data`` device plane share paths
    such as ``GET /things/{thingName}/jobs``, so the signature's credential
    scope, not the path, decides which model a request belongs to.
    """
    by_signing_name = {api.signing_name: api for api in apis}
    if len(by_signing_name) != len(apis):
        raise ValueError("Two services share a signing name")
    gateway = _Gateway(
        by_signing_name,
        credentials,
        region,
        wall_clock,
        worker or handler_worker(),
        extra=extra,
        access_log_level=access_log_level,
        inline=inline,
        settle=settle,
        answered=answered,
    )
    served: list[BaseRoute] = [*routes, Route("/{path:path}", gateway)]
    if health is not None:
        served.insert(0, Route("/health", health.respond, methods=["GET", "HEAD"]))
    return Starlette(routes=served)


class _Gateway:
    """A single ASGI endpoint for every method and path (routing is model-driven)."""

    def __init__(
        self,
        apis: Mapping[str, ServiceApi],
        credentials: Mapping[str, str],
        region: str,
        wall_clock: Callable[[], float],
        worker: Executor,
        *,
        extra: ExtraApi | None = None,
        access_log_level: int = logging.DEBUG,
        inline: frozenset[str] = frozenset(),
        settle: Settle | None = None,
        answered: Answered | None = None,
    ) -> None:
        self._answered = answered
        self._worker = worker
        self._inline = inline
        self._settle = settle
        self._extra = extra
        self._access_log_level = access_log_level
        self._apis = apis
        self._credentials = credentials
        self._region = region
        self._wall_clock = wall_clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(uuid.uuid4())
        request = Request(scope, receive)
        began = time.monotonic()
        try:
            response = await self._serve(request, request_id)
        except ClientDisconnect:
            # Gone before its body arrived (or closed by a bound): there is no one to answer.
            logger.debug("Client left during %s %s", request.method, request.url.path)
            return
        except JobsError as error:
            response = error_response(error, request_id=request_id)
        except Exception:
            logger.exception("Unexpected error serving %s %s", request.method, request.url.path)
            response = internal_error_response(request_id=request_id)
        await response(scope, receive, send)
        seconds = time.monotonic() - began
        if self._answered is not None:
            self._answered(getattr(request.state, "operation", None) or "-", response.status_code, seconds)
        self._log_access(request, response.status_code, seconds, request_id)

    def _log_access(self, request: Request, status: int, seconds: float, request_id: str) -> None:
        if not access_logger.isEnabledFor(self._access_log_level):
            return
        client = request.client.host if request.client is not None else "-"
        # The path is the client's: bounded here so a long one cannot flood the log.
        path = request.url.path[:_LOGGED_PATH]
        operation = getattr(request.state, "operation", None) or "-"
        access_logger.log(
            self._access_log_level,
            "%s %s %s %d %s %.1f ms",
            client,
            request.method,
            path,
            status,
            operation,
            seconds * 1000,
            extra={
                "client": client,
                "method": request.method,
                "path": path,
                "status": status,
                "operation": operation,
                "duration_ms": round(seconds * 1000, 1),
                "request_id": request_id,
            },
        )

    async def _serve(self, request: Request, request_id: str) -> Response:
        body = await _read_body(request)
        raw_path = _raw_path(request.scope)
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        header_lines = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
        host = request.headers.get("host", "localhost")
        url = f"{request.url.scheme}://{host}{raw_path}" + (f"?{raw_query}" if raw_query else "")
        signed = verify_request(
            method=request.method,
            url=url,
            headers=header_lines,
            body=body,
            credentials=self._credentials,
            region=self._region,
            now=dt.datetime.fromtimestamp(self._wall_clock(), dt.UTC),
        )
        api = self._apis.get(signed.service)
        if api is None:
            expected = " or ".join(f"'{name}'" for name in sorted(self._apis))
            raise InvalidSignature(f"Credential should be scoped to correct service: {expected}.")
        if self._extra is not None and signed.service == "iot" and self._extra.handles(request.url.path):
            request.state.operation = "Schedules"
            content = await self._on_worker(self._extra, request.method, request.url.path, body)
            return json_response(content, request_id=request_id)
        try:
            query = parse_qsl(raw_query, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError as exc:
            raise InvalidRequest("Query string is not valid percent-encoded UTF-8") from exc
        call = api.prepare(
            method=request.method, raw_path=raw_path, query=query, headers=request.headers, body=body
        )
        if call is None:
            raise UnknownOperation(
                f"No {api.signing_name} operation matches {request.method} {request.url.path}"
            )
        request.state.operation = call.operation
        try:
            if call.operation in self._inline:
                # Under load the hop to the worker costs more than such a handler does.
                result = call.handler(call.params)
            else:
                result = await self._on_worker(call.handler, call.params)
            if self._settle is not None:
                await self._settle(call.operation)
            # A result that cannot be rendered (not JSON-able) is the handler's bug too.
            content, headers, status = call.render(result)
            return json_response(content, request_id=request_id, status=status, headers=headers)
        except JobsError:
            raise
        except Exception:
            logger.exception("Handler for %s failed", call.operation)
            return internal_error_response(request_id=request_id)

    def _on_worker(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().run_in_executor(self._worker, function, *args)


async def _read_body(request: Request) -> bytes:
    too_large = InvalidRequest(f"Request body too large: the limit is {MAX_BODY_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    return bytes(body)


def _raw_path(scope: Scope) -> str:
    # The signature covers the path as sent, and labels may contain an
    # encoded "/", so the undecoded path is what both SigV4 and routing need.
    raw = scope.get("raw_path")
    if raw:
        return str(raw.decode("latin-1"))
    return quote(scope["path"], safe="/~")
