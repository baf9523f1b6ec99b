"""The embedded amqtt broker: a `$aws`-capable `Broker` and its lifecycle."""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from amqtt.broker import Broker
from amqtt.contexts import Action, BrokerConfig, ListenerConfig, ListenerType
from amqtt.errors import AMQTTError, BrokerError, ProtocolHandlerError
from amqtt.events import BrokerEvents
from amqtt.mqtt.constants import QOS_1, QOS_2
from amqtt.mqtt.disconnect import DisconnectPacket

from iot_jobs_bridge.broker.admissions import Admissions
from iot_jobs_bridge.broker.auth import Authenticator
from iot_jobs_bridge.broker.connections import ConnectionLifecycle, devices_log
from iot_jobs_bridge.broker.framing import abort_connection
from iot_jobs_bridge.broker.limits import BrokerLimits, LimitLog
from iot_jobs_bridge.broker.outbox import Outbox
from iot_jobs_bridge.broker.plugins import (
    JobsAuthPlugin,
    JobsTopicPlugin,
    check_topic,
    session_refusal,
)
from iot_jobs_bridge.broker.presence import DisconnectReason, Presence, PresenceBook
from iot_jobs_bridge.broker.protocol import mark_ending
from iot_jobs_bridge.broker.routing import SubscriptionIndex
from iot_jobs_bridge.schemas import topics

__all__ = ["BrokerStartError", "EmbeddedBroker", "JobsBroker", "TlsListener"]

# amqtt requires a listener named "default", whose settings other listeners inherit: the
# plain device listener, or when that is off the service's own loopback listener.
_LISTENER = "default"
_TLS_LISTENER = "tls"

