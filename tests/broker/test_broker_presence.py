"""Presence events ($aws/events/presence/...) and the connection state the embedded broker keeps."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from iot_jobs_bridge.broker import BrokerLimits, CredentialAuthenticator, EmbeddedBroker

from . import raw_mqtt
from .conftest import MqttClient

pytestmark = pytest.mark.anyio

PRESENCE = "$aws/events/presence/+/+"


@pytest.fixture
async def watcher(admin):
    assert await admin.subscribe(PRESENCE) == 1
    return admin


async def next_event(watcher: MqttClient, client_id: str) -> tuple[str, dict]:
    """The next presence event about ``client_id`` (others, e.g. the watcher's own, are skipped)."""
    while True:
        topic, payload = await watcher.next_message()
        if topic.endswith(f"/{client_id}"):
            return topic, json.loads(payload)


async def test_a_connection_and_its_clean_end_are_announced_as_aws_documents_them(connect, watcher):
    device = await connect("t1")
    topic, connected = await next_event(watcher, "t1")
    assert topic == "$aws/events/presence/connected/t1"
    assert set(connected) == {
        "clientId",
        "timestamp",
        "eventType",
        "sessionIdentifier",
        "principalIdentifier",
        "ipAddress",
        "versionNumber",
    }
    assert (connected["clientId"], connected["eventType"]) == ("t1", "connected")
    assert (connected["principalIdentifier"], connected["ipAddress"]) == ("t1", "127.0.0.1")
    assert isinstance(connected["timestamp"], int) and connected["timestamp"] > 1_600_000_000_000
    await device.close()  # sends DISCONNECT
    topic, disconnected = await next_event(watcher, "t1")
    assert topic == "$aws/events/presence/disconnected/t1"
    assert disconnected == {
        "clientId": "t1",
        "timestamp": disconnected["timestamp"],
        "eventType": "disconnected",
        "sessionIdentifier": connected["sessionIdentifier"],
        "principalIdentifier": "t1",
        "clientInitiatedDisconnect": True,
        "disconnectReason": "CLIENT_INITIATED_DISCONNECT",
        "versionNumber": connected["versionNumber"],
    }
    assert disconnected["timestamp"] >= connected["timestamp"]


async def test_a_dropped_socket_is_connection_lost(mqtt_broker, watcher):
    host, port = mqtt_broker.address
    sock = await asyncio.to_thread(raw_mqtt.open_connection, host, port, raw_mqtt.connect("t1"))
    assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 0
    assert (await next_event(watcher, "t1"))[1]["eventType"] == "connected"
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    _, event = await next_event(watcher, "t1")
    assert (event["disconnectReason"], event["clientInitiatedDisconnect"]) == ("CONNECTION_LOST", False)


async def test_a_take_over_ends_the_old_connection_as_a_duplicate_client_id(connect, watcher):
    await connect("t1")
    _, first = await next_event(watcher, "t1")
    await connect("t1")
    _, ended = await next_event(watcher, "t1")
    _, second = await next_event(watcher, "t1")
    assert (ended["eventType"], ended["disconnectReason"]) == ("disconnected", "DUPLICATE_CLIENTID")
    assert ended["versionNumber"] == first["versionNumber"]
    assert second["eventType"] == "connected"
    assert second["versionNumber"] > first["versionNumber"]
    assert second["sessionIdentifier"] != first["sessionIdentifier"]


@pytest.mark.parametrize("broker_limits", [BrokerLimits(keepalive_min=1)])
async def test_a_silent_client_ends_in_a_keepalive_timeout(mqtt_broker, watcher):
    host, port = mqtt_broker.address
    sock = await asyncio.to_thread(raw_mqtt.open_connection, host, port, raw_mqtt.connect("t2", keepalive=1))
    try:
        assert await asyncio.to_thread(raw_mqtt.read_connack, sock) == 0
        await next_event(watcher, "t2")
        _, event = await asyncio.wait_for(next_event(watcher, "t2"), 5)
    finally:
        sock.close()
    assert event["disconnectReason"] == "MQTT_KEEP_ALIVE_TIMEOUT"


async def test_access_withdrawn_ends_in_an_auth_error(creds):
    things = set(creds.things)
    authenticator = CredentialAuthenticator(creds.admin_key_id, creds.admin_secret, things.__contains__)
    async with EmbeddedBroker(authenticator, port=0) as broker:
        host, port = broker.address
        watcher = MqttClient("watcher", creds.admin_key_id, creds.admin_secret)
        device = MqttClient("t1", None, None)
        try:
            assert not (await watcher.connect(host, port)).is_failure
            assert await watcher.subscribe(PRESENCE) == 1
            assert not (await device.connect(host, port)).is_failure
            await next_event(watcher, "t1")
            things.discard("t1")  # the thing is deleted
            assert await broker.reauthenticate() == 1
            _, event = await next_event(watcher, "t1")
            assert event["disconnectReason"] == "AUTH_ERROR"
            assert broker.presence("t1").disconnect_reason == "AUTH_ERROR"
        finally:
            await device.close()
            await watcher.close()


async def test_the_broker_knows_who_is_connected_now(mqtt_broker, connect, watcher):
    assert mqtt_broker.presence("t1") is None  # never seen
    device = await connect("t1")
    await next_event(watcher, "t1")
    now = mqtt_broker.presence("t1")
    assert (now.connected, now.ip_address, now.keepalive, now.clean_session) == (True, "127.0.0.1", 30, True)
    await device.close()
    await next_event(watcher, "t1")
    gone = mqtt_broker.presence("t1")
    assert (gone.connected, gone.disconnect_reason) == (False, "CLIENT_INITIATED_DISCONNECT")
    assert gone.timestamp >= now.timestamp


@pytest.mark.parametrize(
    "topic_filter", ["$aws/events/presence/+/t2", "$aws/events/presence/connected/t1", "$aws/events/#"]
)
async def test_devices_do_not_see_presence_not_even_their_own(connect, topic_filter):
    device = await connect("t1")
    assert await device.subscribe(topic_filter) == 0x80


async def test_a_refused_connect_is_not_a_presence_event(connect, watcher, creds):
    await connect("not-a-thing", creds.sdk_username, None, accepted=False)
    await connect("t2")
    topic, _ = await next_event(watcher, "t2")  # the first event after the refusal is t2's
    assert topic == "$aws/events/presence/connected/t2"
    assert watcher.messages.empty()
