"""A reader that hands amqtt one whole, checked packet at a time.

amqtt reads a packet in pieces as it parses it, trusts its claimed length, and
meets many protocol violations by carrying on: it checks a PUBLISH topic for
wildcards only after reading part of the packet, then reads the rest as if it
were the next packet; it routes an invalid UTF-8 topic under a made-up name;
it answers a PINGREQ sent before CONNECT. `CheckedReader` reads each packet's
fixed header first and closes the connection, as MQTT 3.1.1 asks, when:

* the remaining length is above the limit (`BrokerLimits.max_connect_bytes`
  for the CONNECT, read before the client is known, `max_packet_bytes` for
  the rest), before any of the body is buffered;
* the first packet is not a CONNECT, or a second CONNECT comes [MQTT-3.1.0-1/2];
* the packet type is reserved or one only a server sends, or its flags are
  not those of its type, such as a PUBLISH with QoS 3 [MQTT-2.2.2-2, 3.3.1-4];
* a PUBLISH topic is empty, has a wildcard or NUL, or is not UTF-8
  [MQTT-3.3.2-2, 1.5.3-1/2, 4.8.0-1];
* a SUBSCRIBE or UNSUBSCRIBE carries no topic filter, a malformed one, or a
  requested QoS above 2 or with reserved bits set [MQTT-3.8.3-3/4, 3.10.3-2].
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from amqtt.adapters import ReaderAdapter

from iot_jobs_bridge.broker.limits import BrokerLimits

__all__ = ["CheckedReader", "abort_connection", "publish_topic_problem", "topic_problem"]

_log = logging.getLogger("iot_jobs_bridge.broker.framing")

_CONNECT, _PUBLISH, _PUBREL, _SUBSCRIBE, _UNSUBSCRIBE = 1, 3, 6, 8, 10
# Packet types a client may send: CONNECT, PUBLISH, PUBACK, PUBREC, PUBREL,
# PUBCOMP, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT.
_FROM_CLIENTS = frozenset({1, 3, 4, 5, 6, 7, 8, 10, 12, 14})
_NAMES = {
    0: "a reserved packet type",
    1: "CONNECT",
    2: "CONNACK",
    3: "PUBLISH",
    4: "PUBACK",
    5: "PUBREC",
    6: "PUBREL",
    7: "PUBCOMP",
    8: "SUBSCRIBE",
    9: "SUBACK",
    10: "UNSUBSCRIBE",
    11: "UNSUBACK",
    12: "PINGREQ",
    13: "PINGRESP",
    14: "DISCONNECT",
    15: "a reserved packet type",
}


def abort_connection(writer: Any) -> None:
    """Close a client's socket at once, without flushing (it may be dead or stuck)."""
    stream = getattr(writer, "_writer", None)
    transport = getattr(stream, "transport", None)
    if transport is not None:
        transport.abort()


def topic_problem(topic: str | None) -> str | None:
    """What is wrong with ``topic`` as a topic to publish to (a will's too), e.g. ``"has a wildcard"``."""
    if not topic:
        return "is empty"
    if "+" in topic or "#" in topic:
        return "has a wildcard"
    if "\x00" in topic:
        return "has a NUL character"
    return None


def _text_problem(raw: bytes, what: str) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"its {what} is not UTF-8"
    if not text:
        return f"its {what} is empty"
    if "\x00" in text:
        return f"its {what} has a NUL character"
    return None


def publish_topic_problem(body: bytes) -> str | None:
    """What is wrong with the topic of a PUBLISH whose variable header and payload are ``body``."""
    if len(body) < 2:
        return "its topic is missing"
    size = int.from_bytes(body[:2], "big")
    raw = body[2 : 2 + size]
    if len(raw) < size:
        return "its topic is cut short"
    try:
        topic = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "its topic is not UTF-8"
    problem = topic_problem(topic)
    return None if problem is None else f"its topic {problem}"


