"""MQTT 3.1.1 packet encoding that the broker and the device client both write.

One place for the remaining-length field and the PUBLISH layout, so the two
sides of the wire cannot drift apart.
"""

from __future__ import annotations

__all__ = ["publish_packet", "remaining_length"]


def remaining_length(n: int) -> bytes:
    """The remaining-length field: seven bits a byte, least significant first."""
    if n < 128:
        return bytes((n,))
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def publish_packet(topic: str, payload: bytes, qos: int, packet_id: int | None, dup: bool = False) -> bytes:
    """A whole PUBLISH packet, never retained; ``packet_id`` is required at QoS 1 and 2."""
    name = topic.encode()
    identifier = packet_id.to_bytes(2, "big") if qos and packet_id is not None else b""
    first = 0x30 | (0x08 if dup else 0) | (qos << 1)
    head = bytes((first,)) + remaining_length(2 + len(name) + len(identifier) + len(payload))
    return b"".join((head, len(name).to_bytes(2, "big"), name, identifier, payload))
