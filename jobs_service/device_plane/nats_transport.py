"""The transport for a NATS cluster: requests from a durable work queue, replies to the devices' MQTT topics.

Devices publish their requests over MQTT to any node; NATS carries
``$aws/things/T/jobs/get`` as the subject ``$aws.things.T.jobs.get``. A JetStream
work-queue stream (replicated on up to three nodes) keeps every request until a
worker acknowledges it, and files it under one of :data:`PARTITIONS` partitions
by thing name. Each partition has one durable consumer that hands out one
request at a time (``max_ack_pending`` 1), whichever worker asks: so one thing's
requests are answered in order, by any worker, and a worker acknowledges a
request only after its answer is committed and its replies are sent. A worker
that dies holding a request leaves it to another after :data:`ACK_WAIT`; the
store's request marks (:mod:`..store.requests`) make sure a request whose
commit landed is not answered twice.

Replies and notifications go to the devices' topics at QoS 1. NATS delivers a
plain NATS publish to MQTT subscribers at QoS 0 only; a message the server takes
as an MQTT QoS 1 publish (the ``Nmqtt-Pub`` header) reaches QoS 0 subscriptions
on its subject and QoS 1 subscriptions through the server's MQTT message stream
(``$MQTT.msgs.<subject>``), so each message is sent to both, and every
subscriber gets it once, at the QoS it asked for (decisions.md D76).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    SubjectTransform,
)

from .render import Message

__all__ = [
    "ACK_WAIT",
    "PARTITIONS",
    "REQUEST_SUBJECTS",
    "STREAM",
    "NatsTransport",
    "subject_for",
    "topic_for",
]

log = logging.getLogger(__name__)

STREAM = "iotjobs-requests"
#: Partitions of the request queue: how many requests the whole cluster answers at once, at most.
PARTITIONS = 32
#: Seconds before a request a worker took, and did not acknowledge, goes to another worker.
ACK_WAIT = 5.0
#: The device requests (spec §5): NOT ``jobs.>``, which holds the replies too.
REQUEST_SUBJECTS = (
    "$aws.things.*.jobs.get",
    "$aws.things.*.jobs.start-next",
    "$aws.things.*.jobs.*.get",
    "$aws.things.*.jobs.*.update",
)
# Requests older than this are dropped unanswered: their devices have long retried.
_MAX_AGE = 15 * 60.0
_MAX_REQUEST_BYTES = 256 * 1024
_PARTITIONED = "iotjobs.requests"
_MQTT_QOS1 = {"Nmqtt-Pub": "1"}
_MQTT_MESSAGES = "$MQTT.msgs."
# How long one fetch waits for a request before asking again.
_FETCH_WAIT = 5.0
_READY_WITHIN = 30.0
_RETRY_FETCH = 0.5
_NO_PEERS = 10005  # JetStream: no suitable peers for placement

Deliver = Callable[[str, bytes, Callable[[], None], Callable[[], bool]], None]


def subject_for(topic: str) -> str:
    """The NATS subject of an MQTT topic of the jobs API (whose levels hold no ``.``)."""
    return topic.replace("/", ".")


def topic_for(subject: str) -> str:
    return subject.replace(".", "/")


class NatsTransport:
    """A worker's connection to the cluster; see the module's text."""

    def __init__(
        self,
        urls: list[str],
        *,
        user: str,
        password: str,
        deliver: Deliver,
        claim: Callable[[int, int], bool],
        replicas: int | None = None,
        partitions: int = PARTITIONS,
        ack_wait: float = ACK_WAIT,
        on_connect: Callable[[NatsClient], Awaitable[None]] | None = None,
    ) -> None:
        self._urls = urls
        self._credentials = (user, password)
        self._deliver = deliver
        self._claim = claim
        self._replicas = replicas if replicas is not None else min(3, len(urls))
        self._partitions = partitions
        self._ack_wait = ack_wait
        self._on_connect = on_connect
        self._client: NatsClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._outbox_ready = asyncio.Event()
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    @property
    def address(self) -> str:
        return ",".join(self._urls)

    async def start(self) -> None:
        user, password = self._credentials
        self._client = await nats.connect(
            servers=self._urls,
            user=user,
            password=password,
            name="iotjobs-worker",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            disconnected_cb=self._disconnected,
            reconnected_cb=self._reconnected,
        )
        if self._on_connect is not None:
            await self._on_connect(self._client)
        await self._ensure_queue()
        self._tasks.append(asyncio.create_task(self._send_replies(), name="nats-replies"))
        for partition in range(self._partitions):
            self._tasks.append(
                asyncio.create_task(self._consume(partition), name=f"nats-partition-{partition}")
            )

    def publish(self, messages: list[Message]) -> None:
        for message in messages:
            self._outbox.append((subject_for(message.topic), message.encoded()))
        self._outbox_ready.set()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._closing = True
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.flush(timeout=2)  # the replies already handed over
            with contextlib.suppress(Exception):
                await self._client.close()  # not drain(): it waits out the open fetches
            self._client = None

    async def _disconnected(self) -> None:
        if not self._closing:
            log.warning("lost the connection to the NATS cluster; reconnecting")

    async def _reconnected(self) -> None:
        assert self._client is not None
        log.info("reconnected to the NATS cluster at %s", self._client.connected_url)

    async def _ensure_queue(self) -> None:
        """Make the request stream and its consumers (as they are, if another worker made them)."""
        assert self._client is not None
        js = self._client.jetstream()
        partition = f"{{{{partition({self._partitions},1)}}}}"
        stream = StreamConfig(
            name=STREAM,
            subjects=list(REQUEST_SUBJECTS),
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            num_replicas=self._replicas,
            max_age=_MAX_AGE,
            max_msg_size=_MAX_REQUEST_BYTES,
            # Files each request under its thing's partition: iotjobs.requests.<n>.$aws.things.<thing>...
            subject_transform=SubjectTransform(
                src="$aws.things.*.>", dest=f"{_PARTITIONED}.{partition}.$aws.things.{{{{wildcard(1)}}}}.>"
            ),
        )
        deadline = asyncio.get_running_loop().time() + _READY_WITHIN
        while True:
            try:
                await js.add_stream(stream)
                for number in range(self._partitions):
                    await js.add_consumer(
                        STREAM,
                        ConsumerConfig(
                            durable_name=f"partition-{number}",
                            filter_subject=f"{_PARTITIONED}.{number}.>",
                            ack_policy=AckPolicy.EXPLICIT,
                            ack_wait=self._ack_wait,
                            max_ack_pending=1,  # one thing's requests in order, across all workers
                            max_deliver=-1,
                        ),
                    )
                return
            except (
                nats.js.errors.ServiceUnavailableError,
                nats.js.errors.BadRequestError,
                nats.errors.TimeoutError,
                nats.errors.NoRespondersError,
            ) as exc:
                # The cluster is still electing its JetStream leaders, or a node has not joined
                # yet ("no suitable peers for placement"): both pass within seconds.
                retry = not isinstance(exc, nats.js.errors.BadRequestError) or exc.err_code == _NO_PEERS
                if not retry or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.25)

    async def _consume(self, partition: int) -> None:
        assert self._client is not None
        js = self._client.jetstream()
        subscription = await js.pull_subscribe_bind(f"partition-{partition}", stream=STREAM)
        prefix_tokens = 3  # iotjobs.requests.<n>.
        while True:
            try:
                messages = await subscription.fetch(1, timeout=_FETCH_WAIT)
            except nats.errors.TimeoutError:
                continue
            except Exception as exc:
                # A node going away, a stream leader moving, a reconnect: ask again shortly.
                log.debug("partition %d: fetch failed (%s); asking again", partition, exc)
                await asyncio.sleep(_RETRY_FETCH)
                continue
            for message in messages:
                subject = message.subject.split(".", prefix_tokens)[-1]
                sequence = message.metadata.sequence.stream
                settled = asyncio.Event()
                self._deliver(
                    topic_for(subject),
                    message.data,
                    settled.set,
                    lambda sequence=sequence: self._claim(partition, sequence),  # type: ignore[misc]
                )
                await settled.wait()
                try:
                    await message.ack()
                except nats.errors.Error:
                    # Not acknowledged: it comes back after ACK_WAIT, and its mark settles it then.
                    log.warning("could not acknowledge a request in partition %d", partition)

    async def _send_replies(self) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            client = self._client
            assert client is not None
            while self._outbox:
                subject, data = self._outbox.popleft()
                # QoS 0 subscribers get the first, QoS 1 subscribers the second (see the module's text).
                await client.publish(subject, data, headers=_MQTT_QOS1)
                await client.publish(_MQTT_MESSAGES + subject, data, headers=_MQTT_QOS1)
