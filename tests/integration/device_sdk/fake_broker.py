"""A scripted MQTT 3.1.1 server on loopback, for what no real broker will do to a client.

Each test writes how the server behaves as a coroutine taking a `Peer` (one
client connection): read the client's packets exactly as framed, send any bytes,
well formed or not, split or packed together, or stay silent. `answering` is
the script of a well-behaved broker that also answers requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from tests.broker.raw_mqtt import packet, text

TIMEOUT = 10.0

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 5, 6, 7, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14


def connack(code: int = 0) -> bytes:
    return packet(0x20, bytes([0, code]))


def suback(packet_id: int, codes: list[int]) -> bytes:
    return packet(0x90, struct.pack("!H", packet_id) + bytes(codes))


def publish(topic: bytes, payload: bytes, qos: int = 0, packet_id: int = 1, *, dup: bool = False) -> bytes:
    first = 0x30 | (qos << 1) | (0x08 if dup else 0)
    body = text(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return packet(first, body)


@dataclass
class Packet:
    kind: int
    flags: int
    body: bytes

    @property
    def packet_id(self) -> int:
        return struct.unpack_from("!H", self.body)[0]

    def publish_parts(self) -> tuple[str, int, bytes]:
        """(topic, packet id or 0, payload) of a PUBLISH."""
        size = struct.unpack_from("!H", self.body)[0]
        topic = self.body[2 : 2 + size].decode()
        rest = self.body[2 + size :]
        qos = (self.flags >> 1) & 3
        if qos:
            return topic, struct.unpack_from("!H", rest)[0], rest[2:]
        return topic, 0, rest

    def subscribe_filters(self) -> list[tuple[str, int]]:
        filters, at = [], 2
        while at < len(self.body):
            size = struct.unpack_from("!H", self.body, at)[0]
            filters.append((self.body[at + 2 : at + 2 + size].decode(), self.body[at + 2 + size]))
            at += 3 + size
        return filters


class Peer:
    """One client connection, seen from the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def read(self) -> Packet:
        """The client's next packet; ``EOFError`` when it closed the connection."""
        async with asyncio.timeout(TIMEOUT):
            try:
                first = (await self.reader.readexactly(1))[0]
                size, shift = 0, 0
                while True:
                    byte = (await self.reader.readexactly(1))[0]
                    size |= (byte & 0x7F) << shift
                    shift += 7
                    if byte < 0x80:
                        break
                body = await self.reader.readexactly(size)
            except asyncio.IncompleteReadError:
                raise EOFError from None
        return Packet(first >> 4, first & 0x0F, body)

    async def expect(self, kind: int) -> Packet:
        received = await self.read()
        assert received.kind == kind, f"expected packet type {kind}, got {received}"
        return received

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def accept(self, code: int = 0) -> Packet:
        """Read the CONNECT and answer it; returns the CONNECT."""
        connect = await self.expect(CONNECT)
        await self.send(connack(code))
        return connect

    async def closed_by_client(self) -> bool:
        """Whether the client closes the connection (within the timeout) without sending more."""
        async with asyncio.timeout(TIMEOUT):
            return await self.reader.read(1) == b""


Script = Callable[[Peer], Awaitable[None]]


@contextlib.asynccontextmanager
async def fake_broker(script: Script) -> AsyncIterator[tuple[int, list[asyncio.Task[None]]]]:
    """Serve ``script`` for each connection on 127.0.0.1:0; yields (port, the scripts' tasks)."""
    tasks: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(Peer(reader, writer))
        finally:
            writer.close()

    def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.append(asyncio.ensure_future(serve(reader, writer)))

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], tasks
        # A script's own assertion failures fail the test.
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def answering(peer: Peer, answer: Callable[[str, bytes], list[tuple[str, bytes]]]) -> None:
    """A well-behaved broker for one client: it grants every subscription at QoS 1, and
    hands each PUBLISH to ``answer(topic, payload)``, sending back what that returns."""
    await peer.accept()
    while True:
        try:
            received = await peer.read()
        except EOFError:
            return
        if received.kind == SUBSCRIBE:
            await peer.send(suback(received.packet_id, [1] * len(received.subscribe_filters())))
        elif received.kind == PUBLISH:
            topic, packet_id, payload = received.publish_parts()
            if packet_id:
                await peer.send(packet(0x40, struct.pack("!H", packet_id)))
            for reply_topic, reply in answer(topic, payload):
                await peer.send(publish(reply_topic.encode(), reply))
        elif received.kind == PINGREQ:
            await peer.send(packet(0xD0, b""))
        elif received.kind == DISCONNECT:
            return