def _filters_problem(kind: int, body: bytes) -> str | None:
    """What is wrong with the topic filters of a SUBSCRIBE or UNSUBSCRIBE body, if anything."""
    position, count = 2, 0  # after the packet identifier
    if len(body) < 2:
        return "its packet identifier is missing"
    while position < len(body):
        if position + 2 > len(body):
            return "a topic filter is cut short"
        size = int.from_bytes(body[position : position + 2], "big")
        raw = body[position + 2 : position + 2 + size]
        if len(raw) < size:
            return "a topic filter is cut short"
        problem = _text_problem(raw, "topic filter")
        if problem is not None:
            return problem
        position += 2 + size
        if kind == _SUBSCRIBE:
            if position >= len(body):
                return "a requested QoS is missing"
            if body[position] > 2:  # QoS 3, or reserved bits set
                return f"it requests QoS byte {body[position]:#04x}"
            position += 1
        count += 1
    return "it names no topic filter" if count == 0 else None


def _header_problem(kind: int, flags: int, first_packet: bool) -> str | None:
    if kind not in _FROM_CLIENTS:
        return f"it sent {_NAMES[kind]}, which a client never sends"
    if first_packet and kind != _CONNECT:
        return f"it sent {_NAMES[kind]} before CONNECT"
    if not first_packet and kind == _CONNECT:
        return "it sent a second CONNECT"
    if kind == _PUBLISH:
        return "it sent a PUBLISH with QoS 3" if flags & 0x06 == 0x06 else None
    expected = 0x02 if kind in (_PUBREL, _SUBSCRIBE, _UNSUBSCRIBE) else 0x00
    if flags != expected:
        return f"it sent {_NAMES[kind]} with flags {flags:#03x}"
    return None


class CheckedReader(ReaderAdapter):  # type: ignore[misc]  # amqtt ships no types
    """Wraps a connection's reader; ``client_id`` names the client in logs once known."""

    def __init__(self, inner: Any, writer: Any, limits: BrokerLimits | None = None) -> None:
        self._inner = inner
        self._writer = writer
        self._limits = limits or BrokerLimits()
        self._buffer = bytearray()
        self._refused = False
        self._packets = 0
        self.client_id = "?"

    @property
    def refused(self) -> bool:
        """Whether this reader closed the connection for a malformed or forbidden packet."""
        return self._refused

    async def read(self, n: int = -1) -> bytes:
        if n < 0:
            data: bytes = await self._inner.read(n)
            return data
        while len(self._buffer) < n:
            await self._next_packet()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def feed_eof(self) -> None:
        self._inner.feed_eof()

    async def packet(self) -> tuple[int, bytes, bytes]:
        """The next whole, checked packet: its first byte, remaining-length bytes and body.

        For the connection's packet loop, once amqtt has read the CONNECT and
        nothing is left in the buffer that `read` serves from.
        """
        return await self._checked_packet()

    async def _next_packet(self) -> None:
        first, length_bytes, body = await self._checked_packet()
        self._buffer += bytes((first,)) + length_bytes + body

    async def _checked_packet(self) -> tuple[int, bytes, bytes]:
        if self._refused:
            raise asyncio.IncompleteReadError(b"", 1)
        first = (await self._inner.read(1))[0]
        kind, flags = first >> 4, first & 0x0F
        problem = _header_problem(kind, flags, self._packets == 0)
        if problem is not None:
            self._refuse(problem)
        self._packets += 1
        length_bytes = bytearray()
        length = 0
        for shift in (0, 7, 14, 21):
            byte = (await self._inner.read(1))[0]
            length_bytes.append(byte)
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
        else:
            self._refuse("its remaining length is malformed")
        limit = self._limits.max_connect_bytes if kind == _CONNECT else self._limits.max_packet_bytes
        if length > limit:
            self._refuse(f"it sent a {_NAMES[kind]} of {length} bytes; the limit is {limit}")
        body = await self._inner.read(length) if length else b""
        if kind == _PUBLISH:
            problem = publish_topic_problem(body)
            if problem is not None:
                self._refuse("it sent a PUBLISH whose " + problem.removeprefix("its "))
        elif kind in (_SUBSCRIBE, _UNSUBSCRIBE):
            problem = _filters_problem(kind, body)
            if problem is not None:
                self._refuse(f"it sent {_NAMES[kind]}: {problem}")
        return first, bytes(length_bytes), body

    def _refuse(self, problem: str) -> None:
        _log.warning("closing %s: %s", self.client_id, problem)
        self._refused = True
        abort_connection(self._writer)
        raise asyncio.IncompleteReadError(b"", 1)
