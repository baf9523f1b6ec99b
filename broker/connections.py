"""How the embedded broker takes a connection from CONNECT to its end.

This is amqtt 0.12.1's `Broker._client_connected` and `_handle_client_session`
with their order fixed for fleets; each change is marked where it is made:

* a socket must finish its TLS handshake (done here, so that pending
  handshakes can be counted and bounded) and send its CONNECT within
  `BrokerLimits.connect_timeout`, and the broker holds at most
  `max_connections` connections;
* the CONNECT is authenticated before any existing session is looked at, so a
  refused CONNECT carrying someone else's client id changes nothing of theirs;
* a will topic must pass the same rules as a PUBLISH there: otherwise the
  CONNECT is refused as not authorized [AWS IoT checks publish rights on the
  will topic at CONNECT];
* a CONNECT with the client id of a live connection takes over: the old
  connection is closed and its end fully handled (will included) before the
  new session is set up, so the new connection gets every message;
* the keepalive is brought into `BrokerLimits`' range (0 counts as its
  maximum) and a connection silent for one and a half times it is closed
  (stock amqtt waits for it forever; `broker.protocol` closes it), which
  fires its will;
* every packet is checked and read whole before amqtt parses it
  (`broker.framing`), so an oversized or malformed packet closes the
  connection instead of being buffered or desynchronising the stream;
* once connected, the client's packets are handled by `broker.protocol`
  (the hot ones inline) and PUBLISHes to `$` topics are routed as they are
  read;
* the new client is not offered the retained messages of every filter of
  every client (an await per filter in the broker); retained messages go out
  on SUBSCRIBE, as MQTT 3.1.1 says;
* a connection's socket is closed however its handling ends, cancellation
  included, and shutting the broker down closes every connection and waits
  for its handling to end. Stock amqtt leaves a connection that has not
  finished CONNECT open after shutdown (Python 3.11's ``Server.close`` keeps
  accepted sockets), and asyncio does not close the socket of a cancelled
  connection task, so it leaked until garbage collection;
* each connection's start and end are published as AWS IoT presence events
  (`broker.presence`), its end with the reason whoever closed it recorded on
  its handler (`mark_ending`).

Re-check all of it on any amqtt upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from amqtt.contexts import Action
from amqtt.errors import AMQTTError, BrokerError, MQTTError, NoDataError
from amqtt.events import BrokerEvents
from amqtt.utils import gen_client_id
from transitions import MachineError

from iot_jobs_bridge.broker.admissions import Admissions
from iot_jobs_bridge.broker.framing import CheckedReader, abort_connection, topic_problem
from iot_jobs_bridge.broker.limits import BrokerLimits, LimitLog
from iot_jobs_bridge.broker.outbox import Outbox
from iot_jobs_bridge.broker.plugins import check_topic, session_principal, session_refusal
from iot_jobs_bridge.broker.presence import DisconnectReason, Presence, PresenceBook
from iot_jobs_bridge.broker.protocol import FleetProtocolHandler, mark_ending

__all__ = ["ConnectionLifecycle"]

_log = logging.getLogger("iot_jobs_bridge.broker.connections")
# The operator's view of devices' connections (see `jobs_service.logs`).
devices_log = logging.getLogger("iotjobs.devices")

# [MQTT-3.1.2-24]: a server closes a connection silent for one and a half keepalives.
KEEPALIVE_GRACE = 1.5
# How long a take-over waits for the old connection's end to be handled.
_TAKE_OVER_WAIT = 5.0
# How long shutdown waits for the connections it closed to finish their handling.
_SHUTDOWN_WAIT = 5.0
# Errors that end a connection before it is served: protocol, TLS and socket failures.
_EARLY_END = (AMQTTError, MQTTError, NoDataError, OSError, EOFError)
# A persistent session keeps its presence `sessionIdentifier` across connections.
_SESSION_ID_KEY = "iotjobs.session_identifier"


class ConnectionLifecycle:
    """Mixed into `JobsBroker` ahead of amqtt's `Broker`; the attributes are amqtt's or set by it."""

    _sessions: dict[str, tuple[Any, Any]]
    _servers: dict[str, Any]
    listeners_config: dict[str, Any]
    plugins_manager: Any
    config: Any
    logger: logging.Logger

    _limits: BrokerLimits
    # listener name -> TLS context, for listeners whose handshake is done here
    _tls_contexts: dict[str, ssl.SSLContext]
    # listener names that admit only the jobs service's own connection
    _service_only: frozenset[str]
    # client id -> (session, set when that connection's end has been handled)
    _ends: dict[str, tuple[Any, asyncio.Event]]
    # every connection being handled: its task -> its writer
    _connections: dict[asyncio.Task[Any], Any]
    _handshakes: int
    _too_many_connections: LimitLog
    _too_many_handshakes: LimitLog
    _presence: PresenceBook
    _shutting_down: bool
    _broadcast_queue: asyncio.Queue[dict[str, Any]]
    _outbox: Outbox
    _admissions: Admissions

    async def shutdown(self) -> None:
        """Stop listening, close every connection and wait for its end, then stock shutdown."""
        self._shutting_down = True
        for server in self._servers.values():
            if server.instance is not None:
                server.instance.close()
        connections = dict(self._connections)
        for writer in connections.values():
            abort_connection(writer)
        if connections:
            _, pending = await asyncio.wait(connections, timeout=_SHUTDOWN_WAIT)
            if pending:
                self.logger.warning("%d connections did not end at shutdown", len(pending))
        await super().shutdown()  # type: ignore[misc]  # amqtt's Broker.shutdown, next in the MRO

    async def _client_connected(self, listener_name: str, reader: Any, writer: Any) -> None:
        server = self._servers.get(listener_name)
        if not server:
            raise BrokerError(f"Invalid listener name '{listener_name}'")
        if len(self._connections) >= self._limits.max_connections:
            self._too_many_connections(
                "refused a connection from %s: %d connections are open, the limit",
                _peer(writer),
                len(self._connections),
            )
            abort_connection(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            await self._handle_connection(server, listener_name, reader, writer)
        finally:
            # Changed: whatever ended the handling (a cancellation too), the socket is closed.
            del self._connections[task]
            abort_connection(writer)

    async def _handle_connection(self, server: Any, listener_name: str, reader: Any, writer: Any) -> None:
        await server.acquire_connection()
        try:
            if writer.get_peer_info() is None:
                await writer.close()
                return
            # Changed: TLS and CONNECT within a deadline; packets checked and read whole.
            checked = CheckedReader(reader, writer, self._limits)
            try:
                async with asyncio.timeout(self._limits.connect_timeout):
                    tls = self._tls_contexts.get(listener_name)
                    if tls is not None and not await self._tls_handshake(tls, writer):
                        return
                    handler, session = await FleetProtocolHandler.init_from_connect(
                        checked, writer, self.plugins_manager
                    )
            except TimeoutError:
                _log.info(
                    "closing %s: no CONNECT within %s s of connecting",
                    _peer(writer),
                    self._limits.connect_timeout,
                )
                return
            except _EARLY_END as exc:
                _log.info("closing %s before its CONNECT: %s", _peer(writer), exc or type(exc).__name__)
                return
            if session.clean_session and not session.client_id:
                session.client_id = gen_client_id()
            checked.client_id = session.client_id
            # Changed: authenticate first, will included; a refusal touches no existing session.
            refusal = await self._refusal(session, listener_name)
            if refusal is not None:
                devices_log.info(
                    "refused connection: client id %r from %s: %s",
                    session.client_id,
                    _peer(writer),
                    refusal,
                    extra={"thing": session.client_id, "reason": refusal, "address": _peer(writer)},
                )
                handler.attach(session, checked, writer)
                await handler.mqtt_connack_authorize(False)
                await writer.close()
                return
            # Changed: one admission per client id at a time (`broker.admissions`); a live
            # connection with this client id is closed and its end handled first.
            async with self._admissions.turn(session.client_id) as admitted:
                await self._take_over(session.client_id)
                session = await self._session_for(session)
                await self._serve(checked, writer, session, handler, admitted)
        except _EARLY_END as exc:
            self.logger.warning("Error while handling a client session: %s", exc or type(exc).__name__)
        finally:
            server.release_connection()

    async def _tls_handshake(self, context: ssl.SSLContext, writer: Any) -> bool:
        """Upgrade the connection to TLS; False (after one log line) when that cannot be done."""
        if self._handshakes >= self._limits.max_pending_handshakes:
            self._too_many_handshakes(
                "refused a TLS connection from %s: %d handshakes are in progress, the limit",
                _peer(writer),
                self._handshakes,
            )
            return False
        self._handshakes += 1
        try:
            await writer._writer.start_tls(context, ssl_handshake_timeout=self._limits.connect_timeout)
        except (OSError, EOFError) as exc:  # ssl.SSLError and resets are OSErrors
            _log.info("TLS handshake with %s failed: %s", _peer(writer), exc or type(exc).__name__)
            return False
        finally:
            self._handshakes -= 1
        return True

    async def _refusal(self, session: Any, listener_name: str) -> str | None:
        """Why this CONNECT is refused, or None to accept it."""
        if not await self._authenticate(session, self.listeners_config[listener_name]):
            return session_refusal(session)
        principal = session_principal(session)
        if listener_name in self._service_only and (principal is None or principal.kind != "service"):
            return "this listener admits only the jobs service"
        if session.will_flag:
            problem = topic_problem(session.will_topic)
            if problem is not None:
                return f"will topic not allowed: it {problem}"
            if not check_topic(session, session.will_topic, Action.PUBLISH):
                return f"will topic not allowed: it may not publish to {session.will_topic!r}"
        return None

    async def _take_over(self, client_id: str) -> None:
        current = self._sessions.get(client_id)
        end = self._ends.get(client_id)
        if current is None or end is None or not current[0].transitions.is_connected():
            return
        _log.info("%s connected again while its old connection is open: closing the old one", client_id)
        mark_ending(current[1], DisconnectReason.DUPLICATE_CLIENTID)
        abort_connection(current[1].writer)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(end[1].wait(), _TAKE_OVER_WAIT)

    async def _session_for(self, session: Any) -> Any:
        """Stock `_initialize_client_session` after the CONNECT was read, with our keepalive rule."""
        if session.clean_session:
            await self._delete_session(session.client_id)
            session.parent = 0
        elif session.client_id in self._sessions:
            existing, _ = self._sessions[session.client_id]
            # The new CONNECT brings its own will, keepalive and credentials.
            for name in (
                "will_flag",
                "will_message",
                "will_topic",
                "will_qos",
                "will_retain",
                "keep_alive",
                "username",
                "password",
                "ssl_object",
                "remote_address",
                "remote_port",
            ):
                setattr(existing, name, getattr(session, name))
            existing.attributes.update(session.attributes)  # the principal just authenticated
            session = existing
            session.parent = 1
        else:
            session.parent = 0
        # Changed: the keepalive is kept within the limits (0 counts as the maximum), and a
        # connection is closed after one and a half of it, as MQTT asks; amqtt adds a fixed delay.
        session.keep_alive = math.ceil(self._limits.keepalive(session.keep_alive) * KEEPALIVE_GRACE)
        return session

    async def _serve(
        self, reader: Any, writer: Any, session: Any, handler: Any, admitted: Callable[[], None]
    ) -> None:
        """Stock `_handle_client_session`, after authentication, without the retained-message sweep.

        ``admitted`` is called once the connection is registered and announced: the
        next CONNECT for its client id may then take it over.
        """
        end = asyncio.Event()
        self._ends[session.client_id] = (session, end)
        connection: Presence | None = None
        try:
            while True:
                try:
                    session.transitions.connect()
                    break
                except (MachineError, ValueError):
                    # Only reachable if a take-over timed out: wait for the old end.
                    self.logger.warning("Client %s is still connected, waiting", session.client_id)
                    await asyncio.sleep(1)
            handler.attach(session, reader, writer)
            handler.route_publish = self.publish_read
            handler.on_acknowledged = self._outbox.release
            self._sessions[session.client_id] = (session, handler)
            await handler.mqtt_connack_authorize(True)
            connection = self._connected(session)
            admitted()
            await self.plugins_manager.fire_event(
                BrokerEvents.CLIENT_CONNECTED, client_id=session.client_id, client_session=session
            )
            await handler.start()
            await self._publish_session_retained_messages(session)
            await self._client_message_loop(session, handler)
        finally:
            self._outbox.connection_ended(handler)
            if connection is not None:
                self._disconnected(connection, handler, reader)
            end.set()
            ends = self._ends
            if ends.get(session.client_id, (None, None))[1] is end:
                del ends[session.client_id]

    def _connected(self, session: Any) -> Presence:
        """Record and announce a connection that was just accepted."""
        principal = session_principal(session)
        previous = None if session.clean_session else session.attributes.get(_SESSION_ID_KEY)
        connection, event = self._presence.connected(
            session.client_id,
            session_identifier=previous,
            principal_identifier=principal.identifier if principal is not None else "",
            ip_address=session.remote_address,
            port=session.remote_port,
            keepalive=int(session.keep_alive / KEEPALIVE_GRACE),
            clean_session=bool(session.clean_session),
            device=principal is not None and principal.kind in ("thing", "policy"),
        )
        session.attributes[_SESSION_ID_KEY] = connection.session_identifier
        devices_log.debug(
            "%s connected from %s:%s",
            session.client_id,
            session.remote_address,
            session.remote_port,
            extra={"thing": session.client_id, "address": f"{session.remote_address}:{session.remote_port}"},
        )
        self._announce(event)
        return connection

    def _disconnected(self, connection: Presence, handler: Any, reader: Any) -> None:
        """Record and announce the end of ``connection``; at shutdown no one is left to tell."""
        reason = getattr(handler, "ending", None)
        if reason is None:
            refused = getattr(reader, "refused", False)
            reason = DisconnectReason.CLIENT_ERROR if refused else DisconnectReason.CONNECTION_LOST
        if self._shutting_down:
            reason = DisconnectReason.SERVER_INITIATED_DISCONNECT
        event = self._presence.disconnected(connection, reason)
        devices_log.debug(
            "%s disconnected: %s",
            connection.client_id,
            reason.value,
            extra={"thing": connection.client_id, "reason": reason.value},
        )
        if not self._shutting_down:
            self._announce(event)

    def _announce(self, event: tuple[str, bytes] | None) -> None:
        # Straight onto amqtt's broadcast queue (unbounded): no await, so it also runs while a
        # connection's handling is being cancelled.
        if event is not None:
            topic, payload = event
            self._broadcast_queue.put_nowait({"session": None, "topic": topic, "data": payload})

    if TYPE_CHECKING:  # amqtt's own methods, which this class calls (amqtt ships no types)

        async def _authenticate(self, session: Any, listener: Any) -> bool: ...

        async def _delete_session(self, client_id: str) -> None: ...

        async def _publish_session_retained_messages(self, session: Any) -> None: ...

        async def _client_message_loop(self, session: Any, handler: Any) -> None: ...

        def publish_read(self, session: Any, handler: Any, topic: str, data: bytes) -> None: ...


def _peer(writer: Any) -> str:
    info = writer.get_peer_info()
    return f"{info[0]}:{info[1]}" if info else "a client"
