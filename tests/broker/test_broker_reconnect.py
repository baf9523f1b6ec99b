"""A device that reconnects with the same client id gets its messages again."""

import socket

import pytest

pytestmark = pytest.mark.anyio

FILTER = "$aws/things/t1/jobs/+/get/+"
TOPIC = "$aws/things/t1/jobs/j1/get/accepted"


async def test_reconnect_after_a_dropped_connection_receives_messages(connect, admin, mqtt_broker):
    first = await connect("t1")
    assert await first.subscribe(FILTER) == 1
    first._paho.socket().shutdown(socket.SHUT_RDWR)  # the network fails: no DISCONNECT
    await first.wait_disconnected()
    second = await connect("t1")
    assert await second.subscribe(FILTER) == 1
    await admin.publish(TOPIC, b"after")
    assert await second.next_message() == (TOPIC, b"after")


async def test_reconnect_after_a_clean_disconnect_receives_messages(connect, admin):
    first = await connect("t1")
    assert await first.subscribe(FILTER) == 1
    await first.close()
    second = await connect("t1")
    assert await second.subscribe(FILTER) == 1
    await admin.publish(TOPIC, b"again")
    assert await second.next_message() == (TOPIC, b"again")


async def test_a_clean_reconnect_forgets_the_old_subscriptions(connect, admin, mqtt_broker):
    first = await connect("t1")
    assert await first.subscribe(FILTER) == 1
    await first.close()
    second = await connect("t1")
    assert await second.subscribe("$aws/things/t1/jobs/notify") == 1
    await admin.publish(TOPIC, b"old filter")
    await admin.publish("$aws/things/t1/jobs/notify", b"new filter")
    assert await second.next_message() == ("$aws/things/t1/jobs/notify", b"new filter")
    assert FILTER not in mqtt_broker._broker._subscriptions.matching(TOPIC)


async def test_unsubscribe_then_reconnect_leaves_no_stale_filter(connect, admin, mqtt_broker):
    client = await connect("t1")
    assert await client.subscribe(FILTER) == 1
    assert await client.subscribe("$aws/things/t1/jobs/notify") == 1
    client.unsubscribe(FILTER)
    await admin.publish("$aws/things/t1/jobs/notify", b"sync")  # the UNSUBSCRIBE was handled before this
    assert await client.next_message() == ("$aws/things/t1/jobs/notify", b"sync")
    await client.close()
    broker = mqtt_broker._broker
    again = await connect("t1")
    assert await again.subscribe("$aws/things/t1/jobs/notify") == 1
    assert broker._subscriptions.matching(TOPIC) == []
    assert broker._filters_of["t1"] == {"$aws/things/t1/jobs/notify"}
