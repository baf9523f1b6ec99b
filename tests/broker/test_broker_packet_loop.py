"""The packet loop's inline path: QoS 1 both ways acknowledged and bounded; every connection's end seen."""

import asyncio

import pytest
from amqtt.mqtt.publish import PublishPacket

from iot_jobs_bridge.broker import BrokerLimits
from iot_jobs_bridge.schemas.mqtt_packets import publish_packet

from . import raw_mqtt

pytestmark = pytest.mark.anyio

SMALL_BOUND = BrokerLimits(max_queued_bytes_per_client=200_000)


@pytest.mark.parametrize("size", [0, 1, 100, 16_000, 300_000])
@pytest.mark.parametrize(("qos", "packet_id", "dup"), [(0, None, False), (1, 7, False), (1, 65535, True)])
def test_a_publish_packet_is_encoded_as_amqtt_encodes_it(size, qos, packet_id, dup):
    topic, data = "$aws/things/t1/jobs/notify-next", bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    expected = PublishPacket.build(topic, data, packet_id, dup, qos, False).to_bytes()
    assert publish_packet(topic, data, qos, packet_id, dup) == bytes(expected)


async def _subscriber(host, port, creds, topic_filter):
    hello = raw_mqtt.connect("monitor", username=creds.admin_key_id, password=creds.admin_secret)
    sock = await asyncio.to_thread(raw_mqtt.open_connection, host, port, hello)
    assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 0
    sock.sendall(raw_mqtt.subscribe(1, topic_filter, qos=1))
    assert (await asyncio.to_thread(raw_mqtt.read_packet, sock))[0] == 0x90  # SUBACK
    return sock


async def _until(condition):
    for _ in range(200):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


@pytest.mark.parametrize("broker_limits", [SMALL_BOUND])
async def test_a_subscriber_that_acknowledges_gets_far_more_than_its_bound(admin, mqtt_broker, creds):
    sock = await _subscriber(*mqtt_broker.address, creds, "$aws/events/flood/#")
    try:
        chunk = b"y" * 50_000
        for n in range(20):  # 1 MB in all, five times the bound; each acknowledged in turn
            await admin.publish(f"$aws/events/flood/{n}", chunk, qos=0)
            first, body = await asyncio.to_thread(raw_mqtt.read_packet, sock)
            assert first == 0x32 and body.endswith(chunk)  # PUBLISH, QoS 1
            topic_length = int.from_bytes(body[:2], "big")
            sock.sendall(raw_mqtt.puback(int.from_bytes(body[2 + topic_length : 4 + topic_length], "big")))
        broker = mqtt_broker._broker
        assert await _until(lambda: broker._outbox.total == 0)
        assert broker._sessions["monitor"][0].inflight_out == {}
        assert broker._sessions["monitor"][0].transitions.is_connected()
    finally:
        sock.close()


@pytest.mark.parametrize("broker_limits", [SMALL_BOUND])
async def test_a_subscriber_that_never_acknowledges_is_disconnected_and_its_bytes_released(
    admin, mqtt_broker, creds
):
    sock = await _subscriber(*mqtt_broker.address, creds, "$aws/events/flood/#")
    broker = mqtt_broker._broker
    try:
        for n in range(5):  # 250 kB, over the bound, never acknowledged
            await admin.publish(f"$aws/events/flood/{n}", b"z" * 50_000, qos=0)
        assert await _until(lambda: not broker._sessions["monitor"][0].transitions.is_connected())
        assert await asyncio.to_thread(raw_mqtt.closed_by_peer, sock, 5)
    finally:
        sock.close()
    assert await _until(lambda: broker._outbox.total == 0)
    assert await admin.subscribe("$aws/events/check") == 1
    await admin.publish("$aws/events/check", b"alive")
    assert await admin.next_message() == ("$aws/events/check", b"alive")


async def test_a_qos1_request_is_acknowledged_with_its_packet_id_and_routed(admin, connect, mqtt_broker):
    await admin.subscribe("$aws/things/t1/jobs/get")
    device = await asyncio.to_thread(raw_mqtt.open_connection, *mqtt_broker.address, raw_mqtt.connect("t1"))
    try:
        assert await asyncio.to_thread(raw_mqtt.read_connack, device) == 0
        name = b"$aws/things/t1/jobs/get"
        device.sendall(raw_mqtt.packet(0x32, raw_mqtt.text(name) + (4242).to_bytes(2, "big") + b"{}"))
        assert await asyncio.to_thread(raw_mqtt.read_packet, device) == (0x40, (4242).to_bytes(2, "big"))
        assert await admin.next_message() == (name.decode(), b"{}")
    finally:
        device.close()


async def test_a_client_that_closes_right_after_connect_leaves_no_connection_behind(mqtt_broker):
    broker = mqtt_broker._broker

    def connect_and_close(n):
        sock = raw_mqtt.open_connection(*mqtt_broker.address, raw_mqtt.connect(f"t{n}"))
        sock.close()  # before the CONNACK is read: the broker meets the end at once

    for n in range(20):
        await asyncio.to_thread(connect_and_close, n)
    assert await _until(lambda: not broker._connections and not broker._ends)
