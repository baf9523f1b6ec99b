"""Shared helpers: ARNs, raw paho devices, SDK V2 devices, an event watcher and a server starter."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from awsiot import V2ServiceException, iotjobs
from botocore.exceptions import ClientError

from ..brokers import BrokerServer, start_on_broker
from ..clients import Inbox, paho_client, subscribe, v2_jobs_client
from ..conftest import ACCESS_KEY_ID, SECRET

PREFIX = "arn:aws:iot:us-east-1:123456789012"
NOTIFY = "notify"
NOTIFY_NEXT = "notify-next"
# The only rejection codes that carry executionState (spec §2.4).
WITH_STATE = ("InvalidStateTransition", "VersionMismatch")

Message = tuple[str, bytes]


def broker_of(server) -> str:
    """The broker ``server`` runs on (servers not started by ``brokers.start_on_broker`` are embedded)."""
    return getattr(server, "broker", "embedded")


def sdk_metrics_off(server) -> bool:
    """Whether an SDK device must leave out its metrics username to connect to ``server``'s broker.

    Mosquitto checks any username against its password file, so the metrics the SDK
    sends as its username would get it refused; the embedded broker ignores them.
    """
    return broker_of(server) != "embedded"


# The request topics a device may publish under Mosquitto's ACLs (the managed one and the
# recipe's): ``get``, ``start-next``, ``+/get`` and ``+/update`` under its jobs prefix.
_MOSQUITTO_REQUEST_PATH = re.compile(r"get|start-next|[^/]*/get|[^/]*/update", re.DOTALL)


def acl_drops(server, path: str) -> bool:
    """Whether the broker silently drops a device's publish to ``<its jobs prefix>/<path>``.

    The embedded broker passes any path of a device's own tree that is not reply-shaped
    to the service, which answers an unknown one with InvalidTopic; Mosquitto's ACLs let a
    device publish its four request topics only, and drop anything else without a word.
    """
    return broker_of(server) != "embedded" and _MOSQUITTO_REQUEST_PATH.fullmatch(path) is None


def echoes_requests(server) -> bool:
    """Whether a device subscribed to its ``jobs/#`` receives its own requests back.

    Mosquitto delivers a client's publishes to its own matching subscriptions (MQTT 3.1.1
    has no no-local option); the embedded broker delivers only reply-shaped topics to a device.
    """
    return broker_of(server) != "embedded"


def is_reply_topic(prefix: str, topic: str) -> bool:
    """Whether ``topic`` is reply-shaped under the jobs ``prefix``: a reply or a notification."""
    if not topic.startswith(prefix + "/"):
        return False
    path = topic[len(prefix) + 1 :]
    return path in (NOTIFY, NOTIFY_NEXT) or path.endswith(("/accepted", "/rejected"))


def thing_arn(name: str) -> str:
    return f"{PREFIX}:thing/{name}"


def group_arn(name: str) -> str:
    return f"{PREFIX}:thinggroup/{name}"


def jobs_prefix(thing: str) -> str:
    return f"$aws/things/{thing}/jobs"


def create_job(iot, job_id: str, things: list[str], document: str = '{"op": "run"}', **extra: Any) -> str:
    """A snapshot job (unless ``extra`` says otherwise) targeting ``things``; returns its id."""
    iot.create_job(jobId=job_id, document=document, targets=[thing_arn(t) for t in things], **extra)
    return job_id


def client_token(payload: bytes) -> Any:
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    return body.get("clientToken") if isinstance(body, dict) else None


def is_int(value: Any) -> bool:
    return type(value) is int


@dataclass(frozen=True)
class Reply:
    """One reply to a device request, decoded."""

    topic: str
    body: dict[str, Any]

    @property
    def outcome(self) -> str:
        return self.topic.rsplit("/", 1)[1]

    @property
    def code(self) -> str | None:
        return self.body.get("code")


def check_reply(reply: Reply) -> None:
    """What every reply must hold: an integer timestamp, executionState only where allowed."""
    assert is_int(reply.body.get("timestamp")), reply
    if reply.outcome == "rejected":
        assert isinstance(reply.body.get("code"), str) and isinstance(reply.body.get("message"), str), reply
        assert ("executionState" in reply.body) == (reply.code in WITH_STATE), reply


class RawDevice:
    """A paho device subscribed to its whole jobs tree; every message it receives stays in ``inbox``.

    Positions in ``inbox.items`` (``mark()``) let a test ask what arrived after a
    point, and a later reply (``marker()``) proves that anything published
    before it has been delivered.
    """

    def __init__(self, client, thing: str, echoes: bool = False) -> None:
        self.client = client
        self.thing = thing
        self.prefix = jobs_prefix(thing)
        self.inbox: Inbox = client.inbox
        self.echoes = echoes  # the broker delivers the device's own requests back to it
        self._tokens = itertools.count(1)

    def not_echo(self, message: Message) -> bool:
        """False for a copy of one of its own requests, on a broker that delivers them back."""
        topic = message[0]
        return not (
            self.echoes and topic.startswith(self.prefix + "/") and not is_reply_topic(self.prefix, topic)
        )

    def topic(self, path: str) -> str:
        return f"{self.prefix}/{path}"

    def token(self) -> str:
        return f"{self.thing}-{next(self._tokens)}"

    def publish(self, topic: str, payload: bytes | str) -> None:
        """Publish to a full topic at QoS 1 and wait until the broker has it."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)

    def mark(self) -> int:
        return len(self.inbox.items)

    def settle(self) -> int:
        """A mark taken after a round trip, so nothing caused earlier arrives after it."""
        self.marker()
        return self.mark()

    def since(self, mark: int, match: Callable[[Message], bool] = lambda _m: True) -> list[Message]:
        return [item for item in self.inbox.items[mark:] if match(item)]

    def wait_since(
        self, mark: int, match: Callable[[Message], bool], count: int = 1, timeout: float = 10.0
    ) -> list[Message]:
        """The first ``count`` messages after ``mark`` that match; fails after ``timeout``."""
        self.inbox.wait_for(lambda _item: len(self.since(mark, match)) >= count, timeout)
        return self.since(mark, match)[:count]

    def request(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        raw: bytes | str | None = None,
        token: bool | str = True,
        timeout: float = 10.0,
    ) -> Reply:
        """Publish a request to ``<prefix>/<path>`` and return its one reply.

        With ``raw`` the payload is sent as is; otherwise ``body`` as JSON, with
        a fresh ``clientToken`` unless ``token`` is False (or the token to use).
        Replies without a token are matched by position: the next reply on the
        path's ``/accepted`` or ``/rejected`` topic.
        """
        topic = self.topic(path)
        sent_token: str | None = None
        if raw is not None:
            payload: bytes | str = raw
        else:
            data = dict(body or {})
            if token is not False:
                sent_token = self.token() if token is True else token
                data["clientToken"] = sent_token
            payload = json.dumps(data)
        replies = (f"{topic}/accepted", f"{topic}/rejected")
        mark = self.mark()
        self.publish(topic, payload)

        def answers(message: Message) -> bool:
            if message[0] not in replies:
                return False
            return sent_token is None or client_token(message[1]) == sent_token

        (reply_topic, reply_payload), *_ = self.wait_since(mark, answers, timeout=timeout)
        reply = Reply(reply_topic, json.loads(reply_payload))
        check_reply(reply)
        if sent_token is not None:
            assert reply.body["clientToken"] == sent_token, reply
        return reply

    def accepted(self, path: str, body: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
        reply = self.request(path, body, **options)
        assert reply.outcome == "accepted", reply
        return reply.body

    def rejected(self, path: str, body: dict[str, Any] | None = None, **options: Any) -> Reply:
        reply = self.request(path, body, **options)
        assert reply.outcome == "rejected", reply
        return reply

    def marker(self) -> dict[str, Any]:
        """A get-pending round trip: everything the service published before it has arrived."""
        return self.accepted("get")

    def dropped(self, path: str, payload: bytes | str) -> None:
        """Publish to ``<prefix>/<path>`` and check that the broker dropped it: after a later
        round trip, that round trip's reply is all that arrived."""
        mark = self.settle()
        self.publish(self.topic(path), payload)
        self.marker()
        assert [topic for topic, _ in self.since(mark, self.not_echo)] == [self.topic("get/accepted")]

    def pending(self) -> tuple[list[str], list[str]]:
        """(IN_PROGRESS job ids, QUEUED job ids) from get-pending."""
        body = self.marker()
        return [s["jobId"] for s in body["inProgressJobs"]], [s["jobId"] for s in body["queuedJobs"]]

    def notifications(self, mark: int, which: str) -> list[dict[str, Any]]:
        """Decoded ``notify`` or ``notify-next`` payloads received after ``mark``."""
        topic = self.topic(which)
        return [json.loads(payload) for _t, payload in self.since(mark, lambda m: m[0] == topic)]

    def wait_notification(self, mark: int, which: str, count: int = 1) -> list[dict[str, Any]]:
        topic = self.topic(which)
        self.wait_since(mark, lambda m: m[0] == topic, count)
        return self.notifications(mark, which)


@contextmanager
def raw_device(server, thing: str) -> Iterator[RawDevice]:
    """A paho device with client id ``thing`` (already registered), subscribed to ``jobs/#``."""
    with paho_client(server.mqtt_host, server.mqtt_port, thing) as client:
        granted = subscribe(client, f"{jobs_prefix(thing)}/#")
        assert not granted[0].is_failure, granted
        yield RawDevice(client, thing, echoes_requests(server))


@contextmanager
def admin_client(server, client_id: str) -> Iterator[Any]:
    """A paho client holding the admin key: it may subscribe to anything, ``$aws/events/#`` included."""
    with paho_client(
        server.mqtt_host, server.mqtt_port, client_id, username=ACCESS_KEY_ID, password=SECRET
    ) as client:
        yield client


def notify_jobs(payload: dict[str, Any]) -> dict[str, list[str]]:
    """A ``notify`` payload reduced to {status: [job ids]}, after checking its shape."""
    assert is_int(payload["timestamp"]), payload
    assert set(payload) == {"timestamp", "jobs"}, payload
    jobs = payload["jobs"]
    assert list(jobs) == [s for s in ("IN_PROGRESS", "QUEUED") if s in jobs], payload
    for summaries in jobs.values():
        assert summaries, payload  # an empty status is left out, never an empty list
        for summary in summaries:
            assert "status" not in summary, summary
            assert is_int(summary["queuedAt"]) and is_int(summary["lastUpdatedAt"]), summary
            assert is_int(summary["versionNumber"]) and is_int(summary["executionNumber"]), summary
    return {status: [s["jobId"] for s in summaries] for status, summaries in jobs.items()}


def next_execution(payload: dict[str, Any]) -> tuple[str, str] | None:
    """A ``notify-next`` payload reduced to (job id, status) of its execution, or None."""
    assert is_int(payload["timestamp"]), payload
    assert set(payload) <= {"timestamp", "execution"}, payload
    execution = payload.get("execution")
    if execution is None:
        return None
    assert isinstance(execution["jobDocument"], dict), execution
    assert is_int(execution["versionNumber"]) and is_int(execution["queuedAt"]), execution
    return execution["jobId"], execution["status"]


# -- the official SDK, V2 ---------------------------------------------------------


@dataclass
class V2Device:
    """A registered thing on ``IotJobsClientV2`` with both notification streams open."""

    thing: str
    client: Any
    next_events: Inbox
    list_events: Inbox

    def get_pending(self):
        return self.client.get_pending_job_executions(
            iotjobs.GetPendingJobExecutionsRequest(thing_name=self.thing)
        ).result(10)

    def start_next(self, **fields: Any):
        return self.client.start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name=self.thing, **fields)
        )

    def describe(self, job_id: str, **fields: Any):
        return self.client.describe_job_execution(
            iotjobs.DescribeJobExecutionRequest(thing_name=self.thing, job_id=job_id, **fields)
        )

    def update(self, job_id: str, status: str | None, **fields: Any):
        return self.client.update_job_execution(
            iotjobs.UpdateJobExecutionRequest(thing_name=self.thing, job_id=job_id, status=status, **fields)
        )


