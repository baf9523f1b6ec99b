"""The service's MQTT bridge loses no reply to a dropped connection, and repeats none it saw acknowledged."""

import asyncio
import struct

import pytest

from iot_jobs_bridge.jobs_service.device_plane.mqtt_bridge import MqttBridge
from iot_jobs_bridge.jobs_service.device_plane.render import Message
from tests.broker.raw_mqtt import packet

from ..device_sdk.fake_broker import DISCONNECT, PUBLISH, SUBSCRIBE, Peer, fake_broker, suback

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

FIRST = Message("$aws/things/t1/jobs/notify", {"jobs": {}})
SECOND = Message("$aws/things/t1/jobs/notify-next", {})


async def test_an_unacknowledged_reply_is_sent_again_on_the_next_connection_and_then_no_more():
    seen: list[tuple[int, str, bytes]] = []  # (connection, topic, payload) of each PUBLISH
    arrived = asyncio.Event()
    connections = 0

    async def script(peer: Peer) -> None:
        nonlocal connections
        connections += 1
        number = connections
        await peer.accept()
        subscribe = await peer.expect(SUBSCRIBE)
        await peer.send(suback(subscribe.packet_id, [1] * len(subscribe.subscribe_filters())))
        while True:
            try:
                received = await peer.read()
            except EOFError:
                return
            if received.kind == DISCONNECT:
                return
            if received.kind != PUBLISH:
                continue
            topic, packet_id, payload = received.publish_parts()
            seen.append((number, topic, payload))
            arrived.set()
            if number == 1:
                return  # the connection drops before the PUBACK
            await peer.send(packet(0x40, struct.pack("!H", packet_id)))
            if number == 2:
                return  # acknowledged, then dropped: nothing of it may come again

    async def until(count: int) -> None:
        async with asyncio.timeout(10):
            while len(seen) < count:
                arrived.clear()
                await arrived.wait()

    async with fake_broker(script) as (port, _):
        bridge = MqttBridge(
            "127.0.0.1",
            port,
            username=None,
            password=None,
            deliver=lambda _topic, _payload: None,
            reconnect_delays=(0.05, 0.1),
        )
        await bridge.start()
        try:
            bridge.publish([FIRST])
            await until(2)
            await asyncio.wait_for(bridge.resubscribed(2), 10)  # the third connection is up
            bridge.publish([SECOND])
            await until(3)
        finally:
            await bridge.close()

    first, second = FIRST.encoded(), SECOND.encoded()
    assert seen == [(1, FIRST.topic, first), (2, FIRST.topic, first), (3, SECOND.topic, second)]
