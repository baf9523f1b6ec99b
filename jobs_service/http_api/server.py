"""The HTTP listener: uvicorn with bounds on slow, idle and surplus connections.

uvicorn's h11 protocol closes a kept-alive connection only while it stays
silent, and never one that has not sent a whole request, so a client that
connects and sends nothing, or trickles a header byte at a time (slowloris),
holds a connection for ever. Here a connection is always under one deadline,
except while the application handles its request:

* a request's head (request line and headers) must arrive within
  :data:`HEADERS_TIMEOUT` of the connection opening, or of the first byte
  after an idle keep-alive;
* its body within :data:`BODY_TIMEOUT` of its head;
* between requests a connection may stay idle :data:`KEEP_ALIVE_TIMEOUT`.

Trickled bytes never move a deadline. At most :data:`MAX_CONNECTIONS`
connections are open at once; one more is closed as soon as it is accepted.
Each close by a bound, and each refusal, is logged as one WARNING line; idle
keep-alives ending is routine (every pooled client connection ends so) and is
logged at DEBUG.

Deadlines run on the event loop's clock, real time rather than the service
clock, because they protect the process (as the device rate limit does, D29).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle
from uvicorn.server import ServerState

from iot_jobs_bridge.broker.limits import LimitLog

__all__ = [
    "BODY_TIMEOUT",
    "HEADERS_TIMEOUT",
    "KEEP_ALIVE_TIMEOUT",
    "MAX_CONNECTIONS",
    "ConnectionBounds",
    "server_config",
]

log = logging.getLogger(__name__)

#: Seconds for a request's line and headers to arrive.
HEADERS_TIMEOUT = 10.0
#: Seconds for a request's body to arrive once its head has (bodies are at most 1 MiB).
BODY_TIMEOUT = 30.0
#: Seconds a connection may wait idle for its next request (uvicorn's default).
KEEP_ALIVE_TIMEOUT = 5.0
#: Connections open at once; operators' clients pool a few each.
MAX_CONNECTIONS = 256


@dataclass(frozen=True)
class ConnectionBounds:
    """The limits one listener applies; the defaults are the module's constants."""

    headers_timeout: float = HEADERS_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT
    max_connections: int = MAX_CONNECTIONS


def server_config(app: Any, bounds: ConnectionBounds | None = None) -> uvicorn.Config:
    """uvicorn settings serving the ASGI ``app`` under ``bounds``: no access log, no lifespan."""
    protocol = type(
        "BoundedH11Protocol",
        (_BoundedH11Protocol,),
        {"bounds": bounds or ConnectionBounds(), "reports": _Reports()},
    )
    return uvicorn.Config(
        app,
        http=protocol,
        # An upgraded connection would leave this protocol, and its bounds, behind.
        ws="none",
        log_level="warning",
        # No logging config of uvicorn's own: its lines go to the root logger, in `--log-format`.
        log_config=None,
        access_log=False,
        lifespan="off",
    )


class _Reports:
    """One listener's log lines for its bounds: under a flood, at once, then at most every 10 s."""

    def __init__(self) -> None:
        self.refused = LimitLog(log)
        self.slow_head = LimitLog(log)
        self.slow_body = LimitLog(log)


class _BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol under one deadline at a time (see the module docstring)."""

    bounds: ClassVar[ConnectionBounds]
    reports: ClassVar[_Reports]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None
        self._awaiting: str | None = None  # "head", "body", "idle" or None while the app works

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.bounds.max_connections:
            self.reports.refused(
                "HTTP connection from %s refused: %d connections are open, the limit is %d",
                self._peer(),
                len(self.connections) - 1,
                self.bounds.max_connections,
            )
            transport.close()
            return
        self._await("head", self.bounds.headers_timeout)

    def data_received(self, data: bytes) -> None:
        cycle, awaiting = self.cycle, self._awaiting
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self.cycle is not cycle:
            self._after_head(self.cycle)
        elif awaiting == "body" and not self.cycle.more_body:
            self._await(None, 0)
        elif awaiting == "idle":
            # The first bytes of the next request: its head is due now.
            self._await("head", self.bounds.headers_timeout)

    def on_response_complete(self) -> None:
        cycle = self.cycle
        super().on_response_complete()
        if self.transport.is_closing():
            return
        # uvicorn's own keep-alive timer restarts on every byte; this protocol's deadlines do not.
        self._unset_keepalive_if_required()
        if self.cycle is not cycle:
            self._after_head(self.cycle)  # a pipelined request was already waiting
        else:
            self._await("idle", self.bounds.keep_alive_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._await(None, 0)
        super().connection_lost(exc)

    def _after_head(self, cycle: RequestResponseCycle) -> None:
        if cycle.more_body:
            self._await("body", self.bounds.body_timeout)
        else:
            self._await(None, 0)

    def _await(self, what: str | None, within: float) -> None:
        """Replace the running deadline with one for ``what`` (None: no deadline)."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._awaiting = what
        if what is not None:
            self._deadline = self.loop.call_later(within, self._expire, what, within)

    def _expire(self, what: str, within: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if what == "idle":
            log.debug("HTTP connection from %s closed after %g s idle", self._peer(), within)
        elif what == "head":
            self.reports.slow_head(
                "HTTP connection from %s closed: no complete request head within %g s", self._peer(), within
            )
        else:
            self.reports.slow_body(
                "HTTP connection from %s closed: the request body did not arrive within %g s",
                self._peer(),
                within,
            )
        self.transport.close()

    def _peer(self) -> str:
        if self.client is None:
            return "an unknown address"
        host, port = self.client
        return f"{host}:{port}"
