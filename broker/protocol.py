"""One connected client's packets, on the broker's side: the hot ones handled inline.

This is amqtt 0.12.1's `BrokerProtocolHandler` with four changes, each
marked where it is made:

* its packet loop takes each packet whole from `broker.framing.CheckedReader`
  and handles a PUBLISH at QoS 0 or 1 to a `$` topic (every device request)
  and a PUBACK where it reads them. Stock amqtt reads a packet in pieces,
  starts a task per packet, queues a PUBLISH for another task to route and
  waits for each fixed header under ``asyncio.wait_for`` (a task more); that
  machinery cost more CPU than the jobs service itself. Every other packet
  (SUBSCRIBE, PINGREQ, DISCONNECT, QoS 2, a PUBLISH to another topic, which
  may be retained) goes to amqtt's own handler, as before;
* a QoS 1 message to this client is written out at once (`send_at_qos1`) and
  remembered in the session's in-flight messages until its PUBACK, instead of
  a task per delivery awaiting the PUBACK. Stock amqtt drops an outgoing QoS 1
  message after 5 s without PUBACK and forgets it when the connection ends;
  here it stays in flight as long as the session lives, and amqtt's
  `_retry_deliveries` sends it again, with DUP, when a persistent session
  reconnects;
* a connection that ends as soon as it starts is seen to end: stock amqtt
  created the future that tells the broker so only after starting the packet
  loop, and a loop that met the end at once left the connection's handling
  (and its place under `max_connections`) waiting forever;
* a connection silent for its keepalive (which `ConnectionLifecycle` sets to
  one and a half times the client's) is closed; stock amqtt times out and
  carries on waiting.

Re-check all of it on any amqtt upgrade.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from amqtt.adapters import BufferReader
from amqtt.errors import MQTTError
from amqtt.mqtt import packet_class
from amqtt.mqtt.packet import MQTTFixedHeader
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.protocol.handler import ProtocolHandler
from amqtt.session import OUTGOING, OutgoingApplicationMessage

from iot_jobs_bridge.broker.framing import abort_connection
from iot_jobs_bridge.broker.presence import DisconnectReason
from iot_jobs_bridge.schemas.mqtt_packets import publish_packet

__all__ = ["FleetProtocolHandler", "mark_ending"]

_log = logging.getLogger("iot_jobs_bridge.broker.protocol")

_PUBLISH, _PUBACK = 3, 4
# The stock handler of each packet type a client may send after CONNECT (a second
# CONNECT never gets here: `CheckedReader` closes the connection first).
_STOCK_HANDLERS = {
    3: "handle_publish",
    4: "handle_puback",
    5: "handle_pubrec",
    6: "handle_pubrel",
    7: "handle_pubcomp",
    8: "handle_subscribe",
    10: "handle_unsubscribe",
    12: "handle_pingreq",
    14: "handle_disconnect",
}
# Why a connection's packet loop stops quietly: the client went, or the broker closed it.
_CONNECTION_ENDED = (asyncio.IncompleteReadError, ConnectionError, OSError)

# Routes a PUBLISH read inline: (session, handler, topic, payload).
PublishRoute = Callable[[Any, "FleetProtocolHandler", str, bytes], None]


def mark_ending(handler: Any, reason: DisconnectReason) -> None:
    """Record why the broker is about to close ``handler``'s connection; the first reason stands."""
    if getattr(handler, "ending", None) is None:
        handler.ending = reason


class WrittenMessage(OutgoingApplicationMessage):  # type: ignore[misc]  # amqtt ships no types
    """A QoS 1 message `send_at_qos1` wrote out: sent again, it carries DUP."""

    __slots__ = ()


