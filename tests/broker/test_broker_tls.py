"""The TLS listener's own bounds: handshake time, handshakes in progress, and quiet refusals."""

import asyncio
import logging
import socket
import ssl
import time

import pytest

from iot_jobs_bridge.broker import BrokerLimits, EmbeddedBroker, TlsListener
from tests.certs import TestCA

from . import raw_mqtt

pytestmark = pytest.mark.anyio


@pytest.fixture
async def tls_broker(tmp_path, authenticator, broker_limits):
    ca = TestCA(tmp_path / "ca")
    server = ca.issue("localhost", server=True)
    listener = TlsListener(0, server.cert, server.key, ca.cert)
    async with EmbeddedBroker(authenticator, port=0, tls=listener, limits=broker_limits) as broker:
        broker.test_ca = ca
        yield broker


async def _plain_socket(address) -> socket.socket:
    return await asyncio.to_thread(raw_mqtt.open_connection, *address, b"")


@pytest.mark.parametrize("broker_limits", [BrokerLimits(connect_timeout=0.5)])
async def test_a_socket_that_never_starts_its_handshake_is_closed_after_the_connect_timeout(tls_broker):
    began = time.monotonic()
    sock = await _plain_socket(tls_broker.tls_address)
    try:
        assert await asyncio.to_thread(raw_mqtt.closed_by_peer, sock, 5.0)
    finally:
        sock.close()
    assert 0.4 <= time.monotonic() - began < 3.0


@pytest.mark.parametrize("broker_limits", [BrokerLimits(max_pending_handshakes=2, connect_timeout=30)])
async def test_handshakes_beyond_the_cap_are_refused_at_once(tls_broker, caplog):
    caplog.set_level(logging.INFO, logger="iot_jobs_bridge.broker")
    waiting = [await _plain_socket(tls_broker.tls_address) for _ in range(2)]
    try:
        for _ in range(200):  # until the broker has taken both sockets into their handshakes
            if tls_broker._broker._handshakes == 2:
                break
            await asyncio.sleep(0.01)
        assert tls_broker._broker._handshakes == 2
        third = await _plain_socket(tls_broker.tls_address)
        try:
            assert await asyncio.to_thread(raw_mqtt.closed_by_peer, third, 2.0)
        finally:
            third.close()
    finally:
        for sock in waiting:
            sock.close()
    assert "2 handshakes are in progress, the limit" in caplog.text


def _tls_client(ca_file, certificate=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    if certificate is not None:
        context.load_cert_chain(str(certificate.cert), str(certificate.key))
    return context


def _handshake_then_connect(address, context: ssl.SSLContext) -> bytes:
    """Handshake, send a CONNECT and return what comes back before the server closes."""
    raw = socket.create_connection(address, timeout=5)
    try:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(raw_mqtt.connect("t1"))
            return tls.recv(16)
    except (ssl.SSLError, ConnectionError):
        return b""
    finally:
        raw.close()


@pytest.mark.parametrize("who", ["no-certificate", "another-ca"])
async def test_a_refused_tls_client_costs_one_log_line_and_no_traceback(who, tls_broker, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    certificate = None
    if who == "another-ca":
        certificate = TestCA(tmp_path / "other", name="other CA").issue("t1")
    context = _tls_client(tls_broker.test_ca.cert, certificate)
    answer = await asyncio.to_thread(_handshake_then_connect, tls_broker.tls_address, context)
    assert answer == b""  # no CONNACK: the connection ended in its handshake
    for _ in range(200):  # the server side logs once it has seen the failure
        if "TLS handshake with" in caplog.text:
            break
        await asyncio.sleep(0.01)
    failures = [r for r in caplog.records if "TLS handshake with" in r.getMessage()]
    assert len(failures) == 1 and failures[0].levelno == logging.INFO
    assert not [r for r in caplog.records if r.exc_info], "a refused client logged a traceback"


async def test_a_client_with_a_certificate_from_the_ca_completes_its_handshake(tls_broker):
    device = tls_broker.test_ca.issue("t1")
    context = _tls_client(tls_broker.test_ca.cert, device)
    # The broker's test authenticator knows no certificates, so the CONNECT itself is refused:
    # a CONNACK (not authorized) proves the handshake, done by the broker itself, went through.
    answer = await asyncio.to_thread(_handshake_then_connect, tls_broker.tls_address, context)
    assert answer == bytes([0x20, 0x02, 0x00, 0x05])
