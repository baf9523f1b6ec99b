"""`EmbeddedBroker` lifecycle: start, address, idempotent close, start failures."""

from __future__ import annotations

import asyncio
import gc
import socket

import pytest

from iot_jobs_bridge.broker import BrokerStartError, EmbeddedBroker

from . import raw_mqtt

pytestmark = pytest.mark.anyio


def _refuses_connections(address: tuple[str, int]) -> bool:
    # Only used once the broker is closed.
    try:
        with socket.create_connection(address, timeout=1):
            return False
    except ConnectionRefusedError:
        return True


async def test_port_zero_binds_an_ephemeral_port(connect, mqtt_broker):
    host, port = mqtt_broker.address
    assert host == "127.0.0.1"
    assert port > 0
    await connect("t1")  # the fixture connects to `address`


async def test_close_disconnects_clients_and_is_idempotent(mqtt_broker, connect):
    device = await connect("t1")
    await mqtt_broker.close()
    await device.wait_disconnected()
    await mqtt_broker.close()  # and the fixture closes it once more


async def test_close_closes_connections_in_every_stage_and_leaks_no_socket(authenticator):
    # Regression: a connection that had not finished its CONNECT stayed open after
    # close, and its socket leaked (a ResourceWarning once garbage-collected).
    embedded = EmbeddedBroker(authenticator, port=0)
    await embedded.start()
    host, port = embedded.address
    openings = [b"", raw_mqtt.connect("t1")[:5], raw_mqtt.connect("t2", clean_session=False)]
    socks = [await asyncio.to_thread(raw_mqtt.open_connection, host, port, data) for data in openings]
    try:
        assert await asyncio.to_thread(raw_mqtt.read_connack, socks[2]) == 0
        await embedded.close()
        for sock in socks:
            assert await asyncio.to_thread(raw_mqtt.closed_by_peer, sock, 2.0)
    finally:
        for sock in socks:
            sock.close()
    gc.collect()  # a leaked transport would warn here, failing the test


async def test_closed_broker_stops_listening(authenticator):
    async with EmbeddedBroker(authenticator, port=0) as running:
        address = running.address
    assert _refuses_connections(address)


async def test_close_is_idempotent_and_final(authenticator):
    embedded = EmbeddedBroker(authenticator, port=0)
    await embedded.start()
    await embedded.close()
    await embedded.close()
    with pytest.raises(RuntimeError, match="not running"):
        _ = embedded.address
    with pytest.raises(RuntimeError, match="cannot start an MQTT broker that is closed"):
        await embedded.start()


async def test_close_before_start_is_allowed(authenticator):
    embedded = EmbeddedBroker(authenticator, port=0)
    with pytest.raises(RuntimeError, match="not running"):
        _ = embedded.address
    await embedded.close()


async def test_start_twice_is_an_error(authenticator):
    async with EmbeddedBroker(authenticator, port=0) as running:
        with pytest.raises(RuntimeError, match="cannot start an MQTT broker that is started"):
            await running.start()


async def test_port_in_use_is_reported_with_the_address(mqtt_broker, authenticator):
    host, port = mqtt_broker.address
    second = EmbeddedBroker(authenticator, host=host, port=port)
    with pytest.raises(BrokerStartError, match=f"cannot start the MQTT broker on {host}:{port}: .*in use"):
        await second.start()
    await second.close()
    with pytest.raises(RuntimeError, match="closed"):
        await second.start()
