"""Liveness, take-over, credentials and bad input, at the packet level where libraries hide it."""

import asyncio
import time

import pytest

from iot_jobs_bridge.broker import BrokerLimits

from . import raw_mqtt

pytestmark = pytest.mark.anyio

NOTIFY = "$aws/things/t1/jobs/notify"


async def test_a_take_over_closes_the_old_connection_and_the_new_one_gets_everything(connect, admin):
    old = await connect("t1")
    assert await old.subscribe(NOTIFY) == 1
    new = await connect("t1")  # same client id while the old socket is open
    await old.wait_disconnected()
    assert await new.subscribe(NOTIFY) == 1
    await admin.publish(NOTIFY, b"to the new one")
    assert await new.next_message() == (NOTIFY, b"to the new one")
    assert old.messages.empty()


async def test_a_refused_connect_with_a_victims_client_id_changes_nothing_of_theirs(
    connect, admin, creds, mqtt_broker
):
    victim = await connect("t1")
    assert await victim.subscribe(NOTIFY) == 1
    host, port = mqtt_broker.address
    bad = raw_mqtt.connect("t1", username=creds.admin_key_id, password="wrong")
    sock = await asyncio.to_thread(raw_mqtt.open_connection, host, port, bad)
    try:
        assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 5  # not authorized
    finally:
        sock.close()
    await admin.publish(NOTIFY, b"still yours")
    assert await victim.next_message() == (NOTIFY, b"still yours")


@pytest.mark.parametrize("broker_limits", [BrokerLimits(keepalive_min=1)])
async def test_a_silent_connection_is_closed_after_one_and_a_half_keepalives_and_its_will_fires(
    admin, mqtt_broker
):
    will_topic = "$aws/things/t1/jobs/will"
    assert await admin.subscribe(will_topic) == 1
    host, port = mqtt_broker.address
    began = time.monotonic()
    sock = await asyncio.to_thread(
        raw_mqtt.open_connection, host, port, raw_mqtt.connect("t1", keepalive=1, will=(will_topic, b"gone"))
    )
    try:
        assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 0
        assert await asyncio.to_thread(raw_mqtt.closed_by_peer, sock, 5.0)
        waited = time.monotonic() - began
    finally:
        sock.close()
    assert 1.4 <= waited < 4.0, waited
    assert await admin.next_message() == (will_topic, b"gone")


async def test_a_connection_that_pings_stays_open(connect, admin):
    device = await connect("t1")  # paho pings every 30 s; 2 s of quiet is well inside its keepalive
    assert await device.subscribe(NOTIFY) == 1
    await asyncio.sleep(2)
    await admin.publish(NOTIFY, b"still here")
    assert await device.next_message() == (NOTIFY, b"still here")


@pytest.mark.parametrize("topic", [b"$aws/things/t1/jobs/+", b"a/#", b"", b"bad/\xff\xfe", b"nul/\x00"])
async def test_a_publish_to_a_malformed_topic_closes_the_connection(topic, admin, mqtt_broker):
    host, port = mqtt_broker.address
    sock = await asyncio.to_thread(raw_mqtt.open_connection, host, port, raw_mqtt.connect("t1"))
    try:
        assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 0
        sock.sendall(raw_mqtt.publish(topic, b"{}"))
        assert await asyncio.to_thread(raw_mqtt.closed_by_peer, sock, 5.0)
    finally:
        sock.close()
    # The broker carries on for everyone else.
    assert await admin.subscribe("$aws/events/#") == 1
    await admin.publish("$aws/events/ping", b"ok")
    assert await admin.next_message() == ("$aws/events/ping", b"ok")


