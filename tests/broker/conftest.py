"""A real embedded broker on 127.0.0.1:0 and paho-mqtt clients driven from asyncio.

paho runs its network loop in its own thread; its callbacks hand results to
the test's event loop with `call_soon_threadsafe`, so tests await acks and
messages with timeouts instead of sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from iot_jobs_bridge.broker import Authenticator, BrokerLimits, CredentialAuthenticator, EmbeddedBroker

TIMEOUT = 3.0


@dataclass(frozen=True)
class Credentials:
    admin_key_id: str = "AKIDEXAMPLEADMIN"
    admin_secret: str = "admin-secret"
    things: frozenset[str] = frozenset({"t1", "t2"})
    # The AWS IoT Device SDK (awscrt) sends its metrics as the username, with no password.
    sdk_username: str = (
        "?SDK=IoTDeviceSDK/Python&Platform=Unix&Metadata=(CRTVersion=0.36.1;IoTSDKVersion=1.31.0)"
    )


class MqttClient:
    """A paho MQTT 3.1.1 client whose acknowledgements and messages can be awaited."""

    def __init__(
        self, client_id: str, username: str | None, password: str | None, *, clean_session: bool = True
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._connack: asyncio.Future[ReasonCode] = self._loop.create_future()
        self._disconnected: asyncio.Future[ReasonCode] = self._loop.create_future()
        self.messages: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        # No automatic reconnect: a refused or dropped client simply stays disconnected.
        self._paho = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=clean_session,
            reconnect_on_failure=False,
        )
        if username is not None:
            self._paho.username_pw_set(username, password)
        self._paho.on_connect = self._on_connect
        self._paho.on_disconnect = self._on_disconnect
        self._paho.on_subscribe = self._on_subscribe
        self._paho.on_publish = self._on_publish
        self._paho.on_message = self._on_message

    # paho thread -> event loop
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        self._loop.call_soon_threadsafe(self._settle, self._connack, reason)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._loop.call_soon_threadsafe(self._settle, self._disconnected, reason)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        self._loop.call_soon_threadsafe(self._ack, mid, [reason.value for reason in reasons])

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self._loop.call_soon_threadsafe(self._ack, mid, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._loop.call_soon_threadsafe(self.messages.put_nowait, (message.topic, message.payload))

    # event loop side
    @staticmethod
    def _settle(future: asyncio.Future[Any], value: Any) -> None:
        if not future.done():
            future.set_result(value)

    def _ack_future(self, mid: int) -> asyncio.Future[Any]:
        return self._acks.setdefault(mid, self._loop.create_future())

    def _ack(self, mid: int, value: Any) -> None:
        self._settle(self._ack_future(mid), value)

    async def _wait_ack(self, mid: int) -> Any:
        try:
            return await asyncio.wait_for(self._ack_future(mid), TIMEOUT)
        finally:
            self._acks.pop(mid, None)

    async def connect(self, host: str, port: int) -> ReasonCode:
        self._paho.connect_async(host, port, keepalive=30)
        self._paho.loop_start()
        return await asyncio.wait_for(self._connack, TIMEOUT)

    async def subscribe(self, topic_filter: str, qos: int = 1) -> int:
        """Subscribe and return the SUBACK return code (0x80 = refused)."""
        result, mid = self._paho.subscribe(topic_filter, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS
        (code,) = await self._wait_ack(mid)
        return int(code)

    async def publish(
        self, topic: str, payload: bytes = b"{}", qos: int = 1, *, retain: bool = False
    ) -> None:
        """Publish (at QoS 1 by default) and wait until the broker has it (its PUBACK at QoS 1)."""
        info = self._paho.publish(topic, payload, qos, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
        await self._wait_ack(info.mid)

    def unsubscribe(self, topic_filter: str) -> None:
        """Send an UNSUBSCRIBE without waiting for its acknowledgement."""
        self._paho.unsubscribe(topic_filter)

    async def next_message(self) -> tuple[str, bytes]:
        return await asyncio.wait_for(self.messages.get(), TIMEOUT)

    async def next_topic(self) -> str:
        topic, _ = await self.next_message()
        return topic

    async def wait_disconnected(self) -> ReasonCode:
        return await asyncio.wait_for(asyncio.shield(self._disconnected), TIMEOUT)

    async def close(self) -> None:
        def stop() -> None:
            self._paho.disconnect()
            self._paho.loop_stop()

        await asyncio.to_thread(stop)


ConnectFactory = Callable[..., Awaitable[MqttClient]]


@pytest.fixture
def creds() -> Credentials:
    return Credentials()


@pytest.fixture
def authenticator(creds: Credentials) -> Authenticator:
    return CredentialAuthenticator(creds.admin_key_id, creds.admin_secret, creds.things.__contains__)


@pytest.fixture
def broker_limits() -> BrokerLimits:
    """The broker's limits; a test overrides them with ``@pytest.mark.parametrize("broker_limits", ...)``."""
    return BrokerLimits()


@pytest.fixture
async def mqtt_broker(
    authenticator: Authenticator, broker_limits: BrokerLimits
) -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker(authenticator, host="127.0.0.1", port=0, limits=broker_limits) as running:
        yield running


@pytest.fixture
async def connect(mqtt_broker: EmbeddedBroker) -> AsyncIterator[ConnectFactory]:
    """`await connect(client_id, username, password, accepted=True, clean_session=True)` -> a client.

    With `accepted=False` the CONNACK must be a refusal ("Not authorized").
    """
    clients: list[MqttClient] = []
    host, port = mqtt_broker.address

    async def _connect(
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        *,
        accepted: bool = True,
        clean_session: bool = True,
    ) -> MqttClient:
        client = MqttClient(client_id, username, password, clean_session=clean_session)
        clients.append(client)
        reason = await client.connect(host, port)
        if accepted:
            assert not reason.is_failure, f"{client_id} was refused: {reason}"
        else:
            assert reason == "Not authorized", f"{client_id}: {reason}"
        return client

    yield _connect
    for client in clients:
        await client.close()


@pytest.fixture
async def admin(connect: ConnectFactory, creds: Credentials) -> MqttClient:
    return await connect("jobs-service", creds.admin_key_id, creds.admin_secret)
