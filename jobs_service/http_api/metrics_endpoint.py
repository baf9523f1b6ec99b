"""``GET /metrics``: who may scrape, and the scrape itself off the event loop.

No SigV4: Prometheus cannot sign. With a token (``--metrics-token``), every
scrape must send ``Authorization: Bearer <token>``; without one, only clients on
this machine (a loopback peer address) are answered, so that metrics never leave
it unless the operator chose a token.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..addresses import is_loopback

__all__ = ["PATH", "MetricsEndpoint", "Refusal", "refusal", "warn_if_unreachable"]

log = logging.getLogger(__name__)

PATH = "/metrics"
#: What renders the metrics, given the request's Accept header: (body, media type).
Render = Callable[[str], tuple[bytes, str]]


@dataclass(frozen=True)
class Refusal:
    """A scrape refused: its status code, the message for the client and the headers."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def refusal(token: str | None, authorization: str | None, peer: str | None) -> Refusal | None:
    """Why a scrape from ``peer`` with this ``Authorization`` header is refused; None if it is not."""
    if token is None:
        if is_loopback(peer):
            return None
        return Refusal(
            403,
            f"/metrics answers clients on this machine only, and {peer or 'this client'} is not one: "
            "start iotjobs serve with --metrics-token TOKEN (or IOTJOBS_METRICS_TOKEN) and scrape "
            "with Authorization: Bearer TOKEN\n",
        )
    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    what = "a wrong bearer token" if scheme.lower() == "bearer" else "no bearer token"
    return Refusal(
        401,
        f"/metrics needs Authorization: Bearer <the --metrics-token>, and the request has {what}\n",
        {"WWW-Authenticate": 'Bearer realm="iotjobs metrics"'},
    )


class MetricsEndpoint:
    """The ``/metrics`` route: ``render`` runs on ``worker`` (it reads the store), never on the loop."""

    def __init__(self, render: Render, worker: Executor, token: str | None = None) -> None:
        self._render = render
        self._worker = worker
        self._token = token

    def route(self) -> Route:
        # A GET route answers HEAD too (Starlette adds it; the server sends no body).
        return Route(PATH, self.respond, methods=["GET"])

    async def respond(self, request: Request) -> Response:
        peer = request.client.host if request.client is not None else None
        refused = refusal(self._token, request.headers.get("authorization"), peer)
        if refused is not None:
            return PlainTextResponse(refused.message, refused.status, headers=refused.headers)
        accept = request.headers.get("accept", "")
        loop = asyncio.get_running_loop()
        body, media_type = await loop.run_in_executor(self._worker, self._render, accept)
        return Response(body, headers={"Content-Type": media_type, "Cache-Control": "no-store"})


def warn_if_unreachable(host: str, port: int, token: str | None) -> None:
    """One WARNING when the control plane listens beyond loopback and ``/metrics`` has no token."""
    if token is not None or is_loopback(host):
        return
    log.warning(
        "/metrics on %s:%s answers clients on this machine only: no --metrics-token is set. To scrape "
        "it from elsewhere, start with --metrics-token TOKEN (or IOTJOBS_METRICS_TOKEN) and have "
        "Prometheus send Authorization: Bearer TOKEN.",
        host,
        port,
    )
