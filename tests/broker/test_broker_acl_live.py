"""The topic ACL applied by the real broker to paho clients."""

from __future__ import annotations

import logging

import pytest

pytestmark = pytest.mark.anyio

REFUSED = 0x80


@pytest.fixture
async def device(connect, creds):
    return await connect("t1", creds.sdk_username, None)


@pytest.mark.parametrize(
    "topic",
    [
        "$aws/things/t2/jobs/start-next",  # another thing's request topic
        "$aws/things/t1/jobs/start-next/accepted",  # its own reply topic
        "$aws/things/t1/jobs/notify",
        "$aws/things/t1/jobs/notify-next",
        "$aws/events/job/job1/completed",
        "plain/topic",
    ],
)
async def test_device_publish_outside_its_request_topics_is_dropped(admin, device, topic, caplog):
    caplog.set_level(logging.INFO, logger="iot_jobs_bridge.broker")
    assert await admin.subscribe("$aws/#") == 1
    assert await admin.subscribe("#") == 1

    await device.publish(topic)  # still acknowledged (MQTT 3.1.1 has no refusal code)
    # The same connection keeps working, and its messages keep their order:
    # the allowed message arriving first proves the refused one was dropped.
    await device.publish("$aws/things/t1/jobs/get")

    assert await admin.next_topic() == "$aws/things/t1/jobs/get"
    assert admin.messages.empty()
    assert f"refused publish: client id 't1', topic '{topic}'" in caplog.text


async def test_a_refused_publish_is_one_info_line(admin, device, caplog):
    caplog.set_level(logging.INFO, logger="iot_jobs_bridge.broker")
    assert await admin.subscribe("$aws/#") == 1
    await device.publish("$aws/things/t2/jobs/get")
    await device.publish("$aws/things/t1/jobs/get")
    assert await admin.next_topic() == "$aws/things/t1/jobs/get"
    lines = [r for r in caplog.records if "t2" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in lines] == [
        (logging.INFO, "refused publish: client id 't1', topic '$aws/things/t2/jobs/get'")
    ]


async def test_a_message_withheld_from_a_subscriber_is_logged_at_debug_only(admin, device, caplog):
    # The jobs service's replies meet its own `jobs/#` subscription, a device's requests
    # meet its own: withholding them is the ACL working, not news for an operator.
    caplog.set_level(logging.DEBUG, logger="iot_jobs_bridge.broker")
    assert await device.subscribe("$aws/things/t1/jobs/#") == 1
    await device.publish("$aws/things/t1/jobs/get")  # its own request: not delivered back to it
    await admin.publish("$aws/things/t1/jobs/get/accepted")
    assert await device.next_topic() == "$aws/things/t1/jobs/get/accepted"
    withheld = [r for r in caplog.records if r.getMessage().startswith("refused receive")]
    assert [r.getMessage() for r in withheld] == [
        "refused receive: client id 't1', topic '$aws/things/t1/jobs/get'"
    ]
    assert withheld[0].levelno == logging.DEBUG


@pytest.mark.parametrize(
    "topic_filter",
    [
        "$aws/things/t2/jobs/notify",
        "$aws/things/t2/jobs/#",
        "$aws/things/+/jobs/#",
        "$aws/things/#",
        "$aws/events/#",
        "#",
        "+/things/t1/jobs/notify",
    ],
)
async def test_device_subscription_outside_its_subtree_is_refused(device, topic_filter):
    assert await device.subscribe(topic_filter) == REFUSED


@pytest.mark.parametrize(
    "topic_filter",
    [
        "$aws/things/t1/jobs/notify-next",
        "$aws/things/t1/jobs/get/+",
        "$aws/things/t1/jobs/$next/get/+",
        "$aws/things/t1/jobs/+/update/accepted",
        "$aws/things/t1/jobs/#",
    ],
)
async def test_device_subscription_inside_its_subtree_is_granted(device, topic_filter):
    assert await device.subscribe(topic_filter, qos=1) == 1


async def test_device_receives_replies_but_not_requests_on_its_subtree(admin, device):
    assert await device.subscribe("$aws/things/t1/jobs/#") == 1

    await admin.publish("$aws/things/t1/jobs/get")  # a request topic: never delivered to a device
    await admin.publish("$aws/things/t1/jobs/notify-next", b'{"timestamp":1}')

    assert await device.next_message() == ("$aws/things/t1/jobs/notify-next", b'{"timestamp":1}')
    assert device.messages.empty()


async def test_device_does_not_see_another_things_replies(connect, admin, device):
    other = await connect("t2")
    assert await device.subscribe("$aws/things/t1/jobs/notify") == 1
    assert await other.subscribe("$aws/things/t2/jobs/notify") == 1

    await admin.publish("$aws/things/t2/jobs/notify", b"for t2")
    await admin.publish("$aws/things/t1/jobs/notify", b"for t1")

    assert await device.next_message() == ("$aws/things/t1/jobs/notify", b"for t1")
    assert await other.next_message() == ("$aws/things/t2/jobs/notify", b"for t2")
    assert device.messages.empty()
    assert other.messages.empty()
