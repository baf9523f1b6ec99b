"""The asyncio jobs client: one thing's side of the AWS IoT Jobs MQTT API.

It keeps one MQTT connection (the SDK's own MQTT 3.1.1 client, ``mqtt.py``) alive on its own: it
reconnects with jittered backoff, subscribes before it sends anything, and
after every (re)connect it asks for the pending list again so nothing queued
while the device was offline goes unnoticed. Requests are correlated with
replies by ``clientToken``; a request still unanswered when the connection
drops is sent again once the new connection is subscribed.

Request methods take their own ``timeout``: it bounds the wait for the reply
across reconnects and throttling retries, and ends in :class:`RequestTimedOut`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from iot_jobs_bridge import schemas
from iot_jobs_bridge.schemas.topics import Incoming, ThingTopics

from .connection import (
    Backoff,
    ConnectOptions,
    Endpoint,
    TlsOptions,
    endpoints,
    first_endpoint_for,
    refusal_hint,
)
from .errors import ClientClosed, InvalidResponse, RequestRejected, RequestTimedOut
from .models import (
    JobExecution,
    JobExecutionsChanged,
    JobExecutionState,
    NextJobExecutionChanged,
    PendingJobs,
    UpdateResult,
    execution_from_payload,
    rejection_from_payload,
)
from .mqtt import MqttConnection, MqttError, connect

__all__ = ["AsyncJobsClient"]

_log = logging.getLogger("iot_jobs_bridge.device_sdk.client")

T = TypeVar("T")
Listener = Callable[[T], None]
_Reply = tuple[Literal["accepted", "rejected"], dict[str, Any], str]

# json.dumps builds an encoder on every call that changes a default; this one is built once.
_to_json = json.JSONEncoder(separators=(",", ":")).encode

# How many classified topics a client remembers (its replies' topics name the job ids it runs).
_INCOMING_CACHE = 64

# What a request's future is settled with when its deadline passes without a reply.
_NO_REPLY: _Reply = ("rejected", {}, "")

# Throttled and internal-error replies are retried after a short random pause
# (what the AWS Device Client does), for as long as the request's deadline allows.
_RETRY_PAUSE = (0.2, 1.0)


@dataclass
class _Request:
    topic: str
    body: dict[str, Any]
    future: asyncio.Future[_Reply]
    deadline: float  # on the event loop's clock
    sent_on: int = 0  # the connection generation it was last published on (0: never)
    sends: int = 0


@dataclass
class _Listeners:
    next_changed: list[Listener[NextJobExecutionChanged]] = field(default_factory=list)
    jobs_changed: list[Listener[JobExecutionsChanged]] = field(default_factory=list)
    resync: list[Listener[PendingJobs]] = field(default_factory=list)
    connection: list[Listener[bool]] = field(default_factory=list)


class AsyncJobsClient:
    """A device's jobs client for asyncio.

    Use it as an async context manager; it connects in the background, so a
    device that starts offline can still make requests (they wait for the
    connection, up to their timeout)::

        async with AsyncJobsClient("my-thing", "mqtt://127.0.0.1:1883") as jobs:
            execution = await jobs.start_next()

    ``request_timeout`` (seconds) bounds each request unless the call passes its own.
    ``endpoint`` may name several brokers (the nodes of a cluster: a list, or URLs
    separated by commas): the device starts at one chosen by its name, so a fleet
    spreads over them, and moves to the next whenever its connection is lost or refused.
    """

    def __init__(
        self,
        thing_name: str,
        endpoint: str | Endpoint | Sequence[str | Endpoint],
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: TlsOptions | None = None,
        keepalive: int = 60,
        request_timeout: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        # Several endpoints (a cluster's nodes): start at one of them, move on when it is lost.
        self.endpoints = endpoints(endpoint)
        self._endpoint_index = first_endpoint_for(thing_name, len(self.endpoints))
        self.options = ConnectOptions(
            thing_name=thing_name,
            endpoint=self.endpoints[self._endpoint_index],
            client_id=client_id,
            username=username,
            password=password,
            tls=tls,
            keepalive=keepalive,
        )
        self.topics = ThingTopics(thing_name)
        self.request_timeout = request_timeout
        self._ssl_context = self.options.ssl_context()  # fail on bad TLS files now, not in the loop
        self._backoff = backoff or Backoff()
        self._pending: dict[str, _Request] = {}
        self._incoming: dict[str, Incoming] = {}  # topics classified already: a device sees few
        self._listeners = _Listeners()
        self._ready = asyncio.Event()
        self._generation = 0
        self._mqtt: MqttConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # One timer for the earliest deadline of the waiting requests, rather than one per request.
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at = 0.0
        self._closed = False
        self._offline_until = 0.0
        self._explained = False  # a refusal's hint was logged since the last connection

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> AsyncJobsClient:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def thing_name(self) -> str:
        return self.options.thing_name

    @property
    def connected(self) -> bool:
        """Whether the connection is up and subscribed (requests go out at once)."""
        return self._ready.is_set()

    def start(self) -> None:
        """Start connecting in the background (idempotent)."""
        if self._closed:
            raise ClientClosed(f"the jobs client of {self.thing_name} is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"jobs-client-{self.thing_name}"
            )

    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until the connection is up and subscribed; raises ``TimeoutError``."""
        async with asyncio.timeout(timeout):
            await self._ready.wait()

    async def close(self) -> None:
        """Disconnect and fail every waiting request with :class:`ClientClosed` (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._tasks):
            task.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        for request in self._pending.values():
            if not request.future.done():
                request.future.set_exception(ClientClosed(f"the jobs client of {self.thing_name} closed"))

    async def drop_connection(self, offline_for: float = 0.0) -> None:
        """Cut the connection abruptly, as a network failure would, and stay offline a while.

        The broker sees the socket close without a DISCONNECT. Meant for tests and
        the fleet simulator; the client reconnects by itself afterwards.
        """
        self._offline_until = time.monotonic() + offline_for
        if self._mqtt is not None:
            self._mqtt.abort()

    # -- listeners -----------------------------------------------------------

    def on_next_changed(self, listener: Listener[NextJobExecutionChanged]) -> Callable[[], None]:
        """Call ``listener`` with every ``notify-next``; returns a function that removes it."""
        return self._add(self._listeners.next_changed, listener)

    def on_jobs_changed(self, listener: Listener[JobExecutionsChanged]) -> Callable[[], None]:
        """Call ``listener`` with every ``notify`` (the whole pending set after a change)."""
        return self._add(self._listeners.jobs_changed, listener)

    def on_resync(self, listener: Listener[PendingJobs]) -> Callable[[], None]:
        """Call ``listener`` with the pending list fetched after every (re)connect."""
        return self._add(self._listeners.resync, listener)

    def on_connection_change(self, listener: Listener[bool]) -> Callable[[], None]:
        """Call ``listener(True)`` when the connection is ready and ``listener(False)`` when lost."""
        return self._add(self._listeners.connection, listener)

    @staticmethod
    def _add(listeners: list[Listener[T]], listener: Listener[T]) -> Callable[[], None]:
        listeners.append(listener)
        return lambda: listeners.remove(listener) if listener in listeners else None

    def _emit(self, listeners: list[Listener[T]], event: T) -> None:
        for listener in list(listeners):
            try:
                listener(event)
            except Exception:
                _log.exception("%s: a jobs listener failed on %r", self.thing_name, event)

    # -- the four requests ---------------------------------------------------

    async def get_pending(self, *, timeout: float | None = None) -> PendingJobs:  # noqa: ASYNC109
        """GetPendingJobExecutions: the IN_PROGRESS and QUEUED executions of this thing."""
        payload = await self._call(self.topics.get_pending, "GetPendingJobExecutionsRequest", {}, timeout)
        return PendingJobs.from_payload(payload)

    async def start_next(
        self,
        *,
        status_details: dict[str, str] | None = None,
        step_timeout_minutes: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> JobExecution | None:
        """StartNextPendingJobExecution: the head of the pending list, started; ``None`` if none."""
        body: dict[str, Any] = {}
        if status_details is not None:
            body["statusDetails"] = status_details
        if step_timeout_minutes is not None:
            body["stepTimeoutInMinutes"] = step_timeout_minutes
        topic = self.topics.start_next
        payload = await self._call(topic, "StartNextPendingJobExecutionRequest", body, timeout)
        return execution_from_payload("ExecutionResponse", payload)

    async def describe(
        self,
        job_id: str = "$next",
        *,
        execution_number: int | None = None,
        include_document: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> JobExecution | None:
        """DescribeJobExecution; ``$next`` (the default) is the head, ``None`` when nothing is pending."""
        body: dict[str, Any] = {"includeJobDocument": include_document}
        if execution_number is not None:
            body["executionNumber"] = execution_number
        payload = await self._call(self.topics.describe(job_id), "DescribeJobExecutionRequest", body, timeout)
        return execution_from_payload("ExecutionResponse", payload)

    async def update(
        self,
        job_id: str,
        status: str,
        *,
        status_details: dict[str, str] | None = None,
        expected_version: int | None = None,
        execution_number: int | None = None,
        step_timeout_minutes: int | None = None,
        include_state: bool = True,
        include_document: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> UpdateResult:
        """UpdateJobExecution.

        When the service rejects an update that an earlier copy of the same
        request already applied (its reply was lost to a reconnect), the rejection's
        ``executionState`` shows the requested status and details, and this returns
        that state with ``reconciled=True`` instead of raising.
        """
        body: dict[str, Any] = {"status": status, "includeJobExecutionState": include_state}
        if status_details is not None:
            body["statusDetails"] = status_details
        if expected_version is not None:
            body["expectedVersion"] = expected_version
        if execution_number is not None:
            body["executionNumber"] = execution_number
        if step_timeout_minutes is not None:
            body["stepTimeoutInMinutes"] = step_timeout_minutes
        if include_document:
            body["includeJobDocument"] = True
        topic = self.topics.update(job_id)
        try:
            payload = await self._call(topic, "UpdateJobExecutionRequest", body, timeout)
        except RequestRejected as exc:
            state = exc.execution_state
            if state is not None and _already_applied(body, state):
                _log.info("%s: %s already %s (an earlier copy applied it)", self.thing_name, job_id, status)
                return UpdateResult(timestamp=int(time.time()), execution_state=state, reconciled=True)
            raise
        return UpdateResult.from_payload(payload)

    # -- request plumbing ----------------------------------------------------

    async def _call(
        self,
        topic: str,
        definition: str,
        body: dict[str, Any],
        timeout: float | None,  # noqa: ASYNC109
    ) -> Any:
        """Send one request and return the accepted payload; raise on rejection or timeout."""
        if self._closed:
            raise ClientClosed(f"the jobs client of {self.thing_name} is closed")
        try:
            schemas.check("device_requests", definition, body)
        except schemas.SchemaError as exc:
            raise ValueError(f"{definition}: {exc}") from exc
        limit = self.request_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        token = secrets.token_hex(16)
        request = _Request(topic, {**body, "clientToken": token}, loop.create_future(), deadline)
        self._pending[token] = request
        try:
            while True:
                self._send_soon(request)
                kind, payload, reply_topic = await self._wait(request, deadline, limit)
                if kind == "accepted":
                    return payload
                code, message, state = rejection_from_payload(payload)
                error = RequestRejected(code, message, state, reply_topic)
                if not error.retryable or loop.time() >= deadline:
                    raise error
                _log.debug("%s: %s on %s, retrying", self.thing_name, code, topic)
                await asyncio.sleep(min(random.uniform(*_RETRY_PAUSE), max(0.0, deadline - loop.time())))
                request.future = loop.create_future()
                request.sent_on = 0
        finally:
            self._pending.pop(token, None)

    async def _wait(self, request: _Request, deadline: float, limit: float) -> _Reply:
        # The reply settles the future, or _expire does at the deadline: no asyncio.timeout
        # and shield, and no timer of its own, for a wait that happens several times per job
        # on every device of a fleet.
        if self._expiry is None or deadline < self._expiry_at:
            self._arm_expiry(deadline)
        reply = await request.future
        if reply is _NO_REPLY:
            raise RequestTimedOut(f"no reply from the jobs service to {request.topic} within {limit:g}s")
        return reply

    def _arm_expiry(self, when: float) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry_at = when
        self._expiry = asyncio.get_running_loop().call_at(when, self._expire)

    def _expire(self) -> None:
        """Settle every waiting request whose deadline has passed; wait for the next deadline."""
        self._expiry = None
        now = asyncio.get_running_loop().time()
        following = None
        for request in self._pending.values():
            if request.future.done():
                continue
            if request.deadline <= now:
                request.future.set_result(_NO_REPLY)
            elif following is None or request.deadline < following:
                following = request.deadline
        if following is not None:
            self._arm_expiry(following)

    def _send_soon(self, request: _Request) -> None:
        """Publish ``request`` on the current connection unless it already went out on it."""
        mqtt = self._mqtt
        if mqtt is None or not self._ready.is_set() or request.sent_on == self._generation:
            return
        request.sent_on = self._generation
        request.sends += 1
        try:
            # QoS 1 without waiting for the PUBACK: the reply is what the request waits for.
            mqtt.publish(request.topic, _to_json(request.body).encode(), 1)
        except MqttError as exc:
            # The connection went; the request is sent again once the next one is subscribed.
            _log.debug("%s: publish to %s failed: %s", self.thing_name, request.topic, exc)

    # -- the connection ------------------------------------------------------

    async def _run(self) -> None:
        while not self._closed:
            wait = self._offline_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            delay: float | None = None
            try:
                await self._connect_once()
            except MqttError as exc:
                delay = self._report_failure(exc)
            if delay is None:
                delay = self._backoff.next_delay()
                _log.info("%s: reconnecting in %.1fs", self.thing_name, delay)
            self._move_to_next_endpoint()
            await asyncio.sleep(delay)

    def _move_to_next_endpoint(self) -> None:
        if len(self.endpoints) > 1:
            self._endpoint_index = (self._endpoint_index + 1) % len(self.endpoints)
            self.options = dataclasses.replace(self.options, endpoint=self.endpoints[self._endpoint_index])
            self._ssl_context = self.options.ssl_context()

    def _report_failure(self, exc: MqttError) -> float | None:
        """Log why the connection failed; returns the delay when it said it already."""
        hint = refusal_hint(self.options, exc.code) if exc.code is not None else None
        if hint is None:
            endpoint = self.options.endpoint
            _log.warning("%s: connection to %s lost or refused: %s", self.thing_name, endpoint, exc)
            return None
        if not self._explained:
            # Once: the long explanation. The device keeps trying, the thing may be registered later.
            self._explained = True
            _log.warning("%s", hint)
            return None
        delay = self._backoff.next_delay()
        _log.info("%s: still refused (%s); trying again in %.1fs", self.thing_name, exc, delay)
        return delay

    async def _connect_once(self) -> None:
        options = self.options
        mqtt = await connect(
            options.endpoint.host,
            options.endpoint.port,
            client_id=options.client_id or options.thing_name,
            on_message=self._dispatch,
            username=options.username,
            password=options.password,
            ssl_context=self._ssl_context,
            keepalive=options.keepalive,
            timeout=max(5.0, self.request_timeout),
        )
        try:
            granted = await mqtt.subscribe([(f, 1) for f in self.topics.subscriptions])
            refused = [f for f, code in zip(self.topics.subscriptions, granted, strict=True) if code >= 0x80]
            if refused:
                raise MqttError(f"the broker refused the subscriptions {refused}")
            self._generation += 1
            self._mqtt = mqtt
            self._ready.set()
            self._backoff.reset()
            self._explained = False
            _log.info("%s: connected to %s", self.thing_name, options.endpoint)
            try:
                for request in list(self._pending.values()):
                    if not request.future.done():
                        self._send_soon(request)
                self._emit(self._listeners.connection, True)
                self._spawn(self._resync())
                await mqtt.wait_closed()
            finally:
                self._ready.clear()
                self._mqtt = None
                self._emit(self._listeners.connection, False)
        finally:
            await mqtt.disconnect()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resync(self) -> None:
        """Fetch the pending list after a (re)connect so nothing queued meanwhile is missed."""
        try:
            pending = await self.get_pending()
        except (RequestTimedOut, RequestRejected, InvalidResponse) as exc:
            _log.warning("%s: could not fetch pending jobs after connecting: %s", self.thing_name, exc)
            return
        except ClientClosed:
            return
        self._emit(self._listeners.resync, pending)

    def _dispatch(self, topic: str, raw: bytes) -> None:
        incoming = self._incoming.get(topic)
        if incoming is None:
            incoming = self.topics.classify(topic)
            if incoming is None:
                return
            if len(self._incoming) >= _INCOMING_CACHE:
                self._incoming.clear()
            self._incoming[topic] = incoming
        kind = incoming.kind
        if kind == "notify" and not self._listeners.jobs_changed:
            return  # nobody listens: a notify is the longest message, not worth reading for no one
        try:
            payload = json.loads(raw)
        except ValueError:
            _log.warning("%s: ignoring a payload on %s that is not JSON", self.thing_name, topic)
            return
        if not isinstance(payload, dict):
            _log.warning("%s: ignoring a payload on %s that is not a JSON object", self.thing_name, topic)
            return
        try:
            if kind == "notify":
                self._emit(self._listeners.jobs_changed, JobExecutionsChanged.from_payload(payload))
            elif kind == "notify-next":
                self._emit(self._listeners.next_changed, NextJobExecutionChanged.from_payload(payload))
            else:
                self._resolve(kind, incoming.request_topic, payload, topic)
        except InvalidResponse as exc:
            _log.warning("%s: ignoring a malformed message on %s: %s", self.thing_name, topic, exc)

    def _resolve(
        self, kind: Literal["accepted", "rejected"], request_topic: str, payload: dict[str, Any], topic: str
    ) -> None:
        token = payload.get("clientToken")
        request = self._pending.get(token) if isinstance(token, str) else None
        if request is None and token is None and kind == "rejected":
            # InvalidJson replies cannot echo a token; match by topic when that is unambiguous.
            waiting = [r for r in self._pending.values() if r.topic == request_topic and not r.future.done()]
            request = waiting[0] if len(waiting) == 1 else None
        if request is None or request.topic != request_topic or request.future.done():
            return  # a reply to someone else, to an abandoned request, or a duplicate
        request.future.set_result((kind, payload, topic))


def _already_applied(body: dict[str, Any], state: JobExecutionState) -> bool:
    """Whether a rejected update's current state is exactly what that update asked for.

    With ``expectedVersion`` the earlier copy must have been the very next version;
    without it, only a terminal status can be rejected for being repeated.
    """
    if state.status != body["status"]:
        return False
    if "statusDetails" in body and state.status_details != body["statusDetails"]:
        return False
    expected = body.get("expectedVersion")
    if expected is not None:
        return state.version_number == int(expected) + 1
    return True
