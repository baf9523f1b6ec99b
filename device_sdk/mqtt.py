"""A small MQTT 3.1.1 client on asyncio: exactly what a jobs device needs, and cheap per message.

One :class:`MqttConnection` is one ``asyncio.Protocol`` on one socket, so
thousands of devices share one event loop with no thread of their own. It
speaks CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH at QoS 0 and 1 both ways
(QoS 2 from a broker is answered too), PINGREQ/PINGRESP and DISCONNECT.
It never reconnects, keeps no session, retains nothing and sends no will: the
jobs client above it owns all of that.

The broker is not trusted: a packet's remaining length is checked against
``max_packet_size`` before anything of its body is buffered, and a malformed or
unexpected packet closes the connection with :class:`MqttError`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
from collections.abc import Callable, Sequence
from typing import Any

from iot_jobs_bridge.schemas.mqtt_packets import publish_packet, remaining_length

__all__ = ["DEFAULT_MAX_PACKET_SIZE", "MqttConnection", "MqttError", "connect"]

_log = logging.getLogger("iot_jobs_bridge.device_sdk.mqtt")

# Replies carry job documents of at most 32 KB; 256 KiB of payload leaves ample room,
# and the extra 64 KiB covers the longest topic MQTT can express and the packet id.
DEFAULT_MAX_PACKET_SIZE = 256 * 1024 + 65_536 + 4

# CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3).
_CONNACK_REASONS = {
    1: "Unacceptable protocol version",
    2: "Identifier rejected",
    3: "Server unavailable",
    4: "Bad user name or password",
    5: "Not authorized",
}

_CONNACK, _PUBLISH, _PUBACK, _PUBREC, _PUBREL, _PUBCOMP, _SUBACK, _UNSUBACK, _PINGRESP = (
    2,
    3,
    4,
    5,
    6,
    7,
    9,
    11,
    13,
)
_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"
_U16 = struct.Struct("!H")

MessageHandler = Callable[[str, bytes], None]


class MqttError(Exception):
    """The connection failed, was refused, or broke; ``code`` is the CONNACK return code of a refusal."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @classmethod
    def refused(cls, code: int) -> MqttError:
        reason = _CONNACK_REASONS.get(code, "Unknown return code")
        return cls(f"[code:{code}] {reason}", code)


class _Malformed(Exception):
    """Raised inside the parser; becomes an :class:`MqttError` that closes the connection."""


def _text(value: str) -> bytes:
    encoded = value.encode()
    if len(encoded) > 0xFFFF:
        raise ValueError(f"{value[:40]!r}... is longer than MQTT allows (65,535 bytes)")
    return _U16.pack(len(encoded)) + encoded


def _connect_packet(
    client_id: str, username: str | None, password: str | None, keepalive: int, clean_session: bool
) -> bytes:
    flags = 0x02 if clean_session else 0x00
    payload = _text(client_id)
    if username is not None:
        flags |= 0x80
        payload += _text(username)
    if password is not None:
        flags |= 0x40
        payload += _text(password)
    body = b"\x00\x04MQTT\x04" + bytes((flags,)) + _U16.pack(keepalive) + payload
    return b"\x10" + remaining_length(len(body)) + body