async def test_a_subscriber_that_never_reads_is_disconnected_not_buffered_forever(admin, mqtt_broker, creds):
    host, port = mqtt_broker.address
    hello = raw_mqtt.connect("slow-monitor", username=creds.admin_key_id, password=creds.admin_secret)
    sock = await asyncio.to_thread(raw_mqtt.open_connection, host, port, hello, receive_buffer=4096)
    try:
        assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 0
        sock.sendall(raw_mqtt.subscribe(1, "flood/#"))
        assert (await asyncio.to_thread(raw_mqtt.read_packet, sock))[0] == 0x90  # SUBACK
        chunk = b"x" * 100_000
        for n in range(170):  # 17 MB that it never reads
            await admin.publish(f"flood/{n}", chunk, qos=0)
        broker = mqtt_broker._broker
        for _ in range(100):
            if (
                "slow-monitor" not in broker._sessions
                or not broker._sessions["slow-monitor"][0].transitions.is_connected()
            ):
                break
            await asyncio.sleep(0.05)
        assert not broker._sessions["slow-monitor"][0].transitions.is_connected()
    finally:
        sock.close()
    assert await admin.subscribe("flood/check") == 1
    await admin.publish("flood/check", b"alive")
    assert await admin.next_message() == ("flood/check", b"alive")


async def test_an_unacknowledged_qos1_message_is_sent_again_with_dup_after_a_persistent_reconnect(
    admin, mqtt_broker, creds
):
    host, port = mqtt_broker.address
    hello = raw_mqtt.connect("t1", clean_session=False)
    topic = "$aws/things/t1/jobs/notify"

    def first_connection():
        sock = raw_mqtt.open_connection(host, port, hello)
        assert raw_mqtt.read_connack(sock) == 0
        sock.sendall(raw_mqtt.subscribe(1, topic, qos=1))
        assert raw_mqtt.read_packet(sock)[0] == 0x90  # SUBACK
        return sock

    sock = await asyncio.to_thread(first_connection)
    try:
        await admin.publish(topic, b"must arrive")
        first, body = await asyncio.to_thread(raw_mqtt.read_packet, sock)
        assert first == 0x32 and body.endswith(b"must arrive")  # PUBLISH, QoS 1, not DUP
        await asyncio.sleep(6)  # longer than stock amqtt's 5 s PUBACK timeout; no PUBACK sent
    finally:
        sock.close()

    def second_connection():
        again = raw_mqtt.open_connection(host, port, hello)
        assert raw_mqtt.read_connack(again) == 0
        packet = raw_mqtt.read_packet(again)
        packet_id = int.from_bytes(packet[1][2 + len(topic) : 4 + len(topic)], "big")
        again.sendall(raw_mqtt.puback(packet_id))
        return again, packet

    again, (first, body) = await asyncio.to_thread(second_connection)
    again.close()
    assert first == 0x3A, hex(first)  # PUBLISH, QoS 1, DUP
    assert body.endswith(b"must arrive")


async def test_two_connects_for_one_client_id_at_once_leave_one_live_connection(connect, admin, mqtt_broker):
    # A device that gave up waiting for its CONNACK and tried again: two CONNECTs for its
    # client id arrive together while its older connection is still open.
    old = await connect("t1")
    host, port = mqtt_broker.address
    both = raw_mqtt.connect("t1")
    first, second = await asyncio.gather(
        asyncio.to_thread(raw_mqtt.open_connection, host, port, both),
        asyncio.to_thread(raw_mqtt.open_connection, host, port, both),
    )
    try:
        await old.wait_disconnected()
        # Admitted one after the other: the later takes the earlier over, as it did the old one.
        assert await asyncio.to_thread(raw_mqtt.read_connack, first) == 0
        assert await asyncio.to_thread(raw_mqtt.read_connack, second) == 0
        closed = await asyncio.gather(
            asyncio.to_thread(raw_mqtt.closed_by_peer, first, 3.0),
            asyncio.to_thread(raw_mqtt.closed_by_peer, second, 3.0),
        )
        assert sorted(closed) == [False, True]
        live = second if closed[0] else first
        live.settimeout(3.0)
        live.sendall(raw_mqtt.subscribe(1, NOTIFY, qos=1))
        assert (await asyncio.to_thread(raw_mqtt.read_packet, live))[0] == 0x90  # SUBACK
        await admin.publish(NOTIFY, b"to the live one")
        first_byte, body = await asyncio.to_thread(raw_mqtt.read_packet, live)
        assert first_byte & 0xF0 == 0x30 and body.endswith(b"to the live one")
    finally:
        first.close()
        second.close()