log = logging.getLogger("iot_jobs_bridge.broker.embedded")


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener that requires a client certificate signed by ``cafile``."""

    port: int
    certfile: Path
    keyfile: Path
    cafile: Path
    host: str = "127.0.0.1"


class BrokerStartError(Exception):
    """The embedded broker could not start, e.g. its port is already in use."""


class JobsBroker(ConnectionLifecycle, Broker):  # type: ignore[misc]  # amqtt ships no type information
    """amqtt's `Broker`, except that clients may publish to `$` topics.

    Stock amqtt 0.12.1 refuses every client PUBLISH whose topic starts with `$`
    (it applies [MQTT-4.7.2-1], a rule about wildcard *subscriptions*, to
    publishing) and then stops routing anything else that client publishes.
    AWS IoT Jobs devices publish to `$aws/things/<thing>/jobs/...`, so those
    messages must be routed; the topic ACL plugin decides who may publish where.

    Nothing is retained on a `$` topic: the retain flag of a PUBLISH or will
    there is ignored (the message is still delivered), so no client can plant a
    message that the broker replays to devices on their `$aws/...` topics.

    Everything else is stock, including the rule that `$` topics never match
    filters starting with `+` or `#` (`Broker._matches`).
    """

    async def _handle_message_delivery(self, client_session: Any, handler: Any, wait_deliver: Any) -> bool:
        # amqtt has no hook between its topic checks and routing. So anything
        # other than a well-formed `$` topic goes through the stock method
        # untouched (an empty or wildcard topic still gets the stock refusal),
        # and a `$` topic runs the rest of the stock method, copied from amqtt
        # 0.12.1 without the `$` refusal. Re-check this on any amqtt upgrade.
        app_message = wait_deliver.result()
        topic = getattr(app_message, "topic", None)
        if not topic or "#" in topic or "+" in topic:
            # [MQTT-3.3.2-2] a PUBLISH topic has no wildcards (and is never empty): a
            # protocol violation closes the connection. Stock amqtt answered with
            # nothing and stopped routing the client's later messages.
            self.logger.warning("closing %s: it published to %r", client_session.client_id, topic)
            mark_ending(handler, DisconnectReason.CLIENT_ERROR)
            abort_connection(handler.writer)
            return True
        if not topic.startswith("$"):
            stock: bool = await super()._handle_message_delivery(client_session, handler, wait_deliver)
            return stock

        await self.plugins_manager.fire_event(
            BrokerEvents.MESSAGE_RECEIVED, client_id=client_session.client_id, message=app_message
        )
        if not await self._topic_filtering(client_session, topic=topic, action=Action.PUBLISH):
            return True  # `check_topic` logged the refusal
        await self.plugins_manager.fire_event(
            BrokerEvents.MESSAGE_BROADCAST, client_id=client_session.client_id, message=app_message
        )
        await self._route(client_session, topic, app_message.data)
        return True

    async def _handle_disconnect(self, client_session: Any, handler: Any, disconnect_waiter: Any) -> None:
        # Stock amqtt 0.12.1, except that the will passes the topic rules again when it
        # fires (access may have changed since CONNECT) and is never retained on a `$` topic.
        result = disconnect_waiter.result()
        if isinstance(result, DisconnectPacket):
            mark_ending(handler, DisconnectReason.CLIENT_INITIATED_DISCONNECT)
        elif client_session.will_flag:
            await self._publish_will(client_session)
        await self._stop_handler(handler)
        client_session.transitions.disconnect()
        await self.plugins_manager.fire_event(
            BrokerEvents.CLIENT_DISCONNECTED,
            client_id=client_session.client_id,
            client_session=client_session,
        )

    async def _publish_will(self, session: Any) -> None:
        topic, message, qos = session.will_topic, session.will_message, session.will_qos
        if not check_topic(session, topic, Action.PUBLISH):
            return
        await self._route(session, topic, message, qos)
        if session.will_retain and not topic.startswith("$"):
            await self.retain_message(session, topic, message, qos)

    def presence_of(self, client_id: str) -> Presence | None:
        """The latest known of ``client_id``'s connection."""
        return self._presence.get(client_id)

    @property
    def devices_connected(self) -> int:
        """How many devices are connected (see `PresenceBook.devices_connected`)."""
        return self._presence.devices_connected

    async def reauthenticate(self) -> int:
        """Check every live connection's credentials again; close those no longer accepted.

        Called after certificates, policies or things change, so a revoked
        certificate or a deleted thing loses its open connection at once, and
        the connections that stay get their current rights. Returns how many
        were closed.
        """
        closed = 0
        for client_id, (session, handler) in list(self._sessions.items()):
            if handler is None or not session.transitions.is_connected():
                continue
            if await self._authenticate(session, None):
                continue
            reason = session_refusal(session)
            devices_log.info(
                "closing %s: its credentials are no longer accepted: %s",
                client_id,
                reason,
                extra={"thing": client_id, "reason": reason},
            )
            mark_ending(handler, DisconnectReason.AUTH_ERROR)
            abort_connection(handler.writer)
            closed += 1
        return closed

    def __init__(
        self,
        *args: Any,
        limits: BrokerLimits | None = None,
        service_only: frozenset[str] = frozenset(),
        now: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._presence = PresenceBook(now)
        self._shutting_down = False
        self._limits = limits or BrokerLimits()
        self._service_only = service_only
        self._tls_contexts = {}
        self._handshakes = 0
        self._too_many_connections = LimitLog(log)
        self._too_many_handshakes = LimitLog(log)
        self._outbox = Outbox(self._limits, log)
        # Routing looks filters up in a topic tree instead of testing every one
        # (see `broker.routing`); a reverse index finds a client's own filters
        # when it goes, instead of scanning the fleet's.
        self._subscriptions = SubscriptionIndex()
        self._filters_of: dict[str, set[str]] = {}
        self._ends = {}
        self._connections = {}
        self._admissions = Admissions()
        # The jobs service in this process: device requests go to it directly, not over MQTT.
        self.request_sink: Callable[[str, bytes], None] | None = None

    def publish_read(self, session: Any, handler: Any, topic: str, data: bytes) -> None:
        """Route a PUBLISH to a `$` topic as its connection reads it (`broker.protocol`).

        The rest of `_handle_message_delivery`'s `$` path, without its two plugin
        events: no plugin of ours listens to them.
        """
        if check_topic(session, topic, Action.PUBLISH):
            self._route_now(session, topic, data)

    async def _route(self, session: Any, topic: str, data: bytes, qos: int | None = None) -> None:
        self._route_now(session, topic, data, qos)

    def _route_now(self, session: Any, topic: str, data: bytes, qos: int | None = None) -> None:
        """Deliver a publish that passed the topic rules: to the jobs service, if it is a request, and on."""
        sink = self.request_sink
        if sink is not None:
            placed = topics.place(topic)
            if placed is not None and not placed.is_reply:
                sink(topic, bytes(data))
        self._fan_out(session, topic, data, qos)

    def publish_local(self, topic: str, data: bytes) -> None:
        """Publish as the broker itself (the in-process jobs service's replies); never waits.

        Each subscriber gets it at the QoS of its subscription, as with any client's publish.
        """
        self._fan_out(None, topic, data)

    async def _broadcast_message(
        self, session: Any, topic: str, data: bytes, force_qos: int | None = None
    ) -> None:
        # Stock amqtt queues every message for one broadcast task to take; here it goes out at once.
        self._fan_out(session, topic, data, force_qos)

    async def add_subscription(self, subscription: tuple[str, int], session: Any) -> int:
        granted: int = await super().add_subscription(subscription, session)
        if granted != 0x80:
            self._filters_of.setdefault(session.client_id, set()).add(subscription[0])
        return granted

    def _del_subscription(self, a_filter: str, session: Any) -> int:
        deleted: int = super()._del_subscription(a_filter, session)
        if a_filter in self._subscriptions and not self._subscriptions[a_filter]:
            del self._subscriptions[a_filter]  # stock amqtt keeps unsubscribed filters forever
        filters = self._filters_of.get(session.client_id)
        if filters is not None:
            filters.discard(a_filter)
            if not filters:
                del self._filters_of[session.client_id]
        return deleted

    async def _del_all_subscriptions(self, session: Any) -> None:
        # Stock amqtt walks every filter of every client here, on each disconnect.
        for topic_filter in list(self._filters_of.pop(session.client_id, ())):
            super()._del_subscription(topic_filter, session)
            if topic_filter in self._subscriptions and not self._subscriptions[topic_filter]:
                del self._subscriptions[topic_filter]

    async def _run_broadcast(self, running_tasks: deque[asyncio.Task[Any]]) -> None:
        # Only presence events still come through amqtt's broadcast queue.
        broadcast = await self._broadcast_queue.get()
        self._fan_out(broadcast["session"], broadcast["topic"], broadcast["data"], broadcast.get("qos"))

    def _get_handler(self, session: Any) -> Any:
        """Stock, changed: the handler of this very session; one that was replaced has none."""
        registered, handler = self._sessions.get(session.client_id, (None, None))
        return handler if registered is session else None

    def _fan_out(self, sender: Any, topic: str, data: bytes, force_qos: int | None = None) -> None:
        """Hand a message to every subscriber whose filter matches ``topic`` and who may receive it.

        Stock amqtt 0.12.1's `_run_broadcast`, changed: it runs at once, with no
        queue or task between a publish and its subscribers; it works on a
        snapshot of the matching subscriptions, found in the topic tree (stock
        amqtt awaited the ACL check while iterating the live dict, so a client
        subscribing meanwhile raised "changed size during iteration" and lost the
        message for every later subscriber); a QoS 1 message to a connected
        client is written out at once (`FleetProtocolHandler.send_at_qos1`),
        anything else goes through amqtt's delivery task; each connection's
        bytes waiting are bounded (`broker.outbox`). Re-check on any amqtt upgrade.
        """
        targets = [
            (session, qos)
            for topic_filter in self._subscriptions.matching(topic)
            for session, qos in list(self._subscriptions[topic_filter])
        ]
        data = data or b""
        for target_session, sub_qos in targets:
            qos = sub_qos if force_qos is None else force_qos
            if not check_topic(target_session, topic, Action.RECEIVE):
                continue
            connected = target_session.transitions.state == "connected"
            if not connected:
                persistent = not target_session.clean_session and not target_session.is_anonymous
                if persistent and qos in (QOS_1, QOS_2):
                    broadcast = {"session": sender, "topic": topic, "data": data}
                    self._spawn(self._retain_broadcast_message(broadcast, qos, target_session))
                continue
            handler = self._get_handler(target_session)
            if not handler:
                continue
            size = len(data)
            if not self._outbox.take(target_session, handler, size):
                continue
            if qos == QOS_1:
                if not handler.send_at_qos1(topic, data):
                    self._outbox.release(handler, size)
                continue
            task = self._spawn(_deliver(target_session, handler, topic, data, qos))
            task.add_done_callback(functools.partial(self._sent, handler, size))

    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        # Kept in amqtt's queue of running deliveries, which shutdown cancels; reaped here.
        running = self._tasks_queue
        while running and running[0].done():
            done = running.popleft()
            if not done.cancelled() and done.exception() is not None:
                log.error("a delivery failed", exc_info=done.exception())
        task: asyncio.Task[Any] = asyncio.ensure_future(work)
        running.append(task)
        return task

    @staticmethod
    def _create_ssl_context(listener: ListenerConfig) -> ssl.SSLContext:
        # Stock amqtt asks for a client certificate but accepts a client without
        # one (CERT_OPTIONAL); devices are known by their certificates here.
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(listener.cafile))
        context.load_cert_chain(str(listener.certfile), str(listener.keyfile))
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    async def _topic_filtering(self, session: Any, topic: str, action: Action) -> bool:
        # amqtt runs every check through its plugin manager, one task per plugin per
        # message; our topic plugin is the only one, so its rule is called directly.
        return check_topic(session, topic, action)

    async def _create_server_instance(
        self, listener_name: str, listener_type: Any, address: str | None, port: int, ssl_context: Any
    ) -> Any:
        # TLS listeners accept plain TCP; `ConnectionLifecycle` does the handshake itself, under
        # the connect deadline and the cap on handshakes in progress.
        if ssl_context is not None:
            self._tls_contexts[listener_name] = ssl_context
        return await super()._create_server_instance(listener_name, listener_type, address, port, None)

    def _sent(self, handler: Any, size: int, _task: asyncio.Task[Any]) -> None:
        self._outbox.release(handler, size)


