"""What a hostile client cannot make the embedded broker do: forged wills, retained plants,
oversized packets, idle sockets, protocol violations, and holding on after losing its rights."""

import asyncio
import logging
import socket
import time

import pytest

from iot_jobs_bridge.broker import BrokerLimits, CredentialAuthenticator, EmbeddedBroker

from . import raw_mqtt
from .conftest import MqttClient

pytestmark = pytest.mark.anyio

FORGED = b'{"status":"SUCCEEDED","statusDetails":{"by":"t1"}}'


async def _open(broker: EmbeddedBroker, data: bytes, **options) -> socket.socket:
    host, port = broker.address
    return await asyncio.to_thread(raw_mqtt.open_connection, host, port, data, **options)


async def _closed(sock: socket.socket, within: float = 3.0) -> bool:
    try:
        return await asyncio.to_thread(raw_mqtt.closed_by_peer, sock, within)
    finally:
        sock.close()


async def _nothing_delivered(watcher: MqttClient, sender: MqttClient) -> None:
    # Messages from one publisher keep their order: a marker arriving first proves nothing came before it.
    await sender.publish("marker/done")
    assert await watcher.next_topic() == "marker/done"


# -- wills ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "will_topic",
    [
        "$aws/things/t2/jobs/job1/update",  # another thing's request: would complete its job
        "$aws/things/t2/jobs/notify-next",  # another thing's notification: a forged job document
        "$aws/things/t1/jobs/notify-next",  # its own replies come from the service only
        "$aws/events/job/job1/completed",  # what monitoring tools believe
        "#",
        "a/+/b",
        "",
    ],
)
async def test_a_will_the_client_may_not_publish_refuses_its_connect(will_topic, mqtt_broker, admin, caplog):
    caplog.set_level(logging.INFO, logger="iotjobs.devices")
    assert await admin.subscribe("$aws/#") == 1
    assert await admin.subscribe("#") == 1
    sock = await _open(mqtt_broker, raw_mqtt.connect("t1", will=(will_topic, FORGED), will_retain=True))
    assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 5  # not authorized
    assert await _closed(sock)
    await _nothing_delivered(admin, admin)
    assert "refused connection: client id 't1' from" in caplog.text
    assert ": will topic not allowed: it " in caplog.text


async def test_an_allowed_will_fires_but_a_dollar_topic_never_keeps_it(mqtt_broker, admin, connect, creds):
    will_topic = "$aws/things/t1/jobs/get"  # its own request topic
    assert await admin.subscribe(will_topic) == 1
    sock = await _open(mqtt_broker, raw_mqtt.connect("t1", will=(will_topic, b"{}"), will_retain=True))
    assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 0
    sock.close()  # gone without DISCONNECT: the will fires
    assert await admin.next_message() == (will_topic, b"{}")
    later = await connect("later", creds.admin_key_id, creds.admin_secret)
    assert await later.subscribe(will_topic) == 1
    assert await later.subscribe("marker/done") == 1
    await _nothing_delivered(later, admin)  # no retained copy came on SUBSCRIBE


async def test_a_retained_publish_on_a_dollar_topic_is_delivered_but_not_kept(
    mqtt_broker, admin, connect, creds
):
    notify_next = "$aws/things/t1/jobs/notify-next"
    hello = raw_mqtt.connect("planter", username=creds.admin_key_id, password=creds.admin_secret)
    planter = await _open(mqtt_broker, hello)
    try:
        assert await asyncio.to_thread(raw_mqtt.read_connack, planter) == 0
        assert await admin.subscribe(notify_next) == 1
        planter.sendall(raw_mqtt.packet(0x31, raw_mqtt.text(notify_next.encode()) + b"forged"))  # retain
        assert await admin.next_message() == (notify_next, b"forged")
    finally:
        planter.close()
    device = await connect("t1")
    assert await device.subscribe(notify_next) == 1
    await admin.publish(notify_next, b"real")
    assert await device.next_message() == (notify_next, b"real")


async def test_a_retained_publish_elsewhere_is_still_kept(admin, connect, creds):
    await admin.publish("status/kept", b"kept", retain=True)
    monitor = await connect("monitor", creds.admin_key_id, creds.admin_secret)
    assert await monitor.subscribe("status/kept") == 1
    assert await monitor.next_message() == ("status/kept", b"kept")


