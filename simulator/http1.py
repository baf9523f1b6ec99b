"""One keep-alive HTTP/1.1 connection: just enough for the control plane's JSON answers.

``http.client`` parses every response's headers through the ``email`` package,
which costs more CPU than the rest of a call; a fleet's registration makes
thousands of calls. This reads the status line, the headers it needs and a body
sized by ``Content-Length`` or sent in chunks, and nothing more.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping

__all__ = ["HttpConnection"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024


class HttpConnection:
    """A connection to one server, opened on first use and again after it closed."""

    def __init__(
        self, host: str, port: int, *, tls: ssl.SSLContext | None = None, timeout: float = 60.0
    ) -> None:
        self._host, self._port, self._tls, self._timeout = host, port, tls, timeout
        self._sock: socket.socket | None = None
        self._buffer = bytearray()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer.clear()

    def exchange(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request and return (status, headers with lowercase names, body).

        Raises ``OSError`` (``ConnectionError`` for an answer cut short or malformed);
        the connection is closed then, and the next call opens a new one.
        """
        lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        try:
            sock = self._connect()
            sock.sendall(request)
            status, answer_headers, answer = self._read_response(method)
        except BaseException:
            self.close()
            raise
        if answer_headers.get("connection", "").lower() == "close":
            self.close()
        return status, answer_headers, answer

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((self._host, self._port), self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._host)
            self._sock = sock
        return self._sock

    def _read_response(self, method: str) -> tuple[int, dict[str, str], bytes]:
        head = self._read_until(b"\r\n\r\n", _MAX_HEAD)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ConnectionError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, colon, value = line.partition(":")
            if not colon:
                raise ConnectionError(f"a malformed header line: {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status, headers, b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return status, headers, self._read_chunks()
        length = headers.get("content-length")
        if length is None:
            headers["connection"] = "close"  # the body runs to the end of the connection
            return status, headers, self._read_to_close()
        if not length.isdigit() or int(length) > _MAX_BODY:
            raise ConnectionError(f"an unusable Content-Length: {length[:40]!r}")
        return status, headers, self._read_exactly(int(length))

    def _read_chunks(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_line = self._read_until(b"\r\n", 1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ConnectionError(f"a malformed chunk size: {size_line[:40]!r}") from None
            if size == 0:
                while self._read_until(b"\r\n", _MAX_HEAD):  # trailers, up to the empty line
                    pass
                return b"".join(chunks)
            chunks.append(self._read_exactly(size))
            if self._read_exactly(2) != b"\r\n":
                raise ConnectionError("a chunk not followed by CRLF")

    def _read_until(self, marker: bytes, limit: int) -> bytes:
        while True:
            end = self._buffer.find(marker)
            if end >= 0:
                data = bytes(self._buffer[:end])
                del self._buffer[: end + len(marker)]
                return data
            if len(self._buffer) > limit:
                raise ConnectionError(f"no {marker!r} within {limit} bytes")
            self._fill()

    def _read_exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._fill()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def _read_to_close(self) -> bytes:
        while True:
            try:
                self._fill()
            except ConnectionError:
                data = bytes(self._buffer)
                self._buffer.clear()
                return data
            if len(self._buffer) > _MAX_BODY:
                raise ConnectionError(f"a body over {_MAX_BODY} bytes")

    def _fill(self) -> None:
        assert self._sock is not None
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data