class EmbeddedBroker:
    """The embedded MQTT 3.1.1 broker: its listeners, our authentication and topic ACL, and its limits.

    Use it as an async context manager, or call `start()` and `close()`;
    `close()` is idempotent and a closed broker cannot be restarted.

    `port` is the plain device listener; ``None`` turns it off, and the jobs
    service then reaches the broker through a loopback listener that admits
    nothing but the service's own credentials (`service_address`). `tls` adds
    a listener that requires client certificates. A port of 0 lets the OS
    pick (give a literal address as `host` then: a name that resolves to
    several addresses gets one port per address); the address properties tell
    what was bound. ``clock`` (epoch seconds) stamps presence events, and
    `presence` tells what is known of a client id's connection.
    """

    def __init__(
        self,
        authenticator: Authenticator,
        host: str = "127.0.0.1",
        port: int | None = 1883,
        tls: TlsListener | None = None,
        limits: BrokerLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if port is None and tls is None:
            raise ValueError("the MQTT broker needs a plain or a TLS listener")
        self._authenticator = authenticator
        self._host = host
        self._port = port
        self._tls = tls
        self._limits = limits or BrokerLimits()
        self._clock = clock
        self._state: Literal["new", "starting", "started", "closed"] = "new"
        self._broker: JobsBroker | None = None
        self._addresses: dict[str, tuple[str, int]] = {}

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) of the plain device listener; only while the broker runs and has one."""
        if self._broker is None:
            raise RuntimeError("the MQTT broker is not running")
        if self._port is None:
            raise RuntimeError("the MQTT broker's plain listener is off")
        return self._addresses[_LISTENER]

    @property
    def tls_address(self) -> tuple[str, int] | None:
        """The (host, port) of the TLS listener, when there is one and the broker runs."""
        return self._addresses.get(_TLS_LISTENER)

    @property
    def service_address(self) -> tuple[str, int]:
        """Where the jobs service's own connection goes: the plain listener, or the service-only one."""
        if self._broker is None:
            raise RuntimeError("the MQTT broker is not running")
        return self._addresses[_LISTENER]

    @property
    def limits(self) -> BrokerLimits:
        return self._limits

    @property
    def running(self) -> bool:
        """Whether the broker is started and every one of its listeners accepts connections."""
        broker = self._broker
        if self._state != "started" or broker is None:
            return False
        return all(
            server.instance is not None and server.instance.is_serving()
            for server in broker._servers.values()
        )

    def presence(self, client_id: str) -> Presence | None:
        """The latest known of ``client_id``'s connection (see `broker.presence`); None if never seen."""
        return self._broker.presence_of(client_id) if self._broker is not None else None

    def connected_devices(self) -> int:
        """How many devices (things, not the admin's or the service's clients) are connected now.

        Safe to call from any thread; 0 once the broker is closed.
        """
        broker = self._broker
        return broker.devices_connected if broker is not None else 0

    async def reauthenticate(self) -> int:
        """Close the connections whose credentials are no longer accepted (see `JobsBroker`)."""
        return await self._broker.reauthenticate() if self._broker is not None else 0

    def serve_requests(self, sink: Callable[[str, bytes], None] | None) -> None:
        """Hand every jobs request a client may publish to ``sink`` (topic, payload), in this process.

        Called on the broker's event loop, after the topic rules; ``None`` stops it.
        Other subscribers (an admin's monitor) still get the requests over MQTT.
        """
        if self._broker is None:
            raise RuntimeError("the MQTT broker is not running")
        self._broker.request_sink = sink

    def publish(self, topic: str, data: bytes) -> None:
        """Publish ``data`` on ``topic`` as the broker itself, to every subscriber the rules allow."""
        if self._broker is None:
            raise RuntimeError("the MQTT broker is not running")
        self._broker.publish_local(topic, data)

    async def start(self) -> None:
        """Bind the listener(s) and start serving clients."""
        if self._state != "new":
            raise RuntimeError(f"cannot start an MQTT broker that is {self._state}")
        self._state = "starting"
        _quiet_amqtt_logging()
        listeners = self._listeners()
        try:
            service_only = frozenset({_LISTENER}) if self._port is None else frozenset()
            broker = JobsBroker(
                self._config(listeners), limits=self._limits, service_only=service_only, now=self._clock
            )
            # Fail closed: without topic filtering amqtt never calls the ACL plugin.
            if not broker.plugins_manager.is_topic_filtering_enabled():
                raise BrokerStartError("amqtt did not enable topic filtering; refusing to run without ACL")
            await broker.start()
        except BrokerError as exc:
            self._state = "closed"
            where = ", ".join(listener.bind for listener in listeners.values())
            raise BrokerStartError(
                f"cannot start the MQTT broker on {where}: {exc.__cause__ or exc}"
            ) from exc
        except BaseException:
            self._state = "closed"
            raise
        if self._closed_while_starting():
            await broker.shutdown()
            return
        self._broker = broker
        self._addresses = {name: _bound_address(broker, name) for name in listeners}
        self._state = "started"

    def _closed_while_starting(self) -> bool:
        # A separate method because the type checker narrows `_state` to
        # "starting" across the awaits above, where close() may have run.
        return self._state == "closed"

    async def close(self) -> None:
        """Disconnect every client and stop listening. Safe to call more than once."""
        self._state = "closed"
        broker, self._broker = self._broker, None
        self._addresses = {}
        if broker is not None:
            await broker.shutdown()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _listeners(self) -> dict[str, ListenerConfig]:
        # With the plain listener off, the service alone connects on loopback without TLS.
        plain = f"{self._host}:{self._port}" if self._port is not None else "127.0.0.1:0"
        listeners = {_LISTENER: ListenerConfig(type=ListenerType.TCP, bind=plain)}
        if self._tls is not None:
            listeners[_TLS_LISTENER] = ListenerConfig(
                type=ListenerType.TCP,
                bind=f"{self._tls.host}:{self._tls.port}",
                ssl=True,
                certfile=self._tls.certfile,
                keyfile=self._tls.keyfile,
                cafile=self._tls.cafile,
            )
        return listeners

    def _config(self, listeners: dict[str, ListenerConfig]) -> BrokerConfig:
        # Listing plugins explicitly replaces amqtt's defaults (event/packet
        # loggers, anonymous auth, $SYS), and loading plugins from this
        # section is what switches amqtt's auth and topic filtering on.
        return BrokerConfig(
            listeners=listeners,
            plugins={
                _dotted_path(JobsAuthPlugin): {"authenticator": self._authenticator},
                _dotted_path(JobsTopicPlugin): {},
            },
        )


async def _deliver(session: Any, handler: Any, topic: str, data: bytes, qos: int | None) -> None:
    """Send one message to one client; its connection ending meanwhile is no error of the broker's.

    Stock amqtt logs each such delivery as a failed task, traceback and all.
    """
    try:
        await handler.mqtt_publish(topic, data, qos, retain=False)
    except (AMQTTError, ProtocolHandlerError, OSError) as exc:
        log.debug("a message on %s to %s was not delivered: %s", topic, session.client_id, exc)


def _dotted_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _bound_address(broker: JobsBroker, listener: str) -> tuple[str, int]:
    # amqtt keeps the asyncio server per listener; it has no public accessor.
    sockets = broker._servers[listener].instance.sockets
    host, port = sockets[0].getsockname()[:2]
    return str(host), int(port)


def _quiet_amqtt_logging() -> None:
    # amqtt logs every connection at INFO, and `transitions` (its state
    # machines) every session state change. Our plugins log each refusal at
    # INFO with client id and topic, so both are only needed from WARNING up
    # (protocol violations, take-overs). A level set by the application wins.
    for name in ("amqtt", "transitions"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
