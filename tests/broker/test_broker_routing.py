"""Routing of `$` topics through the embedded broker (the `JobsBroker` override)."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.anyio


async def test_device_publishes_on_dollar_topics_reach_the_service(connect, admin):
    # Regression: stock amqtt drops a client's `$` publish and then stops
    # routing everything else that client sends on the same connection.
    assert await admin.subscribe("$aws/things/+/jobs/#") == 1
    device = await connect("t1", "?SDK=IoTDeviceSDK/Python", None)

    await device.publish("$aws/things/t1/jobs/start-next", b'{"clientToken":"a"}')
    await device.publish("$aws/things/t1/jobs/job1/update", b'{"clientToken":"b"}')

    assert await admin.next_message() == ("$aws/things/t1/jobs/start-next", b'{"clientToken":"a"}')
    assert await admin.next_message() == ("$aws/things/t1/jobs/job1/update", b'{"clientToken":"b"}')


async def test_service_reply_reaches_the_device(connect, admin):
    device = await connect("t1")
    assert await device.subscribe("$aws/things/t1/jobs/start-next/+") == 1

    await admin.publish("$aws/things/t1/jobs/start-next/accepted", b'{"clientToken":"a"}')

    assert await device.next_message() == ("$aws/things/t1/jobs/start-next/accepted", b'{"clientToken":"a"}')


async def test_dollar_topics_do_not_match_filters_starting_with_a_wildcard(connect, admin):
    monitor = await connect("monitor", "AKIDEXAMPLEADMIN", "admin-secret")
    assert await monitor.subscribe("#") == 1
    assert await monitor.subscribe("+/things/t1/jobs/notify") == 1

    await admin.publish("$aws/things/t1/jobs/notify")
    await admin.publish("marker/done")

    # Messages from one publisher keep their order, so the marker arriving
    # first proves the `$` message was not delivered.
    assert await monitor.next_topic() == "marker/done"
    assert monitor.messages.empty()


async def test_persistent_device_session_keeps_its_rights_after_reconnect(connect, admin):
    # The AWS IoT Device SDK connects with clean_session=False; amqtt then
    # reuses the session, and authentication must grant the principal again.
    device = await connect("t1", clean_session=False)
    assert await device.subscribe("$aws/things/t1/jobs/notify") == 1
    await device.close()

    device = await connect("t1", clean_session=False)
    await admin.publish("$aws/things/t1/jobs/notify", b"again")

    assert await device.next_message() == ("$aws/things/t1/jobs/notify", b"again")


async def test_deliveries_survive_subscription_changes_by_other_clients(connect, admin):
    # Regression: stock amqtt iterates its live subscription table while
    # awaiting the ACL check; a client (un)subscribing meanwhile made the
    # broker drop the message for every later subscriber.
    receiver = await connect("t1")
    churner = await connect("t2")
    assert await receiver.subscribe("$aws/things/t1/jobs/get/+") == 1
    count = 300

    async def publish() -> None:
        for index in range(count):
            await admin.publish("$aws/things/t1/jobs/get/accepted", str(index).encode())

    async def churn() -> None:
        for index in range(count):
            assert await churner.subscribe(f"$aws/things/t2/jobs/job-{index}/get/+") == 1
            churner.unsubscribe(f"$aws/things/t2/jobs/job-{index}/get/+")

    await asyncio.gather(publish(), churn())
    received = [int((await receiver.next_message())[1]) for _ in range(count)]
    assert received == list(range(count))


async def test_the_in_process_service_gets_every_allowed_request_and_its_replies_are_routed(
    mqtt_broker, connect, admin
):
    received: list[tuple[str, bytes]] = []
    arrived = asyncio.Event()

    def sink(topic: str, payload: bytes) -> None:
        received.append((topic, payload))
        arrived.set()

    mqtt_broker.serve_requests(sink)
    assert await admin.subscribe("$aws/things/+/jobs/#") == 1
    device = await connect("t1")
    assert await device.subscribe("$aws/things/t1/jobs/get/+") == 1

    await device.publish("$aws/things/t2/jobs/get", b"not mine")  # refused by the topic rules
    await device.publish("$aws/things/t1/jobs/get/accepted", b"reply-shaped")  # refused too
    await device.publish("$aws/things/t1/jobs/no/such/path", b"unknown")  # answered InvalidTopic
    await device.publish("$aws/things/t1/jobs/get", b'{"clientToken":"a"}')
    # The admin's monitor still sees the requests, in order, after the sink has them.
    assert await admin.next_message() == ("$aws/things/t1/jobs/no/such/path", b"unknown")
    assert await admin.next_message() == ("$aws/things/t1/jobs/get", b'{"clientToken":"a"}')
    assert received == [
        ("$aws/things/t1/jobs/no/such/path", b"unknown"),
        ("$aws/things/t1/jobs/get", b'{"clientToken":"a"}'),
    ]

    mqtt_broker.publish("$aws/things/t1/jobs/get/accepted", b'{"clientToken":"a"}')
    assert await device.next_message() == ("$aws/things/t1/jobs/get/accepted", b'{"clientToken":"a"}')
    assert await admin.next_message() == ("$aws/things/t1/jobs/get/accepted", b'{"clientToken":"a"}')

    mqtt_broker.serve_requests(None)
    await device.publish("$aws/things/t1/jobs/start-next", b"{}")
    assert await admin.next_message() == ("$aws/things/t1/jobs/start-next", b"{}")
    assert len(received) == 2
