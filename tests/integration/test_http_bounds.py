"""``iotjobs serve`` bounds its HTTP connections: silent ones are closed, surplus ones refused."""

import contextlib
import socket
import time

import pytest

from iot_jobs_bridge.jobs_service.http_api.server import HEADERS_TIMEOUT, MAX_CONNECTIONS

from .conftest import start_server

pytestmark = pytest.mark.integration

REQUEST = b"GET /things HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture
def server(tmp_path):
    # One per test: each counts on the server holding no other connection.
    running = start_server(tmp_path / "data")
    yield running
    assert running.stop() == 0, "\n".join(running.lines)


def _connect(server, timeout: float) -> socket.socket:
    host, port = server.http_url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)))
    conn.settimeout(timeout)
    return conn


def _address(conn: socket.socket) -> str:
    host, port = conn.getsockname()
    return f"{host}:{port}"


def _wait_for_line(server, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in server.lines if text in line]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no line with {text!r} in:\n" + "\n".join(server.lines)
        time.sleep(0.02)


def test_a_connection_that_sends_no_request_is_closed(server):
    started = time.monotonic()
    with _connect(server, timeout=HEADERS_TIMEOUT + 15) as conn:
        try:
            end = conn.recv(1)
        except TimeoutError:
            pytest.fail("the server kept a silent connection open")
        local = _address(conn)

    assert end == b""
    assert time.monotonic() - started >= HEADERS_TIMEOUT - 1
    line = _wait_for_line(server, f"HTTP connection from {local} closed")
    assert line.endswith(
        f"WARNING iot_jobs_bridge.jobs_service.http_api.server: HTTP connection from {local} closed: "
        "no complete request head within 10 s"
    )
    with _connect(server, timeout=5) as again:
        again.sendall(REQUEST)
        assert again.recv(12) == b"HTTP/1.1 403"


def test_connections_beyond_the_limit_are_refused(server):
    with contextlib.ExitStack() as stack:
        # Each open and silent; the server accepts them in order, so all are counted before the next.
        held = [stack.enter_context(_connect(server, timeout=5)) for _ in range(MAX_CONNECTIONS)]
        with _connect(server, timeout=5) as surplus:
            try:
                end = surplus.recv(1)
            except TimeoutError:
                pytest.fail(f"connection {MAX_CONNECTIONS + 1} was kept open")
            local = _address(surplus)
        # Those within the limit are served.
        held[0].sendall(REQUEST)
        assert held[0].recv(12) == b"HTTP/1.1 403"

    assert end == b""
    line = _wait_for_line(server, f"HTTP connection from {local} refused")
    assert line.endswith(f"refused: {MAX_CONNECTIONS} connections are open, the limit is {MAX_CONNECTIONS}")