class FleetProtocolHandler(BrokerProtocolHandler):  # type: ignore[misc]  # amqtt ships no types
    """amqtt's broker-side protocol handler, with the changes the module describes."""

    # Why the broker closed this connection (see `mark_ending`); None: the client ended it.
    ending: DisconnectReason | None = None
    # Where a PUBLISH to a `$` topic goes once read; set by the broker before `start`.
    route_publish: PublishRoute | None = None
    # Told the size of each message `send_at_qos1` wrote, once its PUBACK comes.
    on_acknowledged: Callable[[FleetProtocolHandler, int], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # packet id -> size of each message written by `send_at_qos1` and not yet acknowledged
        self.unacknowledged: dict[int, int] = {}

    async def start(self) -> None:
        # Changed: the disconnect waiter exists before the packet loop starts. Stock amqtt
        # created it after, so a connection that ended at once (its end already read) left
        # a waiter nobody would resolve, and its handling, and its slot, were held forever.
        self._disconnect_waiter = asyncio.get_running_loop().create_future()
        await ProtocolHandler.start(self)  # `BrokerProtocolHandler.start` would replace the waiter

    def send_at_qos1(self, topic: str, data: bytes) -> bool:
        """Write a QoS 1 PUBLISH to this client now; False if its connection is closing.

        The message stays in the session's in-flight messages until its PUBACK.
        """
        session = self.session
        transport = self._transport()
        if session is None or transport is None or transport.is_closing():
            return False
        packet_id = session.next_packet_id
        session.inflight_out[packet_id] = WrittenMessage(packet_id, topic, 1, data, False)
        self.unacknowledged[packet_id] = len(data)
        transport.write(publish_packet(topic, data, 1, packet_id))
        return True

    async def _handle_qos1_message_flow(self, app_message: Any) -> None:
        # Changed: an outgoing message waits for its PUBACK as long as the connection lives.
        if app_message.direction != OUTGOING or self.session is None or app_message.packet_id is None:
            await super()._handle_qos1_message_flow(app_message)
            return
        packet_id = app_message.packet_id
        self.session.inflight_out.setdefault(packet_id, app_message)
        resent = app_message.publish_packet is not None or isinstance(app_message, WrittenMessage)
        packet = app_message.build_publish_packet(dup=resent)
        await self._send_packet(packet)
        app_message.publish_packet = packet
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._puback_waiters[packet_id] = waiter
        try:
            app_message.puback_packet = await waiter  # cancelled when the connection stops
        finally:
            self._puback_waiters.pop(packet_id, None)
        self.session.inflight_out.pop(packet_id, None)

    def handle_read_timeout(self) -> None:
        # Changed: a silent connection is closed (stock amqtt only logs it).
        session = self.session
        _log.info(
            "closing %s: nothing received for %s s (keepalive)",
            getattr(session, "client_id", "?"),
            getattr(session, "keep_alive", "?"),
        )
        mark_ending(self, DisconnectReason.MQTT_KEEP_ALIVE_TIMEOUT)
        abort_connection(self.writer)

    async def _reader_loop(self) -> None:
        # Changed: whole packets; PUBLISH (QoS 0/1, `$` topics) and PUBACK inline; see the module.
        assert self.session is not None and self._reader_ready is not None
        keepalive = self.session.keep_alive if (self.session.keep_alive or 0) > 0 else None
        running: deque[asyncio.Task[None]] = deque()
        while True:
            try:
                self._reader_ready.set()
                while running and running[0].done():
                    running.popleft()
                async with asyncio.timeout(keepalive):
                    first, length_bytes, body = await self.reader.packet()
                kind = first >> 4
                if kind == _PUBLISH and self._publish_inline(first, body):
                    continue
                if kind == _PUBACK and self._acknowledge_inline(body):
                    continue
                running.append(await self._stock_handling(bytes((first,)) + length_bytes + body))
            except MQTTError:
                _log.debug("a packet from %s was discarded", self.session.client_id)
            except asyncio.CancelledError:
                break
            except TimeoutError:
                self.handle_read_timeout()
            except _CONNECTION_ENDED:
                break
            except Exception as exc:  # as stock amqtt: one bad packet ends this connection, not the broker
                client = self.session.client_id
                _log.warning("closing %s: unexpected error reading its packets: %r", client, exc)
                break
        while running:
            running.popleft().cancel()
        await self.handle_connection_closed()
        self._reader_stopped.set()
        await self.stop()

    def _publish_inline(self, first: int, body: bytes) -> bool:
        """Route a QoS 0 or 1 PUBLISH to a `$` topic and acknowledge it; False: not one of those."""
        qos = (first >> 1) & 0x03
        route = self.route_publish
        if qos > 1 or route is None:
            return False
        size = int.from_bytes(body[:2], "big")
        topic = body[2 : 2 + size].decode()  # `CheckedReader` checked it is whole UTF-8
        if not topic.startswith("$"):
            return False  # it may be retained: amqtt's path
        start = 2 + size + 2 * qos
        if len(body) < start:
            return False  # the packet id is cut short: amqtt's parser refuses it
        route(self.session, self, topic, body[start:])
        if qos:
            transport = self._transport()
            if transport is not None and not transport.is_closing():
                transport.write(b"\x40\x02" + body[2 + size : start])
        return True

    def _acknowledge_inline(self, body: bytes) -> bool:
        """Settle the PUBACK of a message `send_at_qos1` wrote; False: someone else waits for it."""
        if len(body) != 2:
            return False
        packet_id = int.from_bytes(body, "big")
        size = self.unacknowledged.pop(packet_id, None)
        if size is None:
            return False
        if self.session is not None:
            self.session.inflight_out.pop(packet_id, None)
        if self.on_acknowledged is not None:
            self.on_acknowledged(self, size)
        return True

    async def _stock_handling(self, raw: bytes) -> asyncio.Task[None]:
        """Parse a packet with amqtt and start its stock handler task, as amqtt's own loop does."""
        reader = BufferReader(raw)
        fixed_header = await MQTTFixedHeader.from_stream(reader)
        packet = await packet_class(fixed_header).from_stream(reader, fixed_header=fixed_header)
        handle = getattr(self, _STOCK_HANDLERS[fixed_header.packet_type])
        task: asyncio.Task[None] = asyncio.create_task(handle(packet))
        return task

    def _transport(self) -> asyncio.WriteTransport | None:
        stream = getattr(self.writer, "_writer", None)
        return getattr(stream, "transport", None)
