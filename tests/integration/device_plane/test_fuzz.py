"""Over 10,000 generated malformed requests through the real broker.

Several paho devices (each a registered thing) send, in paced batches,
requests that must all be refused: unknown paths under their own jobs tree
(each unique, so its one reply can be counted), payloads that are not UTF-8
JSON objects or are too large, and JSON with wrong types or out-of-range
values. Some publishes go where the broker's ACL must drop them: other
things' request and reply topics, the device's own reply topics, and
``$aws/events/...``. Meanwhile a well-behaved device on the official SDK keeps
getting correct answers, and finally runs its job to completion.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest

from ..clients import paho_client, subscribe
from ._support import (
    WITH_STATE,
    acl_drops,
    admin_client,
    client_token,
    echoes_requests,
    is_int,
    is_reply_topic,
    start_server_with,
    thing_arn,
    v2_device,
)

DEVICES = 8
BATCHES = 13
PER_BATCH = 100  # per device and batch; far below the 1,000 requests one thing may have waiting
LIMIT = 128 * 1024
DEVICE_STATUSES = ["IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"]
SERVICE_STATUSES = ["QUEUED", "CANCELED", "TIMED_OUT", "REMOVED"]
CONTROL_CHARACTERS = [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if chr(c) not in "\t\n\r"]
INVALID_REQUEST = frozenset({"InvalidRequest"})
INVALID_JSON = frozenset({"InvalidJson"})


@dataclass(frozen=True)
class Request:
    topic: str
    payload: bytes
    # Codes the reply may carry; None when the broker must drop the publish (no reply at all).
    codes: frozenset[str] | None
    # The clientToken the reply must echo: set when the payload is a JSON object with a string token.
    token: str | None = None


class Generator:
    """Malformed requests for one device, drawn from a seeded ``random.Random``."""

    def __init__(
        self,
        seed: int,
        thing: str,
        jobs: list[str],
        others: dict[str, list[str]],
        acl_drops: Callable[[str], bool] = lambda _path: False,
    ) -> None:
        self.rng = random.Random(seed)
        self.acl_drops = acl_drops  # paths of its own tree the broker drops without a word
        self.thing = thing
        self.prefix = f"$aws/things/{thing}/jobs"
        self.jobs = jobs
        self.others = others  # another thing -> its job ids
        self.seq = 0

    def next(self) -> Request:
        self.seq += 1
        roll = self.rng.random()
        if roll < 0.22:
            return self.invalid_topic()
        if roll < 0.50:
            return self.bad_payload()
        if roll < 0.90:
            return self.bad_fields()
        return self.dropped()

    def token(self) -> str:
        return f"{self.thing}.{self.seq}"

    def junk_bytes(self) -> bytes:
        data = bytearray(self.rng.randbytes(self.rng.randint(1, 300)))
        data[0] = self.rng.choice([0x80, 0xBF, 0xC0, 0xFE, 0xFF])  # no UTF-8 text starts with these
        return bytes(data)

    # -- unknown paths under the thing's own tree, each one unique -----------------------
    def invalid_topic(self) -> Request:
        rng, n = self.rng, self.seq
        job = rng.choice(self.jobs)
        path = rng.choice(
            [
                f"fz{n}",
                f"fz{n}/bar",
                f"fz{n}/a/b/c",
                f"fz{n}/gét",
                f"fz{n}//get",
                f"fz{n}/get/x",
                f"fz{n}/update/now",
                f"fz{n}/start-next",
                f"get/fz{n}",
                f"start-next/fz{n}",
                f"{job}/get/fz{n}",
                f"{job}/update/fz{n}",
                f"{job}/fz{n}",
                f"$next{n}/get",
                f"$next/update/fz{n}",
                f"notify/fz{n}",
                f"fz{n}/notify-next",
                f"fz{n}/accepted/x",
            ]
        )
        topic = f"{self.prefix}/{path}"
        kind = rng.random()
        if kind < 0.6:
            token = self.token()
            extra = rng.choice([{}, {"status": "SUCCEEDED"}, {"x": [1, 2]}])
            request = Request(
                topic,
                json.dumps({"clientToken": token, **extra}).encode(),
                frozenset({"InvalidTopic"}),
                token,
            )
        elif kind < 0.8:
            request = Request(topic, b"", frozenset({"InvalidTopic"}))
        else:
            # Two faults at once: either may be named.
            request = Request(topic, self.junk_bytes(), frozenset({"InvalidTopic", "InvalidJson"}))
        if self.acl_drops(path):  # Mosquitto's ACL passes only the request topics: no reply
            return Request(topic, request.payload, None)
        return request

    # -- payloads that are not a JSON object, or are too large ----------------------------
    def request_topic(self) -> str:
        rng = self.rng
        job = rng.choice([*self.jobs, f"nojob-{rng.randrange(10**6)}"])
        path = rng.choice(["get", "start-next", f"{job}/get", "$next/get", f"{job}/update"])
        return f"{self.prefix}/{path}"

    def bad_payload(self) -> Request:
        rng = self.rng
        topic = self.request_topic()
        kind = rng.randrange(8)
        if kind == 0:
            return Request(topic, self.junk_bytes(), INVALID_JSON)
        if kind == 1:
            text = json.dumps(
                {"clientToken": self.token(), "status": "SUCCEEDED", "statusDetails": {"a": "b"}}
            )
            return Request(topic, text[: rng.randint(1, len(text) - 1)].encode(), INVALID_JSON)
        if kind == 2:
            value = rng.choice([[], [1, "a"], "text", 42, -1.5, None, True, False, [{"clientToken": "x"}]])
            return Request(topic, json.dumps(value).encode(), INVALID_JSON)
        if kind == 3:
            text = rng.choice(["hello", "{'a': 1}", "<xml/>", "{a: 1}", "{,}", '{"a" 1}', "[1,]", "0x10"])
            return Request(topic, text.encode(), INVALID_JSON)
        if kind == 4:
            opener = rng.choice([b"[", b'{"a":'])
            return Request(topic, opener * rng.randint(1000, 20000), INVALID_JSON | INVALID_REQUEST)
        if kind == 5:
            broken = bytearray(json.dumps({"clientToken": self.token()}).encode())
            broken[rng.randrange(len(broken))] = rng.choice([0xFF, 0xC3, 0x80])
            return Request(topic, bytes(broken), INVALID_JSON)
        if kind == 6 and rng.random() < 0.08:
            # Over the service's 128 KB but within the broker's packet limit (the payload plus a
            # topic of up to 256 bytes): larger packets close the connection instead (test_limits).
            size = rng.randint(LIMIT + 1, LIMIT + 100)
            body = json.dumps({"clientToken": self.token(), "pad": ""})
            payload = body[:-2].encode() + b"x" * (size - len(body)) + b'"}'
            assert len(payload) == size
            return Request(topic, payload, INVALID_REQUEST)
        # A byte-order mark, then bytes that are not UTF-8.
        return Request(topic, b"\xef\xbb\xbf\xff" + json.dumps({"clientToken": "bom"}).encode(), INVALID_JSON)

    # -- JSON objects with wrong types or out-of-range values ------------------------------
    def bad_status_details(self) -> Any:
        rng = self.rng
        return rng.choice(
            [
                lambda: {f"k{i}": "v" for i in range(rng.randint(11, 20))},
                lambda: {"k" * rng.randint(129, 300): "v"},
                lambda: {"": "v"},
                lambda: {f"k{rng.choice(' ./#+$@!é')}x": "v"},
                lambda: {"k": ""},
                lambda: {"k": "v" * rng.randint(1025, 3000)},
                lambda: {"k": rng.choice([1, 2.5, True, None, [], {}, ["v"], {"n": "v"}])},
                lambda: {"k": "x" + rng.choice(CONTROL_CHARACTERS) + "y"},
                lambda: rng.choice([[], ["k", "v"], "k=v", 7, None, True]),
            ]
        )()

    def bad_fields(self) -> Request:
        operation = self.rng.choice([self.bad_get, self.bad_start_next, self.bad_describe, self.bad_update])
        return operation()

    def bad_get(self) -> Request:
        rng, topic = self.rng, f"{self.prefix}/get"
        if rng.random() < 0.5:
            bad = rng.choice([123, None, True, [], {}, ["t"], 1.5])
            return Request(topic, json.dumps({"clientToken": bad}).encode(), INVALID_REQUEST)
        too_long = f"{self.token()}-" + "x" * rng.randint(64, 200)
        return Request(topic, json.dumps({"clientToken": too_long}).encode(), INVALID_REQUEST, too_long)

    def bad_start_next(self) -> Request:
        rng, token = self.rng, self.token()
        body: dict[str, Any] = {"clientToken": token}
        if rng.random() < 0.5:
            body["statusDetails"] = self.bad_status_details()
            if rng.random() < 0.5:
                body["stepTimeoutInMinutes"] = 5
        else:
            body["stepTimeoutInMinutes"] = rng.choice(
                [0, -1, -2, 10081, 99999, 2**40, 1.5, "5", True, None, []]
            )
            if rng.random() < 0.5:
                body["statusDetails"] = {"ok": "yes"}
        return Request(f"{self.prefix}/start-next", json.dumps(body).encode(), INVALID_REQUEST, token)

    def bad_describe(self) -> Request:
        rng, token = self.rng, self.token()
        known, unknown = rng.choice(self.jobs), f"nojob-{rng.randrange(10**6)}"
        job = rng.choice([known, unknown, "$next"])
        topic = f"{self.prefix}/{job}/get"
        body: dict[str, Any] = {"clientToken": token}
        choice = rng.random()
        if choice < 0.4:
            body["executionNumber"] = rng.choice([0, -1, -100, 1.5, "1", True, None, [], {}])
            codes = INVALID_REQUEST
        elif choice < 0.8:
            body["includeJobDocument"] = rng.choice(["true", 1, 0, None, [], {}, "false"])
            codes = INVALID_REQUEST
        elif job == "$next":
            body["clientToken"] = rng.choice([5, [], None])  # refused, and not echoed
            return Request(topic, json.dumps(body).encode(), INVALID_REQUEST)
        else:
            # Well-formed, but there is no such execution.
            body["executionNumber"] = rng.randint(2, 10**9) if job == known else rng.randint(1, 9)
            codes = frozenset({"ResourceNotFound"})
        if job == unknown:
            codes = codes | {"ResourceNotFound"}  # either check may come first
        return Request(topic, json.dumps(body).encode(), codes, token)

    def bad_update(self) -> Request:
        rng, token = self.rng, self.token()
        known, unknown = rng.choice(self.jobs), f"nojob-{rng.randrange(10**6)}"
        job = rng.choice([known, known, unknown])
        body: dict[str, Any] = {"clientToken": token, "status": rng.choice(DEVICE_STATUSES)}
        codes = INVALID_REQUEST
        choice = rng.randrange(9)
        if choice == 0:
            del body["status"]
        elif choice == 1:
            body["status"] = rng.choice(
                ["DONE", "succeeded", "in_progress", "", "SUCCEEDED ", 1, None, True, []]
            )
        elif choice == 2:
            body["status"] = rng.choice(SERVICE_STATUSES)
        elif choice == 3:
            body["expectedVersion"] = rng.choice(
                ["abc", "1.0", " 1", "", "-1", "0x1", "1" * 19, -1, 1.5, True, None, [], {}]
            )
        elif choice == 4:
            # Well-formed, but every execution here is at version 1.
            version = rng.choice([0, rng.randint(2, 10**6)])
            body["expectedVersion"] = rng.choice([version, str(version)])
            codes = frozenset({"VersionMismatch"})
        elif choice == 5:
            body["stepTimeoutInMinutes"] = rng.choice([0, -2, -100, 10081, 2**40, 1.5, "5", True, None])
        elif choice == 6:
            body["statusDetails"] = self.bad_status_details()
        elif choice == 7:
            key = rng.choice(["includeJobExecutionState", "includeJobDocument", "executionNumber"])
            if key == "executionNumber":
                body[key] = rng.choice([0, -1, 1.5, "1", True, None, []])
            else:
                body[key] = rng.choice(["true", 1, None, []])
        else:
            body["executionNumber"] = rng.randint(2, 10**9)
            codes = frozenset({"ResourceNotFound"})
        if job == unknown:
            # No such execution: said before or after the content is checked.
            codes = frozenset({"ResourceNotFound"}) | (codes & INVALID_REQUEST)
        return Request(f"{self.prefix}/{job}/update", json.dumps(body).encode(), codes, token)

    # -- publishes the broker must drop ------------------------------------------------
    def dropped(self) -> Request:
        rng = self.rng
        other = rng.choice(sorted(self.others))
        other_job, own_job = rng.choice(self.others[other]), rng.choice(self.jobs)
        theirs, mine = f"$aws/things/{other}/jobs", self.prefix
        topic = rng.choice(
            [
                f"{theirs}/get",
                f"{theirs}/start-next",
                f"{theirs}/{other_job}/get",
                f"{theirs}/$next/get",
                f"{theirs}/{other_job}/update",
                f"{theirs}/fz{self.seq}/bar",
                f"{theirs}/notify",
                f"{theirs}/notify-next",
                f"{theirs}/get/accepted",
                f"{mine}/get/accepted",
                f"{mine}/get/rejected",
                f"{mine}/start-next/accepted",
                f"{mine}/{own_job}/get/accepted",
                f"{mine}/$next/get/rejected",
                f"{mine}/{own_job}/update/accepted",
                f"{mine}/notify",
                f"{mine}/notify-next",
                f"{mine}/fz{self.seq}/rejected",
                f"$aws/events/job/{own_job}/completed",
                f"$aws/events/jobExecution/{own_job}/succeeded",
                f"$aws/events/jobExecution/{other_job}/canceled",
            ]
        )
        # A payload that would change state if it ever reached the service.
        body = {"clientToken": f"dropped.{self.thing}.{self.seq}", "status": "SUCCEEDED"}
        return Request(topic, json.dumps(body).encode(), None)


@dataclass
class FuzzDevice:
    """One fuzzing device: what it sent, the replies it is owed, and what it received."""

    thing: str
    client: Any
    generator: Generator
    echoes: bool = False  # the broker delivers its own publishes back to it (Mosquitto)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    owed: Counter = field(default_factory=Counter)  # reply topic -> replies owed
    by_token: dict[str, Request] = field(default_factory=dict)
    tokenless: dict[str, set[str]] = field(default_factory=dict)  # reply topic -> codes allowed
    sent: int = 0
    dropped: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)

    def on_message(self, _client, _userdata, message) -> None:
        if self.echoes and not is_reply_topic(self.generator.prefix, message.topic):
            return  # one of its own requests, back from Mosquitto
        with self.cond:
            self.received.append((message.topic, bytes(message.payload)))
            self.cond.notify_all()

    def send_batch(self, count: int) -> None:
        for _ in range(count):
            request = self.generator.next()
            self.client.publish(request.topic, request.payload, qos=1)
            self.sent += 1
            if request.codes is None:
                self.dropped += 1
                continue
            reply_topic = f"{request.topic}/rejected"
            self.owed[reply_topic] += 1
            if request.token is None:
                self.tokenless.setdefault(reply_topic, set()).update(request.codes)
            else:
                assert request.token not in self.by_token
                self.by_token[request.token] = request

    def wait_for_replies(self, timeout: float = 30.0) -> None:
        owed = sum(self.owed.values())
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.received) >= owed, timeout):
                raise AssertionError(f"{self.thing}: {len(self.received)} replies of {owed} after {timeout}s")

    def marker(self) -> None:
        """A get-pending round trip (accepted or throttled), whose reply is then set aside."""
        token = f"{self.thing}.marker"
        self.client.publish(f"$aws/things/{self.thing}/jobs/get", json.dumps({"clientToken": token}), qos=1)
        with self.cond:

            def answered() -> bool:
                return any(client_token(payload) == token for _, payload in self.received)

            assert self.cond.wait_for(answered, 30), f"{self.thing}: no reply to the marker"
            self.received = [m for m in self.received if client_token(m[1]) != token]

    def check(self) -> Counter:
        """Exactly the owed replies, each well-formed and with an allowed code; returns the codes."""
        assert Counter(topic for topic, _ in self.received) == self.owed
        codes: Counter = Counter()
        echoed: Counter = Counter()
        for topic, payload in self.received:
            body = json.loads(payload)
            code = body.get("code")
            codes[code] += 1
            assert is_int(body.get("timestamp")) and isinstance(body.get("message"), str), body
            assert ("executionState" in body) == (code in WITH_STATE), body
            token = body.get("clientToken")
            if token is None:
                allowed = self.tokenless[topic]
            else:
                request = self.by_token[token]  # only tokens that were sent come back
                echoed[token] += 1
                assert topic == f"{request.topic}/rejected", (topic, request)
                allowed = request.codes
            assert code in allowed | {"RequestThrottled"}, (topic, body, allowed)
            if code == "VersionMismatch":
                assert body["executionState"] == {"status": "QUEUED", "versionNumber": 1}, body
        assert set(echoed) == set(self.by_token) and set(echoed.values()) == {1}
        return codes


@pytest.fixture
def fuzz_server(tmp_path, broker):
    # Per-thing limits well above what each device sends: throttling is not the main outcome.
    server = start_server_with(tmp_path, broker, ["--device-rate", "500", "--device-burst", "250"])
    try:
        yield server
    finally:
        server.stop()  # again if the test stopped it: that also ends an external broker


def test_malformed_requests_are_each_answered_once_and_change_nothing(fuzz_server):
    server = fuzz_server
    iot = server.iot()
    names = [f"fuzz-{i}" for i in range(DEVICES)]
    jobs = {name: [f"{name}-job-{k}" for k in range(3)] for name in names}
    steady, steady_job = "steady", "steady-job"
    for name in [*names, steady]:
        iot.create_thing(thingName=name)

    with ExitStack() as stack:
        observer = stack.enter_context(admin_client(server, "fuzz-observer"))
        for topic_filter in ("$aws/events/#", f"$aws/things/{steady}/jobs/#"):
            assert not subscribe(observer, topic_filter)[0].is_failure
        for name in names:
            for job_id in jobs[name]:
                iot.create_job(jobId=job_id, document='{"fuzz": true}', targets=[thing_arn(name)])
        iot.create_job(jobId=steady_job, document='{"steady": 1}', targets=[thing_arn(steady)])
        # The service sends notifications in order after the call returns: once the last job's
        # has arrived, none of those jobs' notifications can reach a device that subscribes later.
        observer.inbox.wait_for(lambda m: m[0] == f"$aws/things/{steady}/jobs/notify-next")
        devices: list[FuzzDevice] = []
        for index, name in enumerate(names):
            client = stack.enter_context(paho_client(server.mqtt_host, server.mqtt_port, name))
            others = {other: jobs[other] for other in names if other != name} | {steady: [steady_job]}
            generator = Generator(
                7919 + index, name, jobs[name], others, lambda path: acl_drops(server, path)
            )
            device = FuzzDevice(name, client, generator, echoes_requests(server))
            client.on_message = device.on_message
            assert not subscribe(client, f"$aws/things/{name}/jobs/#")[0].is_failure
            devices.append(device)
        well_behaved = stack.enter_context(v2_device(server, steady))

        # Its first request subscribes to the reply topics; later ones reuse the subscription.
        assert [s.job_id for s in well_behaved.get_pending().queued_jobs] == [steady_job]
        steady_gets = 1
        for batch in range(BATCHES):
            for device in devices:
                device.send_batch(PER_BATCH)
            # The well-behaved device is answered correctly while the batch is being refused.
            pending = well_behaved.get_pending()
            steady_gets += 1
            assert ([s.job_id for s in pending.queued_jobs], pending.in_progress_jobs) == (
                [steady_job],
                [],
            ), batch
            for device in devices:
                device.wait_for_replies()
        # A later round trip on every device: anything still on its way has arrived by then.
        for device in devices:
            device.marker()

        sent = sum(d.sent for d in devices)
        assert sent >= 10_000
        codes: Counter = Counter()
        for device in devices:
            codes += device.check()
        assert sum(codes.values()) == sent - sum(d.dropped for d in devices)
        assert codes["RequestThrottled"] < sum(codes.values()) / 20, codes
        assert {
            "InvalidTopic",
            "InvalidJson",
            "InvalidRequest",
            "ResourceNotFound",
            "VersionMismatch",
        } <= set(codes)

        # Nothing changed: every fuzzed execution is still QUEUED at version 1.
        for name in names:
            for job_id in jobs[name]:
                execution = iot.describe_job_execution(jobId=job_id, thingName=name)["execution"]
                assert (execution["status"], execution["versionNumber"]) == ("QUEUED", 1), execution

        # The well-behaved device runs its job to completion.
        started = well_behaved.start_next().result(10).execution
        assert (started.job_id, started.status, started.job_document) == (
            steady_job,
            "IN_PROGRESS",
            {"steady": 1},
        )
        well_behaved.update(steady_job, "SUCCEEDED", expected_version=2).result(10)
        assert iot.describe_job(jobId=steady_job)["job"]["status"] == "COMPLETED"
        observer.inbox.wait_for(lambda m: m[0] == f"$aws/events/job/{steady_job}/completed")

        # The observer saw the steady device's own traffic and its events, nothing forged.
        # Presence events come from the embedded broker itself (no other publishes them):
        # each names the client of its topic.
        presence = [
            (t, json.loads(p)) for t, p in observer.inbox.items if t.startswith("$aws/events/presence/")
        ]
        assert bool(presence) == (server.broker == "embedded"), presence
        for topic, event in presence:
            assert topic == f"$aws/events/presence/{event['eventType']}/{event['clientId']}", (topic, event)
        steady_prefix = f"$aws/things/{steady}/jobs"
        seen = Counter(
            topic for topic, _ in observer.inbox.items if not topic.startswith("$aws/events/presence/")
        )
        assert seen[f"{steady_prefix}/get/accepted"] == steady_gets
        assert set(seen) == {
            f"{steady_prefix}/get",
            f"{steady_prefix}/get/accepted",
            f"{steady_prefix}/start-next",
            f"{steady_prefix}/start-next/accepted",
            f"{steady_prefix}/{steady_job}/update",
            f"{steady_prefix}/{steady_job}/update/accepted",
            f"{steady_prefix}/notify",
            f"{steady_prefix}/notify-next",
            f"$aws/events/jobExecution/{steady_job}/succeeded",
            f"$aws/events/job/{steady_job}/completed",
        }, seen
        assert all(b"dropped." not in payload for _, payload in observer.inbox.items)

    assert server.process.poll() is None, "the server died"
    assert server.stop() == 0, "\n".join(server.lines[-50:])
    # No request failed inside the service or its broker plugins (each is logged with its traceback).
    assert not [line for line in server.lines if re.search(r" ERROR (iot_jobs_bridge|iotjobs)\.", line)]