def modeled_error(future) -> Any:
    """The ``V2ErrorResponse`` a rejected V2 request fails with."""
    with pytest.raises(V2ServiceException) as caught:
        future.result(10)
    error = caught.value.modeled_error
    assert error is not None, f"not a modeled rejection: {caught.value!r}"
    assert (error.execution_state is not None) == (error.code in WITH_STATE), vars(error)
    return error


@contextmanager
def v2_device(server, thing: str) -> Iterator[V2Device]:
    """An ``IotJobsClientV2`` device for ``thing`` (already registered), streams established."""
    next_events, list_events = Inbox(), Inbox()
    with v2_jobs_client(
        server.mqtt_host,
        server.mqtt_port,
        thing,
        next_events.put,
        list_events.put,
        disable_metrics=sdk_metrics_off(server),
    ) as client:
        yield V2Device(thing, client, next_events, list_events)


# -- events -------------------------------------------------------------------------

_JOB_EVENT = re.compile(r"\$aws/events/job/(?P<job>[^/]+)/(?P<operation>[^/]+)")
_EXECUTION_EVENT = re.compile(r"\$aws/events/jobExecution/(?P<job>[^/]+)/(?P<operation>[^/]+)")


@dataclass(frozen=True)
class Event:
    """An event as it arrived, with what the control plane showed at that moment."""

    topic: str
    body: dict[str, Any]
    seen: dict[str, Any]