# -- sizes ---------------------------------------------------------------------------------


async def test_a_packet_above_the_limit_closes_the_connection_before_its_body_arrives(mqtt_broker, admin):
    sock = await _open(mqtt_broker, raw_mqtt.connect("t1"))
    assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 0
    sock.sendall(raw_mqtt.header_only(0x30, 150 * 1024 * 1024))  # claims 150 MB, sends none of it
    assert await _closed(sock)
    assert await admin.subscribe("alive") == 1
    await admin.publish("alive", b"yes")
    assert await admin.next_message() == ("alive", b"yes")


async def test_a_connect_above_its_limit_is_closed_before_anyone_logs_in(mqtt_broker):
    sock = await _open(mqtt_broker, raw_mqtt.header_only(0x10, 1024 * 1024))
    assert await _closed(sock)


@pytest.mark.parametrize("broker_limits", [BrokerLimits(max_packet_bytes=2048)])
async def test_the_packet_limit_is_a_setting(connect, admin):
    device = await connect("t1")
    await device.publish("$aws/things/t1/jobs/get", b"x" * 1500)  # within the limit: acknowledged
    device._paho.publish("$aws/things/t1/jobs/get", b"x" * 3000, qos=1)
    await device.wait_disconnected()


# -- idle and many connections ------------------------------------------------------------


@pytest.mark.parametrize("broker_limits", [BrokerLimits(connect_timeout=0.5)])
@pytest.mark.parametrize("opening", [b"", raw_mqtt.connect("t1")[:6]], ids=["silent", "half-a-connect"])
async def test_a_socket_without_a_connect_is_closed_after_the_connect_timeout(opening, mqtt_broker, caplog):
    caplog.set_level(logging.INFO, logger="iot_jobs_bridge.broker")
    began = time.monotonic()
    assert await _closed(await _open(mqtt_broker, opening), within=5.0)
    assert 0.4 <= time.monotonic() - began < 3.0
    assert "no CONNECT within 0.5 s" in caplog.text


@pytest.mark.parametrize("broker_limits", [BrokerLimits(keepalive_min=1, keepalive_max=1)])
async def test_keepalive_zero_is_held_to_the_maximum(mqtt_broker):
    sock = await _open(mqtt_broker, raw_mqtt.connect("t1", keepalive=0))
    assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 0
    assert await _closed(sock, within=5.0)  # silent for 1.5 x the 1 s maximum


@pytest.mark.parametrize("broker_limits", [BrokerLimits(max_connections=2)])
async def test_connections_beyond_the_cap_are_closed_at_once_with_a_log_line(mqtt_broker, connect, caplog):
    caplog.set_level(logging.INFO, logger="iot_jobs_bridge.broker")
    await connect("t1")
    await connect("t2")
    sock = await _open(mqtt_broker, raw_mqtt.connect("t1"))
    assert await _closed(sock, within=2.0)
    assert "2 connections are open, the limit" in caplog.text


async def _slow_subscriber(broker: EmbeddedBroker, client_id: str, creds, topic_filter: str) -> socket.socket:
    hello = raw_mqtt.connect(client_id, username=creds.admin_key_id, password=creds.admin_secret)
    sock = await _open(broker, hello, receive_buffer=4096)
    assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 0
    sock.sendall(raw_mqtt.subscribe(1, topic_filter))
    assert (await asyncio.to_thread(raw_mqtt.read_packet, sock))[0] == 0x90  # SUBACK
    return sock


@pytest.mark.parametrize("broker_limits", [BrokerLimits(max_queued_bytes=2 * 1024 * 1024)])
async def test_the_broker_wide_queue_cap_closes_the_client_that_would_pass_it(
    mqtt_broker, admin, creds, caplog
):
    caplog.set_level(logging.INFO, logger="iot_jobs_bridge.broker")
    sock = await _slow_subscriber(mqtt_broker, "slow", creds, "flood/#")
    try:
        for n in range(120):  # 12 MB: the kernel's buffers take a few, the rest passes the broker-wide cap
            await admin.publish(f"flood/{n}", b"x" * 100_000, qos=0)
        assert await asyncio.to_thread(raw_mqtt.closed_by_peer, sock, 5.0)
    finally:
        sock.close()
    assert "closing slow" in caplog.text
    assert "the broker's limit of 2097152 in all" in caplog.text


