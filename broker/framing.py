"""A reader that hands amqtt one whole packet at a time and refuses malformed PUBLISH topics.

amqtt checks a PUBLISH topic for wildcards only after reading part of the
packet, then drops it and reads the rest as if it were the next packet; an
invalid UTF-8 topic it routes under a made-up name. Reading each packet whole
first lets the broker close such a connection cleanly, as MQTT 3.1.1 asks
([MQTT-3.3.2-2], [MQTT-1.5.3-1], [MQTT-4.8.0-1]).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from amqtt.adapters import ReaderAdapter

__all__ = ["CheckedReader", "abort_connection", "publish_topic_problem"]

_log = logging.getLogger("broker.framing")

_PUBLISH = 3


def abort_connection(writer: Any) -> None:
    """Close a client's socket at once, without flushing (it may be dead or stuck)."""
    stream = getattr(writer, "_writer", None)
    transport = getattr(stream, "transport", None)
    if transport is not None:
        transport.abort()


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
    if not topic:
        return "its topic is empty"
    if "+" in topic or "#" in topic:
        return "its topic has a wildcard"
    if "\x00" in topic:
        return "its topic has a NUL character"
    return None


class CheckedReader(ReaderAdapter):  # type: ignore[misc]  # amqtt ships no types
    """Wraps a connection's reader; ``client_id`` names the client in logs once known."""

    def __init__(self, inner: Any, writer: Any) -> None:
        self._inner = inner
        self._writer = writer
        self._buffer = bytearray()
        self._refused = False
        self.client_id = "?"

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

    async def _next_packet(self) -> None:
        if self._refused:
            raise asyncio.IncompleteReadError(b"", 1)
        first = await self._inner.read(1)
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
        body = await self._inner.read(length) if length else b""
        if first[0] >> 4 == _PUBLISH:
            problem = publish_topic_problem(body)
            if problem is not None:
                self._refuse(problem)
        self._buffer += first + length_bytes + body

    def _refuse(self, problem: str) -> None:
        _log.warning("closing %s: it sent a PUBLISH whose %s", self.client_id, problem.removeprefix("its "))
        self._refused = True
        abort_connection(self._writer)
        raise asyncio.IncompleteReadError(b"", 1)
