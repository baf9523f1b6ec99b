"""The service's own MQTT client: device requests in, replies and notifications out.

It is an ordinary client with full rights, so the same service runs against
the embedded broker or any other. paho runs its network loop in a thread;
requests are handed to ``deliver`` on the asyncio loop (the request pump,
which answers them there, so the engine never runs two changes at once).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from iot_jobs_bridge.schemas.topics import JOBS_REQUEST_FILTER

from .render import Message

__all__ = ["REQUEST_FILTERS", "MqttBridge"]

log = logging.getLogger(__name__)

# Every jobs topic, so unknown paths get InvalidTopic. The embedded broker does
# not deliver reply topics back to the service's own connection; on other
# brokers they arrive and ``topics.parse_request`` ignores them.
REQUEST_FILTERS = (JOBS_REQUEST_FILTER,)
SERVICE_CLIENT_ID = "iotjobs-service"


class MqttBridge:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None,
        password: str | None,
        deliver: Callable[[str, bytes], None],
        client_id: str = SERVICE_CLIENT_ID,
        tls: ssl.SSLContext | None = None,
        persistent: bool = False,
        reconnect_delays: tuple[float, float] = (1, 10),
    ) -> None:
        self._address = (host, port)
        self._deliver = deliver
        # A persistent session lets the broker queue requests while the service
        # reconnects (after a managed Mosquitto restarts, devices may be back first).
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls is not None:
            self._client.tls_set_context(tls)
        self._client.max_inflight_messages_set(256)
        low, high = reconnect_delays
        self._client.reconnect_delay_set(min_delay=low, max_delay=high)  # type: ignore[arg-type]
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribed: asyncio.Event = asyncio.Event()
        self._closed = False
        self._lost = False  # the connection dropped since it was last up
        self.subscriptions = 0  # times the request filters were granted: once per (re)connection
        self._grant = asyncio.Event()

    async def start(self, connect_within: float = 10.0) -> None:
        """Connect, subscribe to the request topics, and start answering."""
        self._loop = asyncio.get_running_loop()
        self._client.connect_async(*self._address, keepalive=60)
        self._client.loop_start()
        try:
            await asyncio.wait_for(self._subscribed.wait(), connect_within)
        except TimeoutError as exc:
            self._client.loop_stop()
            host, port = self._address
            raise ConnectionError(f"could not subscribe to the broker at {host}:{port}") from exc

    @property
    def connected(self) -> bool:
        """Whether the service's MQTT connection is up (it reconnects by itself when not)."""
        return self._client.is_connected()

    @property
    def address(self) -> str:
        host, port = self._address
        return f"{host}:{port}"

    async def resubscribed(self, since: int) -> None:
        """Return once the request filters are granted again after ``since`` grants."""
        while self.subscriptions <= since:
            await self._grant.wait()

    def publish(self, messages: list[Message]) -> None:
        """Queue messages for delivery at QoS 1; paho sends them from its thread."""
        for message in messages:
            self._client.publish(message.topic, message.encoded(), qos=1)

    async def close(self) -> None:
        """Disconnect; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    # -- paho callbacks (network thread) ----------------------------------
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("The broker at %s refused the service connection: %s", self.address, reason)
            return
        if self._lost:
            self._lost = False
            log.info("The service is connected to the broker at %s again", self.address)
        client.subscribe([(topic_filter, 1) for topic_filter in REQUEST_FILTERS])

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if self._closed or self._lost:
            return
        # Devices' requests wait at the broker (or are lost, on a clean session) until it is back.
        self._lost = True
        log.warning(
            "The service lost its connection to the broker at %s (%s); reconnecting", self.address, reason
        )

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            log.error("The broker refused the service subscriptions: %s", reasons)
            return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._granted)

    def _granted(self) -> None:
        self.subscriptions += 1
        self._subscribed.set()
        self._grant.set()  # wakes those waiting for this grant; later ones wait on a new event
        self._grant = asyncio.Event()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            log.warning("Dropped a publish whose topic is not UTF-8")
            return
        if message.retain:
            # A retained request would be replayed on every resubscribe: never act on one.
            log.warning("Ignored a retained request on %s", topic)
            return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._deliver, topic, bytes(message.payload))