async def test_the_services_own_connection_is_never_closed_for_its_queue(creds, caplog):
    caplog.set_level(logging.INFO, logger="iot_jobs_bridge.broker")
    rules = CredentialAuthenticator(
        creds.admin_key_id, creds.admin_secret, {"t1"}.__contains__, service_client_id="iotjobs-service"
    )
    async with EmbeddedBroker(rules, port=0) as broker:
        service = await _slow_subscriber(broker, "iotjobs-service", creds, "$aws/things/+/jobs/#")
        device = MqttClient("t1", None, None)
        try:
            assert not (await device.connect(*broker.address)).is_failure
            for _ in range(150):  # 15 MB of requests the service does not read: more than 8 MiB wait
                await device.publish("$aws/things/t1/jobs/get", b"x" * 100_000)
            assert broker._broker._sessions["iotjobs-service"][0].transitions.is_connected()
        finally:
            await device.close()
            service.close()
    assert "dropped a message to the jobs service" in caplog.text
    assert "closing iotjobs-service" not in caplog.text


# -- protocol violations --------------------------------------------------------------------

_TOPIC = raw_mqtt.text(b"a/b")


@pytest.mark.parametrize(
    "violation",
    [
        pytest.param(raw_mqtt.packet(0x36, _TOPIC + b"\x00\x01{}"), id="publish-qos-3"),
        pytest.param(raw_mqtt.packet(0x82, b"\x00\x01"), id="subscribe-without-filters"),
        pytest.param(raw_mqtt.packet(0x80, b"\x00\x01" + _TOPIC + b"\x00"), id="subscribe-bad-flags"),
        pytest.param(raw_mqtt.packet(0x82, b"\x00\x01" + _TOPIC + b"\x03"), id="subscribe-qos-3"),
        pytest.param(raw_mqtt.packet(0x82, b"\x00\x01" + _TOPIC + b"\x41"), id="subscribe-reserved-bits"),
        pytest.param(raw_mqtt.packet(0x82, b"\x00\x01" + _TOPIC), id="subscribe-without-qos"),
        pytest.param(raw_mqtt.packet(0xA2, b"\x00\x01"), id="unsubscribe-without-filters"),
        pytest.param(raw_mqtt.packet(0xA0, b"\x00\x01" + _TOPIC), id="unsubscribe-bad-flags"),
        pytest.param(raw_mqtt.connect("t1"), id="second-connect"),
        pytest.param(raw_mqtt.packet(0x20, b"\x00\x00"), id="connack-from-a-client"),
        pytest.param(bytes([0xC1, 0x00]), id="pingreq-with-flags"),
        pytest.param(bytes([0xF0, 0x00]), id="reserved-type"),
    ],
)
async def test_a_protocol_violation_closes_the_connection(violation, mqtt_broker, admin):
    sock = await _open(mqtt_broker, raw_mqtt.connect("t1"))
    assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 0
    sock.sendall(violation)
    assert await _closed(sock)
    assert await admin.subscribe("alive") == 1
    await admin.publish("alive", b"yes")
    assert await admin.next_message() == ("alive", b"yes")


async def test_a_pingreq_before_connect_is_not_answered_and_closes_the_connection(mqtt_broker):
    sock = await _open(mqtt_broker, raw_mqtt.pingreq())
    try:
        sock.settimeout(3.0)
        assert await asyncio.to_thread(sock.recv, 16) == b""  # closed, and no PINGRESP first
    finally:
        sock.close()


# -- rights withdrawn while connected -----------------------------------------------------


async def test_reauthentication_closes_only_the_connections_whose_credentials_are_withdrawn(creds):
    things = {"t1", "t2"}
    rules = CredentialAuthenticator(creds.admin_key_id, creds.admin_secret, things.__contains__)
    async with EmbeddedBroker(rules, port=0) as broker:
        gone, kept = MqttClient("t1", None, None), MqttClient("t2", None, None)
        try:
            for client in (gone, kept):
                assert not (await client.connect(*broker.address)).is_failure
            things.discard("t1")  # the thing was deleted
            assert await broker.reauthenticate() == 1
            await gone.wait_disconnected()
            assert await kept.subscribe("$aws/things/t2/jobs/notify") == 1
        finally:
            await gone.close()
            await kept.close()