class MqttConnection(asyncio.Protocol):
    """One MQTT 3.1.1 connection. Made by :func:`connect`; not reused after it closes.

    ``on_message(topic, payload)`` is called for every PUBLISH from the broker, on
    the event loop, in arrival order. :meth:`wait_closed` tells how it ended.
    """

    def __init__(
        self,
        on_message: MessageHandler,
        keepalive: int,
        max_packet_size: int,
        on_retained: MessageHandler | None = None,
    ) -> None:
        self._on_message = on_message
        # Where retained messages go instead, when the caller keeps them apart.
        self._on_retained = on_retained or on_message
        self._keepalive = keepalive
        self._max = max_packet_size
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._connack: asyncio.Future[int] = self._loop.create_future()
        self._closed: asyncio.Future[MqttError | None] = self._loop.create_future()
        self._error: MqttError | None = None
        self._open = False  # packets may be written: from connection_made until closing starts
        self._leaving = False  # a DISCONNECT was sent: the close that follows is ours
        # Bytes of a packet not complete yet; _need is how many it takes (at least) to go on.
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = 0
        self._next_id = 0
        # Packet ids of our QoS 1 PUBLISH and SUBSCRIBE in flight: a future to settle, or None.
        self._waiting: dict[int, asyncio.Future[Any] | None] = {}
        self._qos2_held: set[int] = set()  # QoS 2 ids delivered, awaiting their PUBREL
        # Acknowledgements not sent yet: they go out with the next packet we write, or on the
        # next turn of the loop. A reply is often followed at once by the device's next request,
        # so both leave in one write.
        self._acks: list[bytes] = []
        self._acks_flush: asyncio.Handle | None = None
        self._last_in = self._last_out = self._loop.time()
        self._ping_sent: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- what the device calls -----------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._open

    async def subscribe(self, filters: Sequence[tuple[str, int]]) -> list[int]:
        """Subscribe and return the broker's return codes, one a filter (0x80: refused)."""
        if not filters:
            raise ValueError("subscribe needs at least one filter")
        packet_id = self._take_id()
        body = _U16.pack(packet_id) + b"".join(_text(f) + bytes((qos,)) for f, qos in filters)
        future: asyncio.Future[list[int]] = self._loop.create_future()
        self._waiting[packet_id] = future
        self._write(b"\x82" + remaining_length(len(body)) + body)
        codes = await future
        if len(codes) != len(filters):
            self._fail(MqttError(f"the SUBACK has {len(codes)} return codes for {len(filters)} filters"))
            raise self._error or MqttError("the connection is closed")
        return codes

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        """Send a PUBLISH and return at once; at QoS 1 the broker's PUBACK is taken and dropped.

        For code that does not wait for the broker (a jobs request waits for its reply
        instead). Raises :class:`MqttError` when the connection is closed.
        """
        self._write(self._publish_packet(topic, payload, qos, None))

    async def publish_acked(self, topic: str, payload: bytes) -> None:
        """Send a QoS 1 PUBLISH and wait for its PUBACK."""
        await self.publish_tracked(topic, payload)

    def publish_tracked(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        """Send a QoS 1 PUBLISH; the future is done at its PUBACK, or fails when the connection goes.

        For a sender that keeps what the broker has not acknowledged, to send it again.
        """
        future: asyncio.Future[None] = self._loop.create_future()
        self._write(self._publish_packet(topic, payload, 1, future))
        return future

    async def disconnect(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Send DISCONNECT and close the socket; returns once it is closed (idempotent).

        A TLS close waits for the broker's close_notify; after ``timeout`` the socket is dropped.
        """
        transport = self._transport
        if self._open and transport is not None:
            self._write(_DISCONNECT)  # after any acknowledgement still held
            self._open = False
            self._leaving = True
            transport.close()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._closed)
        except TimeoutError:
            if transport is not None:
                transport.abort()
            await asyncio.shield(self._closed)

    def abort(self) -> None:
        """Drop the socket with no DISCONNECT, as a network failure would."""
        self._fail(MqttError("the connection was dropped"))

    async def wait_closed(self) -> None:
        """Return when the connection closed after :meth:`disconnect`; raise :class:`MqttError` otherwise."""
        error = await asyncio.shield(self._closed)
        if error is not None:
            raise error

    # -- writing -------------------------------------------------------------

    def _take_id(self) -> int:
        waiting = self._waiting
        if len(waiting) >= 0xFFFF:
            raise MqttError("65,535 packets are waiting for the broker's acknowledgement")
        packet_id = self._next_id
        while True:
            packet_id = packet_id % 0xFFFF + 1
            if packet_id not in waiting:
                self._next_id = packet_id
                return packet_id

    def _publish_packet(
        self, topic: str, payload: bytes, qos: int, future: asyncio.Future[Any] | None
    ) -> bytes:
        if qos == 0:
            return publish_packet(topic, payload, 0, None)
        if qos != 1:
            raise ValueError(f"this client publishes at QoS 0 or 1, not {qos}")
        packet_id = self._take_id()
        self._waiting[packet_id] = future
        return publish_packet(topic, payload, 1, packet_id)

    def _write(self, data: bytes) -> None:
        if not self._open:
            raise self._error or MqttError("the connection is closed")
        if self._acks:
            data = b"".join((*self._acks, data))
            self._acks.clear()
        self._transport.write(data)  # type: ignore[union-attr]  # set whenever _open is
        self._last_out = self._loop.time()

    def _flush_acks(self) -> None:
        self._acks_flush = None
        if self._acks and self._open:
            self._write(b"")

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._open = False
        if self._timer is not None:
            self._timer.cancel()
        if self._error is None and not self._leaving:
            self._error = MqttError(f"the connection was lost: {exc or 'closed by the broker'}")
        error = self._error or MqttError("the connection is closed")
        if not self._connack.done():
            self._connack.set_exception(error)
            self._connack.exception()  # retrieved here: connect() may have given up on it already
        for future in self._waiting.values():
            if future is not None and not future.done():
                future.set_exception(error)
        self._waiting.clear()
        if not self._closed.done():
            self._closed.set_result(self._error)

    def data_received(self, data: bytes) -> None:
        self._last_in = self._loop.time()
        self._ping_sent = None  # any packet shows the broker is there
        if self._chunks:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                return
            data = b"".join(self._chunks)
            self._chunks.clear()
        try:
            self._parse(data)
        except _Malformed as exc:
            self._fail(MqttError(f"the broker sent a malformed packet: {exc}"))
        if self._acks and self._acks_flush is None:
            self._acks_flush = self._loop.call_soon(self._flush_acks)

    def eof_received(self) -> bool:
        return False  # close our side too

    # -- reading -------------------------------------------------------------

    def _parse(self, data: bytes) -> None:
        end = len(data)
        pos = 0
        while pos < end and self._open:
            first = data[pos]
            i = pos + 1
            length = shift = 0
            while True:
                if i >= end:  # the length field itself is cut: wait for any byte more
                    self._keep(data, pos, end - pos + 1)
                    return
                byte = data[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise _Malformed("its remaining length runs past four bytes")
            if length > self._max:
                # Before any of the body is held: a hostile broker cannot make us buffer it.
                raise _Malformed(f"a remaining length of {length} bytes is over the limit ({self._max})")
            stop = i + length
            if stop > end:
                self._keep(data, pos, stop - pos)
                return
            self._packet(first, data, i, stop)
            pos = stop

    def _keep(self, data: bytes, pos: int, need: int) -> None:
        rest = data[pos:] if pos else data
        self._chunks.append(rest)
        self._have = len(rest)
        self._need = need

    def _packet(self, first: int, data: bytes, i: int, stop: int) -> None:
        kind = first >> 4
        if kind == _PUBLISH:
            self._on_publish(first, data, i, stop)
            return
        flags = first & 0x0F
        length = stop - i
        if not self._connack.done():
            if kind != _CONNACK or flags or length != 2:
                raise _Malformed(f"expected a CONNACK, got packet type {kind} of {length} bytes")
            self._connack.set_result(data[i + 1])
            return
        if kind == _PUBACK and not flags and length == 2:
            future = self._waiting.pop(_U16.unpack_from(data, i)[0], None)
            if future is not None and not future.done():
                future.set_result(None)
        elif kind == _SUBACK and not flags and length >= 3:
            future = self._waiting.pop(_U16.unpack_from(data, i)[0], None)
            if future is not None and not future.done():
                future.set_result(list(data[i + 2 : stop]))
        elif kind == _PINGRESP and not flags and length == 0:
            pass
        elif kind == _PUBREL and flags == 0x02 and length == 2:
            packet_id = _U16.unpack_from(data, i)[0]
            self._qos2_held.discard(packet_id)
            self._acks.append(b"\x70\x02" + data[i:stop])  # PUBCOMP
        elif kind == _UNSUBACK and not flags and length == 2:
            pass  # never asked for; harmless
        else:
            raise _Malformed(f"packet type {kind} with flags {flags:#x} and {length} bytes is not expected")

    def _on_publish(self, first: int, data: bytes, i: int, stop: int) -> None:
        if not self._connack.done():
            raise _Malformed("a PUBLISH came before the CONNACK")
        qos = (first >> 1) & 0x03
        if stop - i < 2:
            raise _Malformed("a PUBLISH too short for its topic length")
        topic_end = i + 2 + ((data[i] << 8) | data[i + 1])
        payload_at = topic_end + 2 if qos else topic_end
        if payload_at > stop:
            raise _Malformed("a PUBLISH shorter than its topic and packet id")
        try:
            topic = data[i + 2 : topic_end].decode()
        except UnicodeDecodeError:
            raise _Malformed("a PUBLISH topic that is not UTF-8") from None
        payload = data[payload_at:stop]
        if qos == 1:
            self._acks.append(b"\x40\x02" + data[topic_end:payload_at])  # PUBACK
        elif qos == 2:
            packet_id = _U16.unpack_from(data, topic_end)[0]
            self._acks.append(b"\x50\x02" + data[topic_end:payload_at])  # PUBREC
            if packet_id in self._qos2_held:
                return  # a resend of one already delivered
            self._qos2_held.add(packet_id)
        elif qos == 3:
            raise _Malformed("a PUBLISH at QoS 3")
        try:
            if first & 0x01:
                self._on_retained(topic, payload)
            else:
                self._on_message(topic, payload)
        except Exception:
            _log.exception("the message handler failed on %s", topic)

    # -- keepalive -----------------------------------------------------------

    def _start_keepalive(self) -> None:
        if self._keepalive > 0:
            self._timer = self._loop.call_at(self._loop.time() + self._keepalive, self._check_keepalive)

    def _check_keepalive(self) -> None:
        """Ping when either direction was quiet for a keepalive; give up when a ping stays unanswered."""
        if not self._open:
            return
        now = self._loop.time()
        keepalive = self._keepalive
        if self._ping_sent is not None:
            due = self._ping_sent + keepalive
            if now >= due:
                self._fail(MqttError(f"the broker has not answered for {keepalive} s (keepalive)"))
                return
        else:
            due = min(self._last_in, self._last_out) + keepalive
            if now >= due:
                self._ping_sent = now
                self._write(_PINGREQ)
                due = now + keepalive
        self._timer = self._loop.call_at(due, self._check_keepalive)

    def _fail(self, error: MqttError) -> None:
        """Close at once with ``error`` (no DISCONNECT): the broker broke the protocol or went silent."""
        if self._error is None and not self._closed.done():
            self._error = error
        self._open = False
        if self._transport is not None:
            self._transport.abort()


async def connect(
    host: str,
    port: int,
    *,
    client_id: str,
    on_message: MessageHandler,
    username: str | None = None,
    password: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    keepalive: int = 60,
    clean_session: bool = True,
    timeout: float = 10.0,  # noqa: ASYNC109
    max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
    on_retained: MessageHandler | None = None,
) -> MqttConnection:
    """Open a connection and wait for the broker's CONNACK.

    ``on_retained`` (``on_message`` when not given) takes the messages the broker
    marks retained. Raises :class:`MqttError` when the socket cannot be opened, TLS fails, the
    broker refuses (``code`` holds its return code) or nothing answers within
    ``timeout`` seconds.
    """
    if not 0 <= keepalive <= 0xFFFF:
        raise ValueError(f"keepalive must be between 0 and 65535 seconds, not {keepalive}")
    packet = _connect_packet(client_id, username, password, keepalive, clean_session)
    loop = asyncio.get_running_loop()
    connection = MqttConnection(on_message, keepalive, max_packet_size, on_retained)
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(
                lambda: connection,
                host,
                port,
                ssl=ssl_context,
                server_hostname=(server_hostname or host) if ssl_context is not None else None,
            )
            connection._write(packet)
            code = await connection._connack
    except TimeoutError:
        connection._fail(MqttError(f"no CONNACK from {host}:{port} within {timeout:g} s"))
        raise MqttError(f"no CONNACK from {host}:{port} within {timeout:g} s") from None
    except (OSError, ssl.SSLError) as exc:
        connection._fail(MqttError(str(exc)))
        raise MqttError(f"cannot connect to {host}:{port}: {exc}") from exc
    except MqttError:
        raise
    except BaseException:
        connection._fail(MqttError("the connect was cancelled"))
        raise
    if code != 0:
        connection._fail(MqttError.refused(code))
        raise MqttError.refused(code)
    connection._start_keepalive()
    return connection
