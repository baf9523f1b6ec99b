"""Hand-built MQTT 3.1.1 packets, for what client libraries will not send."""

import socket
import struct


def length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def text(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + length(len(body)) + body


def connect(
    client_id: str,
    *,
    keepalive: int = 60,
    username: str | None = None,
    password: str | None = None,
    will: tuple[str, bytes] | None = None,
    will_retain: bool = False,
    clean_session: bool = True,
) -> bytes:
    flags = 0x02 if clean_session else 0x00
    payload = text(client_id.encode())
    if will is not None:
        flags |= 0x04 | 0x08  # will, QoS 1
        if will_retain:
            flags |= 0x20
        payload += text(will[0].encode()) + text(will[1])
    if username is not None:
        flags |= 0x80
        payload += text(username.encode())
    if password is not None:
        flags |= 0x40
        payload += text(password.encode())
    variable = text(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    return packet(0x10, variable + payload)


def subscribe(packet_id: int, topic_filter: str, qos: int = 0) -> bytes:
    return packet(0x82, struct.pack("!H", packet_id) + text(topic_filter.encode()) + bytes([qos]))


def publish(topic: bytes, payload: bytes) -> bytes:
    """A QoS 0 PUBLISH; the topic is raw bytes so invalid ones can be sent."""
    return packet(0x30, text(topic) + payload)


def open_connection(host: str, port: int, data: bytes, *, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(5)
    sock.connect((host, port))
    sock.sendall(data)
    return sock


def read_connack(sock: socket.socket) -> int:
    """The CONNACK return code (0 accepted)."""
    data = _read_exactly(sock, 4)
    assert data[0] == 0x20, data
    return data[3]


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """Whether the broker closes ``sock`` within ``within`` seconds (data read meanwhile is dropped)."""
    sock.settimeout(within)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    """The next packet: (first byte, body)."""
    first = _read_exactly(sock, 1)[0]
    length, shift = 0, 0
    while True:
        byte = _read_exactly(sock, 1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first, _read_exactly(sock, length)


def puback(packet_id: int) -> bytes:
    return packet(0x40, struct.pack("!H", packet_id))


def pingreq() -> bytes:
    return bytes([0xC0, 0x00])


def header_only(first_byte: int, claimed_length: int) -> bytes:
    """A fixed header claiming ``claimed_length`` bytes of body, with none of them."""
    return bytes([first_byte]) + length(claimed_length)
