"""The HTTP listener's bounds, with short deadlines, on a real uvicorn server on loopback and raw sockets."""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from iot_jobs_bridge.jobs_service.http_api import build_app
from iot_jobs_bridge.jobs_service.http_api.server import ConnectionBounds, server_config
from tests.http_api.conftest import KEY_ID, REGION, SECRET, Calls, make_handlers

LOGGER = "iot_jobs_bridge.jobs_service.http_api.server"
SHORT = ConnectionBounds(headers_timeout=0.5, body_timeout=0.5, keep_alive_timeout=0.3, max_connections=3)
# Long enough that no deadline fires while a test holds its connections.
PATIENT = ConnectionBounds(headers_timeout=60, body_timeout=60, keep_alive_timeout=60, max_connections=3)
# How long a test waits for what a bound must do within a fraction of it.
AT_MOST = 10.0
REQUEST = b"GET /things HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@contextlib.contextmanager
def bounded(bounds: ConnectionBounds) -> Iterator[tuple[uvicorn.Server, int]]:
    """A uvicorn server under ``bounds`` in a thread; yields it and its port."""
    app = build_app(make_handlers(Calls()), {KEY_ID: SECRET}, region=REGION)
    server = uvicorn.Server(server_config(app, bounds))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + AT_MOST
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.005)
    try:
        yield server, sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=AT_MOST)
        sock.close()


def connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port))
    conn.settimeout(AT_MOST)
    return conn


def closed_by_server(conn: socket.socket) -> bool:
    """Wait (at most AT_MOST) for the server to close ``conn``; response bytes before the end are skipped."""
    try:
        while conn.recv(65536):
            pass
    except TimeoutError:
        return False
    return True


def address(conn: socket.socket) -> str:
    """The client end of ``conn``, as the server's log names it."""
    host, port = conn.getsockname()
    return f"{host}:{port}"


def read_response(conn: socket.socket) -> bytes:
    """One whole response (these carry Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def trickle(conn: socket.socket, data: bytes, every: float = 0.05) -> int:
    """Send ``data`` a byte at a time, one every ``every`` seconds, until the server closes ``conn``.

    Returns how many bytes went out; fails if the server is still listening after AT_MOST.
    """
    deadline = time.monotonic() + AT_MOST
    for sent, byte in enumerate(data):
        try:
            conn.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return sent
        # Readable means closed (these requests are never complete): the pacing wait doubles as the watch.
        readable, _, _ = select.select([conn], [], [], every)
        if readable and not conn.recv(65536):
            return sent + 1
        assert time.monotonic() < deadline, "the server kept a trickling connection open"
    raise AssertionError("the whole request went out before the server closed the connection")


@pytest.fixture
def short(caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with bounded(SHORT) as (_server, port):
        yield port


def test_a_connection_that_sends_nothing_is_closed_after_the_headers_timeout(short, caplog):
    with connect(short) as conn:
        local = address(conn)
        assert closed_by_server(conn)

    assert warnings_of(caplog) == [
        f"HTTP connection from {local} closed: no complete request head within 0.5 s"
    ]


def test_trickled_headers_do_not_extend_the_deadline(short, caplog):
    with connect(short) as conn:
        local = address(conn)
        sent = trickle(conn, b"GET /things HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 1000)

    assert sent >= 5  # it was trickling, not silent
    assert warnings_of(caplog) == [
        f"HTTP connection from {local} closed: no complete request head within 0.5 s"
    ]


def test_an_idle_keep_alive_is_closed_quietly(short, caplog):
    with connect(short) as conn:
        conn.sendall(REQUEST)
        assert read_response(conn).startswith(b"HTTP/1.1 403 ")
        assert closed_by_server(conn)

    assert warnings_of(caplog) == []
    assert [
        r.getMessage().endswith("closed after 0.3 s idle") for r in caplog.records if r.name == LOGGER
    ] == [True]


def test_a_next_request_trickled_after_a_response_is_closed(short, caplog):
    with connect(short) as conn:
        conn.sendall(REQUEST)
        assert read_response(conn).startswith(b"HTTP/1.1 403 ")
        local = address(conn)
        trickle(conn, REQUEST[:-2] + b"X-Pad: " + b"a" * 1000)

    assert warnings_of(caplog) == [
        f"HTTP connection from {local} closed: no complete request head within 0.5 s"
    ]


def test_a_body_that_stops_arriving_is_closed(short, caplog):
    with connect(short) as conn:
        local = address(conn)
        conn.sendall(b"PUT /jobs/j1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n" + b'{"tar')
        assert closed_by_server(conn)

    assert warnings_of(caplog) == [
        f"HTTP connection from {local} closed: the request body did not arrive within 0.5 s"
    ]
    # The application saw its client go; that is not an error of its own.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_connections_beyond_the_limit_are_refused_and_the_others_served(caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with bounded(PATIENT) as (server, port), contextlib.ExitStack() as stack:
        held = [stack.enter_context(connect(port)) for _ in range(3)]
        for conn in held:  # each one answered, so each one counted
            conn.sendall(REQUEST)
            assert read_response(conn).startswith(b"HTTP/1.1 403 ")

        with connect(port) as surplus:
            local = address(surplus)
            assert closed_by_server(surplus)

        held[0].sendall(REQUEST)
        assert read_response(held[0]).startswith(b"HTTP/1.1 403 ")
        held.pop().close()
        deadline = time.monotonic() + AT_MOST
        while len(server.server_state.connections) > 2:  # the server has seen that close
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with connect(port) as again:
            again.sendall(REQUEST)
            assert read_response(again).startswith(b"HTTP/1.1 403 ")

    assert warnings_of(caplog) == [
        f"HTTP connection from {local} refused: 3 connections are open, the limit is 3"
    ]
