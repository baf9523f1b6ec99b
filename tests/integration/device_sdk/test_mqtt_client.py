"""The device SDK's MQTT 3.1.1 client against a scripted hostile server, the embedded broker and Mosquitto."""

from __future__ import annotations

import asyncio
import getpass
import time

import pytest

from iot_jobs_bridge.broker import CredentialAuthenticator, EmbeddedBroker
from iot_jobs_bridge.broker.mosquitto import free_port, password_line
from iot_jobs_bridge.device_sdk.connection import ConnectOptions, Endpoint, refusal_hint
from iot_jobs_bridge.device_sdk.mqtt import DEFAULT_MAX_PACKET_SIZE, MqttConnection, MqttError, connect
from tests.broker.raw_mqtt import length, packet, text

from ..brokers import start_mosquitto
from ..clients import paho_client
from .fake_broker import (
    CONNECT,
    DISCONNECT,
    PINGREQ,
    PUBACK,
    PUBCOMP,
    PUBREC,
    SUBSCRIBE,
    Peer,
    fake_broker,
    publish,
    suback,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TIMEOUT = 10.0
ADMIN_KEY, ADMIN_SECRET = "AKIDMQTTCLIENTTEST01", "mqtt-client-test-secret"


class Received:
    """Messages handed to ``on_message``, in order, and a way to wait for them."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []
        self._changed = asyncio.Event()

    def __call__(self, topic: str, payload: bytes) -> None:
        self.items.append((topic, payload))
        self._changed.set()

    async def wait_for(self, count: int) -> list[tuple[str, bytes]]:
        async with asyncio.timeout(TIMEOUT):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.items


async def open_client(port: int, client_id: str = "t1", **options) -> tuple[MqttConnection, Received]:
    received = Received()
    connection = await connect("127.0.0.1", port, client_id=client_id, on_message=received, **options)
    return connection, received


async def closed_with(connection: MqttConnection) -> MqttError:
    """The error the connection closed with (it must close, and not by our own DISCONNECT)."""
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(MqttError) as caught:
            await connection.wait_closed()
    return caught.value


async def trickle(peer: Peer, data: bytes) -> None:
    """Send ``data`` one byte a write, letting the loop (and the client on it) run between bytes."""
    for i in range(len(data)):
        await peer.send(data[i : i + 1])
        await asyncio.sleep(0)


# -- a scripted server: framing, limits, malformed packets, silence --------------------


async def test_connect_sends_its_options_and_disconnect_closes_cleanly():
    seen = []

    async def script(peer):
        seen.append(await peer.accept())
        seen.append(await peer.expect(DISCONNECT))
        seen.append(await peer.closed_by_client())

    async with fake_broker(script) as (port, tasks):
        connection, _ = await open_client(port, "dev-1", username="user", password="pw", keepalive=7)
        assert connection.is_open
        await connection.disconnect()
        await connection.wait_closed()  # a close we asked for raises nothing
        assert not connection.is_open
        await asyncio.gather(*tasks)
    connect_packet, disconnect, closed = seen
    body = connect_packet.body
    assert body[:7] == b"\x00\x04MQTT\x04"  # MQTT 3.1.1
    assert body[7] == 0x80 | 0x40 | 0x02  # username, password, clean session
    assert body[8:10] == b"\x00\x07"  # keepalive
    assert body[10:] == text(b"dev-1") + text(b"user") + text(b"pw")
    assert disconnect.body == b"" and closed


@pytest.mark.parametrize(
    ("code", "text_"),
    [
        (1, "[code:1] Unacceptable protocol version"),
        (2, "[code:2] Identifier rejected"),
        (3, "[code:3] Server unavailable"),
        (4, "[code:4] Bad user name or password"),
        (5, "[code:5] Not authorized"),
    ],
)
async def test_a_refusal_carries_its_connack_code(code, text_):
    async def script(peer):
        await peer.accept(code)
        await peer.closed_by_client()

    async with fake_broker(script) as (port, _):
        with pytest.raises(MqttError) as caught:
            await open_client(port)
    assert caught.value.code == code
    assert str(caught.value) == text_


async def test_subscribe_returns_the_codes_the_broker_granted():
    async def script(peer):
        await peer.accept()
        subscribe = await peer.expect(SUBSCRIBE)
        assert subscribe.flags == 0x2
        assert subscribe.subscribe_filters() == [("a/+", 1), ("b/#", 0)]
        await peer.send(suback(subscribe.packet_id, [1, 0x80]))
        await peer.closed_by_client()

    async with fake_broker(script) as (port, _):
        connection, _ = await open_client(port)
        assert await connection.subscribe([("a/+", 1), ("b/#", 0)]) == [1, 0x80]
        await connection.disconnect()


async def test_packets_split_across_reads_and_packed_into_one_read_all_arrive_acknowledged():
    big = bytes(range(256)) * 2  # a two-byte remaining length, so the length field itself is split
    messages = [
        publish(b"a/1", big, qos=1, packet_id=1),
        publish(b"a/2", b"zero", qos=0),
        publish(b"a/3", b"three", qos=1, packet_id=3),
    ]
    acked = []

    async def script(peer):
        await peer.accept()
        await trickle(peer, b"".join(messages))  # every packet cut into one-byte reads
        await peer.send(b"".join(messages))  # and all three in one read
        for _ in range(4):
            acked.append((await peer.expect(PUBACK)).packet_id)
        await peer.expect(DISCONNECT)

    async with fake_broker(script) as (port, tasks):
        connection, received = await open_client(port)
        items = await received.wait_for(6)
        assert items == [("a/1", big), ("a/2", b"zero"), ("a/3", b"three")] * 2
        await connection.disconnect()  # after every acknowledgement
        await asyncio.gather(*tasks)
    assert acked == [1, 3, 1, 3]


@pytest.mark.parametrize(
    ("limit", "announced"),
    [
        (1024, 1025),
        (DEFAULT_MAX_PACKET_SIZE, DEFAULT_MAX_PACKET_SIZE + 1),
        (DEFAULT_MAX_PACKET_SIZE, 2**28 - 1),
    ],
)
async def test_a_remaining_length_over_the_limit_closes_the_connection_before_its_body(limit, announced):
    async def script(peer):
        await peer.accept()
        await peer.send(b"\x30" + length(announced))  # only the header: the body never comes
        assert await peer.closed_by_client()

    async with fake_broker(script) as (port, tasks):
        connection, received = await open_client(port, max_packet_size=limit)
        error = await closed_with(connection)
        await asyncio.gather(*tasks)
    assert f"a remaining length of {announced} bytes is over the limit ({limit})" in str(error)
    assert received.items == []


async def test_a_packet_at_the_limit_is_taken():
    payload = b"x" * (1024 - 2 - 3)

    async def script(peer):
        await peer.accept()
        await peer.send(publish(b"a/b", payload))
        await peer.closed_by_client()

    async with fake_broker(script) as (port, _):
        connection, received = await open_client(port, max_packet_size=1024)
        assert await received.wait_for(1) == [("a/b", payload)]
        await connection.disconnect()


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "its remaining length runs past four bytes"),
        (packet(0x36, text(b"a") + b"\x00\x01"), "a PUBLISH at QoS 3"),
        (publish(b"\xff\xfe", b"x"), "a PUBLISH topic that is not UTF-8"),
        (packet(0x30, b"\x00\x10ab"), "a PUBLISH shorter than its topic and packet id"),
        (packet(0x30, b"\x00"), "a PUBLISH too short for its topic length"),
        (packet(0xF0, b""), "packet type 15"),
        (packet(0x00, b""), "packet type 0"),
        (packet(0x20, b"\x00\x00"), "packet type 2"),  # a second CONNACK
        (packet(0x42, b"\x00\x01"), "packet type 4 with flags 0x2"),
        (packet(0x50, b"\x00\x01"), "packet type 5"),  # PUBREC: this client never publishes at QoS 2
        (packet(0x90, b"\x00\x01"), "packet type 9"),  # a SUBACK without return codes
        (packet(0xD0, b"\x00"), "packet type 13"),  # a PINGRESP with a body
    ],
)
async def test_a_malformed_packet_closes_the_connection(bad, why):
    async def script(peer):
        await peer.accept()
        await peer.send(bad)
        assert await peer.closed_by_client()

    async with fake_broker(script) as (port, tasks):
        connection, received = await open_client(port)
        error = await closed_with(connection)
        await asyncio.gather(*tasks)
    assert str(error).startswith("the broker sent a malformed packet: ")
    assert why in str(error)
    assert received.items == []


@pytest.mark.parametrize(
    "first",
    [publish(b"a/b", b"early"), packet(0x20, b"\x00\x00\x00"), packet(0xD0, b"")],
    ids=["publish", "long-connack", "pingresp"],
)
async def test_anything_but_a_connack_first_fails_the_connect(first):
    async def script(peer):
        await peer.expect(CONNECT)
        await peer.send(first)
        await peer.closed_by_client()

    async with fake_broker(script) as (port, _):
        with pytest.raises(MqttError, match="malformed packet"):
            await open_client(port)


async def test_a_broker_that_never_answers_the_connect_times_out():
    async def script(peer):
        await peer.expect(CONNECT)
        await peer.closed_by_client()

    async with fake_broker(script) as (port, tasks):
        began = time.monotonic()
        with pytest.raises(MqttError, match=r"no CONNACK from 127\.0\.0\.1:\d+ within 0\.5 s"):
            await open_client(port, timeout=0.5)
        assert time.monotonic() - began >= 0.5
        await asyncio.gather(*tasks)  # and the socket was closed


async def test_a_silent_broker_is_detected_by_keepalive():
    pings = []

    async def script(peer):
        await peer.accept()
        while True:  # read everything, answer nothing
            try:
                pings.append((await peer.read()).kind)
            except EOFError:
                return

    async with fake_broker(script) as (port, tasks):
        began = time.monotonic()
        connection, _ = await open_client(port, keepalive=1)
        error = await closed_with(connection)
        elapsed = time.monotonic() - began
        await asyncio.gather(*tasks)
    assert str(error) == "the broker has not answered for 1 s (keepalive)"
    assert pings == [PINGREQ]
    assert elapsed >= 1.9  # a ping after a quiet second, then a second without an answer


async def test_qos2_from_the_broker_is_acknowledged_and_delivered_once():
    async def script(peer):
        await peer.accept()
        await peer.send(publish(b"q/2", b"once", qos=2, packet_id=7))
        assert (await peer.expect(PUBREC)).packet_id == 7
        await peer.send(publish(b"q/2", b"once", qos=2, packet_id=7, dup=True))  # PUBREC lost?
        assert (await peer.expect(PUBREC)).packet_id == 7
        await peer.send(packet(0x62, b"\x00\x07"))  # PUBREL
        assert (await peer.expect(PUBCOMP)).packet_id == 7
        await peer.send(publish(b"q/0", b"after"))
        await peer.closed_by_client()

    async with fake_broker(script) as (port, tasks):
        connection, received = await open_client(port)
        assert await received.wait_for(2) == [("q/2", b"once"), ("q/0", b"after")]
        await connection.disconnect()
        await asyncio.gather(*tasks)


async def test_abort_drops_the_socket_without_a_disconnect():
    ended = []

    async def script(peer):
        await peer.accept()
        try:
            ended.append(await peer.read())
        except EOFError:
            ended.append("eof")

    async with fake_broker(script) as (port, tasks):
        connection, _ = await open_client(port)
        connection.abort()
        error = await closed_with(connection)
        await asyncio.gather(*tasks)
    assert ended == ["eof"]
    assert str(error) == "the connection was dropped"
    with pytest.raises(MqttError):
        connection.publish("a", b"x", 1)


async def test_a_publish_at_qos_1_waits_for_its_puback():
    async def script(peer):
        await peer.accept()
        received = await peer.read()
        topic, packet_id, payload = received.publish_parts()
        assert (received.flags, topic, payload) == (0x2, "up/1", b"data")
        await peer.send(packet(0x40, packet_id.to_bytes(2, "big")))
        await peer.closed_by_client()

    async with fake_broker(script) as (port, tasks):
        connection, _ = await open_client(port)
        await connection.publish_acked("up/1", b"data")
        await connection.disconnect()
        await asyncio.gather(*tasks)


async def test_a_broker_closing_the_connection_fails_a_waiting_publish():
    async def script(peer):
        await peer.accept()
        await peer.read()  # the PUBLISH, never acknowledged

    async with fake_broker(script) as (port, _):
        connection, _ = await open_client(port)
        with pytest.raises(MqttError, match="the connection was lost"):
            await connection.publish_acked("up/1", b"data")


# -- the embedded broker -------------------------------------------------------------


@pytest.fixture
async def embedded():
    authenticator = CredentialAuthenticator(ADMIN_KEY, ADMIN_SECRET, {"t1", "t2"}.__contains__)
    async with EmbeddedBroker(authenticator, host="127.0.0.1", port=0) as broker:
        yield broker.address[1]


async def test_messages_go_both_ways_through_the_embedded_broker(embedded):
    device, received = await open_client(embedded, "t1")
    admin, _ = await open_client(embedded, "monitor", username=ADMIN_KEY, password=ADMIN_SECRET)
    try:
        filters = [("$aws/things/t1/jobs/+/get/+", 1), ("$aws/things/t2/jobs/notify", 1)]
        granted = await device.subscribe(filters)
        assert granted == [1, 0x80]  # another thing's topic is refused
        document = b'{"doc": "' + b"x" * 30_000 + b'"}'
        await admin.publish_acked("$aws/things/t1/jobs/j1/get/accepted", document)
        admin.publish("$aws/things/t1/jobs/j2/get/rejected", b"{}", 0)
        assert await received.wait_for(2) == [
            ("$aws/things/t1/jobs/j1/get/accepted", document),
            ("$aws/things/t1/jobs/j2/get/rejected", b"{}"),
        ]
    finally:
        await device.disconnect()
        await admin.disconnect()


async def test_the_embedded_broker_refuses_an_unknown_thing_with_code_5(embedded):
    with pytest.raises(MqttError) as caught:
        await open_client(embedded, "ghost")
    assert caught.value.code == 5
    options = ConnectOptions("ghost", Endpoint("127.0.0.1", embedded))
    assert "is the thing registered (aws iot create-thing --thing-name ghost)" in refusal_hint(
        options, caught.value.code
    )


async def test_keepalive_pings_hold_an_idle_connection_to_the_embedded_broker(embedded):
    device, received = await open_client(embedded, "t1", keepalive=1)
    admin, _ = await open_client(embedded, "monitor", username=ADMIN_KEY, password=ADMIN_SECRET)
    try:
        assert await device.subscribe([("$aws/things/t1/jobs/notify", 1)]) == [1]
        await asyncio.sleep(3.0)  # the time under test: three keepalive periods with nothing to say
        assert device.is_open
        await admin.publish_acked("$aws/things/t1/jobs/notify", b"{}")
        assert await received.wait_for(1) == [("$aws/things/t1/jobs/notify", b"{}")]
    finally:
        await device.disconnect()
        await admin.disconnect()


async def test_after_an_abort_the_same_client_id_connects_again(embedded):
    first, _ = await open_client(embedded, "t1")
    first.abort()
    await closed_with(first)
    second, received = await open_client(embedded, "t1")
    admin, _ = await open_client(embedded, "monitor", username=ADMIN_KEY, password=ADMIN_SECRET)
    try:
        assert await second.subscribe([("$aws/things/t1/jobs/notify", 1)]) == [1]
        await admin.publish_acked("$aws/things/t1/jobs/notify", b"again")
        assert await received.wait_for(1) == [("$aws/things/t1/jobs/notify", b"again")]
    finally:
        await second.disconnect()
        await admin.disconnect()


# -- Mosquitto -----------------------------------------------------------------------


@pytest.fixture
def mosquittos(tmp_path):
    """A Mosquitto with two listeners: (anonymous port, port that wants a password)."""
    port, locked = free_port("127.0.0.1"), free_port("127.0.0.1")
    passwd = tmp_path / "passwd"
    passwd.write_text(password_line("user", "right-password") + "\n")
    passwd.chmod(0o600)
    config = "\n".join(
        [
            f"user {getpass.getuser()}",
            "per_listener_settings true",
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            f"listener {locked} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {passwd}",
            "",
        ]
    )
    running = start_mosquitto(config, tmp_path / "mosquitto", port)
    yield port, locked
    running.stop()


@pytest.fixture
def mosquitto(mosquittos):
    return mosquittos[0]


@pytest.mark.parametrize(("username", "password"), [("user", "wrong-password"), (None, None)])
async def test_mosquitto_refuses_with_its_connack_code(mosquittos, username, password):
    _, locked = mosquittos
    with pytest.raises(MqttError) as caught:
        await open_client(locked, "mosq-refused", username=username, password=password)
    assert caught.value.code in (4, 5)
    assert str(caught.value).startswith(f"[code:{caught.value.code}] ")


async def test_mosquitto_takes_the_right_password(mosquittos):
    _, locked = mosquittos
    client, _ = await open_client(locked, "mosq-user", username="user", password="right-password")
    await client.disconnect()


async def test_messages_go_both_ways_through_mosquitto(mosquitto):
    client, received = await open_client(mosquitto, "mosq-client")
    try:
        assert await client.subscribe([("test/#", 1), ("other/+", 0)]) == [1, 0]
        await client.publish_acked("test/one", b"1" * 100_000)
        client.publish("test/two", b"2", 0)
        client.publish("other/three", b"3", 1)
        items = await received.wait_for(3)
        assert items == [("test/one", b"1" * 100_000), ("test/two", b"2"), ("other/three", b"3")]
    finally:
        await client.disconnect()


async def test_qos2_messages_from_mosquitto_arrive_once_each(mosquitto):
    client, received = await open_client(mosquitto, "mosq-qos2")
    try:
        assert await client.subscribe([("q2/#", 2)]) == [2]
        count = 40  # more than Mosquitto keeps in flight: every PUBREL must have had its PUBCOMP

        def send_with_paho():
            with paho_client("127.0.0.1", mosquitto, "mosq-sender") as sender:
                infos = [sender.publish(f"q2/{n}", str(n).encode(), qos=2) for n in range(count)]
                for info in infos:
                    info.wait_for_publish(TIMEOUT)

        await asyncio.to_thread(send_with_paho)
        items = await received.wait_for(count)
        assert items == [(f"q2/{n}", str(n).encode()) for n in range(count)]
        client.publish("q2/marker", b"end", 1)  # anything duplicated would arrive before this
        assert (await received.wait_for(count + 1))[count:] == [("q2/marker", b"end")]
    finally:
        await client.disconnect()


async def test_keepalive_pings_hold_an_idle_connection_to_mosquitto(mosquitto):
    client, received = await open_client(mosquitto, "mosq-idle", keepalive=1)
    try:
        assert await client.subscribe([("idle/#", 1)]) == [1]
        await asyncio.sleep(3.0)  # the time under test: three keepalive periods with nothing to say
        assert client.is_open
        await client.publish_acked("idle/still", b"here")
        assert await received.wait_for(1) == [("idle/still", b"here")]
    finally:
        await client.disconnect()
