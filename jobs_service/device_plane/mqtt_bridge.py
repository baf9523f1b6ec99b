"""The service's own MQTT client: device requests in, replies and notifications out.

It is an ordinary client with full rights, so the same service runs against
the embedded broker or any other. It speaks through the project's small
asyncio MQTT client (`device_sdk.mqtt`) on the service's event loop: no
thread, and requests go straight to ``deliver`` (the request pump, which
answers them there, so the engine never runs two changes at once).

Replies leave at QoS 1 and are kept until the broker acknowledges them; a
connection that drops takes none with it: what was not acknowledged is sent
again, in order, on the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import ssl
from collections.abc import Callable

from iot_jobs_bridge.device_sdk.mqtt import MqttConnection, MqttError, connect
from iot_jobs_bridge.schemas.topics import JOBS_REQUEST_FILTER, REQUEST_SHAPE_FILTERS

from .render import Message

__all__ = ["EMBEDDED_REQUEST_FILTERS", "REQUEST_FILTERS", "MqttBridge"]

log = logging.getLogger(__name__)

# On another broker, the request shapes only: with ``jobs/#`` it sends the service
# back every reply and notification it publishes, which doubles what the service
# reads, and Mosquitto drops what queues past its limit, requests among them. Topics
# of no request shape get no InvalidTopic reply there; device rules refuse them (D71).
# The embedded broker sends the service no replies: there it takes the whole tree.
REQUEST_FILTERS = REQUEST_SHAPE_FILTERS
EMBEDDED_REQUEST_FILTERS = (JOBS_REQUEST_FILTER,)
SERVICE_CLIENT_ID = "iotjobs-service"
# Requests and replies are bounded by the broker's packet limit; this only keeps a hostile broker in check.
_MAX_PACKET = 16 * 1024 * 1024


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
        filters: tuple[str, ...] = REQUEST_FILTERS,
    ) -> None:
        self._address = (host, port)
        self._deliver = deliver
        self._filters = filters
        self._client_id = client_id
        self._credentials = (username, password)
        self._tls = tls
        # A persistent session lets the broker queue requests while the service
        # reconnects (after a managed Mosquitto restarts, devices may be back first).
        self._persistent = persistent
        self._delays = reconnect_delays
        self._connection: MqttConnection | None = None
        self._sending = False  # subscribed, and what the last connection left is sent again
        # Messages the broker has not acknowledged yet, in the order they were published.
        self._unacked: dict[int, tuple[str, bytes]] = {}
        self._numbers = itertools.count()
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._lost = False  # the connection dropped since it was last up
        self.subscriptions = 0  # times the request filters were granted: once per (re)connection
        self._grant = asyncio.Event()

    async def start(self, connect_within: float = 10.0) -> None:
        """Connect, subscribe to the request topics, and start answering."""
        self._task = asyncio.create_task(self._run(), name="service-mqtt")
        try:
            await asyncio.wait_for(asyncio.shield(self._subscribed.wait()), connect_within)
        except TimeoutError as exc:
            await self.close()
            host, port = self._address
            raise ConnectionError(f"could not subscribe to the broker at {host}:{port}") from exc

    @property
    def connected(self) -> bool:
        """Whether the service's MQTT connection is up (it reconnects by itself when not)."""
        return self._connection is not None and self._connection.is_open

    @property
    def address(self) -> str:
        host, port = self._address
        return f"{host}:{port}"

    async def resubscribed(self, since: int) -> None:
        """Return once the request filters are granted again after ``since`` grants."""
        while self.subscriptions <= since:
            await self._grant.wait()

    def publish(self, messages: list[Message]) -> None:
        """Send messages at QoS 1, now if connected, else once the connection is back."""
        for message in messages:
            number = next(self._numbers)
            self._unacked[number] = (message.topic, message.encoded())
            if self._sending:
                self._send(number)

    async def close(self) -> None:
        """Disconnect; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        connection = self._connection
        if connection is not None:
            await connection.disconnect()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # -- the connection ----------------------------------------------------
    def _send(self, number: int) -> None:
        assert self._connection is not None
        topic, payload = self._unacked[number]
        try:
            sent = self._connection.publish_tracked(topic, payload)
        except MqttError:
            return  # the connection is going; the next one sends it
        sent.add_done_callback(lambda done: self._acknowledged(number, done))

    def _acknowledged(self, number: int, done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is None:
            self._unacked.pop(number, None)

    async def _run(self) -> None:
        low, high = self._delays
        delay = low
        while not self._closed:
            try:
                await self._serve_one_connection()
                delay = low
            except MqttError as exc:
                if self._closed:
                    return
                if exc.code is not None:
                    log.error("The broker at %s refused the service connection: %s", self.address, exc)
                elif not self._lost and self.subscriptions:
                    self._lost = True
                    log.warning(
                        "The service lost its connection to the broker at %s (%s); reconnecting",
                        self.address,
                        exc,
                    )
            await asyncio.sleep(delay * random.uniform(0.8, 1.0))
            delay = min(delay * 2, high)

    async def _serve_one_connection(self) -> None:
        host, port = self._address
        username, password = self._credentials
        connection = await connect(
            host,
            port,
            client_id=self._client_id,
            on_message=self._on_message,
            on_retained=self._on_retained,
            username=username,
            password=password,
            ssl_context=self._tls,
            keepalive=60,
            clean_session=not self._persistent,
            max_packet_size=_MAX_PACKET,
        )
        self._connection = connection
        try:
            codes = await connection.subscribe([(topic_filter, 1) for topic_filter in self._filters])
            if any(code >= 0x80 for code in codes):
                log.error("The broker refused the service subscriptions: %s", codes)
                connection.abort()
                raise MqttError("the broker refused the service subscriptions")
            if self._lost:
                self._lost = False
                log.info("The service is connected to the broker at %s again", self.address)
            for number in list(self._unacked):  # what the last connection left unacknowledged
                self._send(number)
            self._sending = True
            self._granted()
            await connection.wait_closed()
        finally:
            self._sending = False
            self._connection = None
            with contextlib.suppress(MqttError):
                connection.abort()

    def _granted(self) -> None:
        self.subscriptions += 1
        self._subscribed.set()
        self._grant.set()  # wakes those waiting for this grant; later ones wait on a new event
        self._grant = asyncio.Event()

    def _on_message(self, topic: str, payload: bytes) -> None:
        self._deliver(topic, payload)

    def _on_retained(self, topic: str, _payload: bytes) -> None:
        # A retained request would be replayed on every resubscribe: never act on one.
        log.warning("Ignored a retained request on %s", topic)
