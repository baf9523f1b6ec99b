"""Malformed payloads and topics, the payload limit and the per-thing rate limit."""

import json
import time

import pytest

from ._support import acl_drops, create_job

REQUEST_PATHS = ["get", "start-next", "{job}/get", "$next/get", "{job}/update"]
LIMIT = 128 * 1024


@pytest.fixture
def job_id(iot, device, unique):
    return create_job(iot, f"{unique}-a", [device.thing])


def unchanged(iot, job_id, thing):
    execution = iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
    return (execution["status"], execution["versionNumber"]) == ("QUEUED", 1)


@pytest.mark.parametrize("path", REQUEST_PATHS)
@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xfe{}",
        b'{"clientToken": "t-\xc3\x28"}',
        b'{"clientToken": "t1", "status": "SUCCEEDED"',
        b"{'clientToken': 't1'}",
        b"clientToken=t1",
        b'{"clientToken": "t1"} trailing',
    ],
    ids=["bad-utf8", "bad-utf8-in-string", "truncated", "single-quotes", "not-json", "trailing-data"],
)
def test_payload_that_is_not_utf8_json_is_invalid_json(iot, device, job_id, path, payload):
    reply = device.rejected(path.format(job=job_id), raw=payload)
    assert reply.code == "InvalidJson"
    assert "clientToken" not in reply.body
    assert unchanged(iot, job_id, device.thing)


@pytest.mark.parametrize("path", REQUEST_PATHS)
@pytest.mark.parametrize(
    "payload",
    [b"[]", b'[{"clientToken": "t1", "status": "SUCCEEDED"}]', b'"t1"', b"42", b"null", b"true"],
    ids=["list", "list-of-request", "string", "number", "null", "boolean"],
)
def test_json_that_is_not_an_object_is_invalid_json(iot, device, job_id, path, payload):
    reply = device.rejected(path.format(job=job_id), raw=payload)
    assert reply.code == "InvalidJson"
    assert "clientToken" not in reply.body
    assert unchanged(iot, job_id, device.thing)


@pytest.mark.parametrize("path", REQUEST_PATHS)
def test_payload_over_128_kb_is_invalid_request(iot, device, job_id, path):
    def padded(size, token):
        body = {"clientToken": token, "status": "SUCCEEDED", "pad": ""}
        body["pad"] = "x" * (size - len(json.dumps(body)))
        data = json.dumps(body).encode()
        assert len(data) == size
        return data

    reply = device.request(path.format(job=job_id), raw=padded(LIMIT + 1, "over"))
    assert (reply.outcome, reply.code) == ("rejected", "InvalidRequest")
    assert unchanged(iot, job_id, device.thing)

    if path != "{job}/update":  # at the limit the request is read and answered normally
        at_limit = device.request(path.format(job=job_id), raw=padded(LIMIT, "at"))
        assert (at_limit.outcome, at_limit.body["clientToken"]) == ("accepted", "at")


@pytest.mark.parametrize(
    "path",
    [
        "foo/bar",
        "$next/update",
        "foo",
        "get/extra",
        "start-next/now",
        "{job}/get/more",
        "{job}/update/more",
        "{job}/delete",
        "{job}/start-next",
        "a/b/c/update",
        "nothing//get",
        "get/",
        "notify/x",
    ],
)
def test_unknown_path_under_the_jobs_tree_is_invalid_topic(server, iot, device, job_id, path):
    topic = path.format(job=job_id)
    if acl_drops(server, topic):  # Mosquitto's ACL drops it silently: the service never sees it
        device.dropped(topic, json.dumps({"clientToken": "dropped", "status": "SUCCEEDED"}))
        assert unchanged(iot, job_id, device.thing)
        return
    reply = device.request(topic, {"status": "SUCCEEDED"})
    assert reply.topic == f"{device.prefix}/{topic}/rejected"
    assert reply.code == "InvalidTopic"
    assert unchanged(iot, job_id, device.thing)


def test_execution_state_only_for_state_transition_and_version_mismatch(server, iot, device, job_id):
    path = f"{job_id}/update"
    # Mosquitto's ACL drops "bogus"; "$next/update" gets through it and is an unknown path too.
    unknown = "$next/update" if acl_drops(server, "bogus") else "bogus"
    codes = {
        device.rejected(path, {"status": "CANCELED"}).code,
        device.rejected(path, {"status": "IN_PROGRESS", "stepTimeoutInMinutes": 0}).code,
        device.rejected(f"{job_id}-missing/update", {"status": "IN_PROGRESS"}).code,
        device.rejected(path, raw=b"[").code,
        device.rejected(unknown, {}).code,
    }
    assert codes == {"InvalidRequest", "ResourceNotFound", "InvalidJson", "InvalidTopic"}
    # (each reply above was checked to carry no executionState)
    assert "executionState" in device.rejected(path, {"status": "FAILED", "expectedVersion": 9}).body
    device.accepted(path, {"status": "FAILED"})
    assert "executionState" in device.rejected(path, {"status": "FAILED"}).body


def test_a_burst_over_forty_is_throttled_while_another_thing_is_served(iot, connect, unique):
    flooder, bystander = connect("flood"), connect("calm")
    job_id = create_job(iot, f"{unique}-a", [bystander.thing])
    tokens = [f"flood-{i}" for i in range(120)]
    topic = flooder.topic("get")
    mark = flooder.mark()
    for token in tokens:
        flooder.client.publish(topic, json.dumps({"clientToken": token}), qos=1)

    # While the flood is answered, the other thing's requests are answered at once.
    for _ in range(5):
        began = time.monotonic()
        assert bystander.pending() == ([], [job_id])
        assert time.monotonic() - began < 2.0

    replies = flooder.wait_since(mark, lambda m: m[0].startswith(f"{topic}/"), count=len(tokens), timeout=30)
    flooder.request("get")  # a later reply, accepted or throttled: nothing else is on its way
    # (on Mosquitto the flooder's own requests come back to it too: they are not answers)
    answered = [
        json.loads(p) | {"outcome": t.rsplit("/", 1)[1]} for t, p in flooder.since(mark, flooder.not_echo)
    ]
    answered = [a for a in answered if a.get("clientToken", "").startswith("flood-")]
    assert len(replies) == len(answered) == len(tokens)
    assert sorted(a["clientToken"] for a in answered) == sorted(tokens)
    throttled = [a for a in answered if a["outcome"] == "rejected"]
    assert throttled, "no RequestThrottled in a burst of 120"
    assert all(a["code"] == "RequestThrottled" and "executionState" not in a for a in throttled)
    assert len(answered) - len(throttled) >= 40


def test_a_packet_over_the_brokers_limit_closes_its_senders_connection(iot, connect, unique):
    # Every broker the service runs or recommends takes at most a 128 KB payload on a
    # 256-byte topic, and closes a client that sends more before buffering it.
    sender, bystander = connect("big"), connect("calm")
    sender.client.on_disconnect = lambda *_args: sender.client.events.put(("disconnect",))
    job_id = create_job(iot, f"{unique}-calm", [bystander.thing])
    mark = sender.mark()
    sender.client.publish(sender.topic("get"), b'{"pad": "' + b"A" * 200_000 + b'"}', qos=1)
    sender.client.events.wait_for(lambda event: event[0] == "disconnect", timeout=10)
    assert bystander.pending() == ([], [job_id])
    assert not sender.since(mark, lambda m: m[0].startswith(sender.topic("get/"))), "it was read and answered"