class EventWatcher:
    """An admin client on ``$aws/events/#`` that, as each event of a watched job arrives,
    asks the control plane for that job (or execution) before taking the next one."""

    def __init__(self, client, iot, job_prefix: str) -> None:
        self.client = client
        self.iot = iot
        self.job_prefix = job_prefix
        self.events = Inbox()
        client.on_message = self._on_message

    def _on_message(self, _client, _userdata, message) -> None:
        try:
            body = json.loads(message.payload)
            job = _JOB_EVENT.fullmatch(message.topic) or _EXECUTION_EVENT.fullmatch(message.topic)
            if job is None or not job["job"].startswith(self.job_prefix):
                return  # another test's job
            seen = self._look(message.topic, body)
        except Exception as exc:  # kept for the test thread: an exception here would be lost
            self.events.put(Event(message.topic, {}, {"failure": repr(exc)}))
            return
        self.events.put(Event(message.topic, body, seen))

    def _look(self, topic: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            if _JOB_EVENT.fullmatch(topic):
                return self.iot.describe_job(jobId=body["jobId"])["job"]
            thing = body["thingArn"].rsplit("/", 1)[1]
            return self.iot.describe_job_execution(jobId=body["jobId"], thingName=thing)["execution"]
        except ClientError as error:
            return {"error": error.response["Error"]["Code"]}

    def wait(self, topic: str, timeout: float = 10.0) -> Event:
        event = self.events.wait_for(lambda e: e.topic == topic, timeout)
        assert "failure" not in event.seen, event
        return event

    def topics(self) -> list[str]:
        return [event.topic for event in self.events.items]


# -- a server with other limits ------------------------------------------------------


def start_server_with(
    tmp_dir: Path, broker: str, extra_args: list[str], timeout: float = 30.0
) -> BrokerServer:
    """Start ``iotjobs serve`` on ``broker`` with extra options, as the package's ``server`` fixture does."""
    return start_on_broker(broker, tmp_dir, extra_args=extra_args, timeout=timeout)


def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``check`` until it holds (for changes the service finishes after replying)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout}s")
        time.sleep(0.02)
