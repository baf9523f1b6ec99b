"""Hostile payloads are answered on ``/rejected`` while another device keeps being served."""

import json
import random

import pytest

from ._support import acl_drops, create_job

REQUEST_PATHS = ["get", "start-next", "{job}/get", "$next/get", "{job}/update", "no/such/path"]


def _junk() -> bytes:
    data = bytearray(random.Random(20240601).randbytes(8192))
    data[0] = 0x80  # a continuation byte cannot start UTF-8
    return bytes(data)


HOSTILE = {
    "invalid-utf8": (b"\xc3\x28\xa0\xa1\xe2\x28\xa1" * 100, {"InvalidJson"}),
    # Not JSON: the brackets never close.
    "deep-nesting": (b"[" * 10000, {"InvalidJson"}),
    # JSON, deeper than the service reads.
    "deep-nesting-closed": (b"[" * 10000 + b"]" * 10000, {"InvalidRequest"}),
    "deep-object": (b'{"a":' * 10000 + b"1" + b"}" * 10000, {"InvalidRequest"}),
    "5000-digit-number": (b'{"executionNumber": ' + b"9" * 5000 + b"}", {"InvalidRequest"}),
    # Over the service's 128 KB, within the broker's packet limit (larger closes the connection).
    "just-over-128-kb": (
        b'{"clientToken": "big", "pad": "' + b"A" * (128 * 1024) + b'"}',
        {"InvalidRequest"},
    ),
    "binary-junk": (_junk(), {"InvalidJson"}),
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_payload_is_rejected_and_others_are_still_served(server, iot, connect, v2, unique, kind):
    payload, codes = HOSTILE[kind]
    attacker = connect("attacker")
    job_id = create_job(iot, f"{unique}-a", [attacker.thing])
    calm_job = create_job(iot, f"{unique}-calm", [v2.thing])
    paths = [p.format(job=job_id) for p in REQUEST_PATHS]
    topics = [attacker.topic(path) for path in paths]
    # Mosquitto's ACL drops a publish outside the request topics silently: no reply is owed.
    dropped = tuple(f"{attacker.topic(path)}/" for path in paths if acl_drops(server, path))
    # Its first request subscribes to the reply topics; later ones reuse the subscription.
    assert [s.job_id for s in v2.get_pending().queued_jobs] == [calm_job]
    mark = attacker.mark()

    for round_ in range(3):
        for topic in topics:
            attacker.client.publish(topic, payload, qos=1)
        # Served while the hostile payloads are being answered.
        pending = v2.get_pending()
        assert [s.job_id for s in pending.queued_jobs] == [calm_job], round_

    for topic in (t for t in topics if f"{t}/" not in dropped):
        replies = attacker.wait_since(mark, lambda m, t=topic: m[0].startswith(f"{t}/"), count=3)
        assert {reply_topic for reply_topic, _ in replies} == {f"{topic}/rejected"}
        # On an unknown path either fault may be named first.
        expected = codes | {"InvalidTopic"} if topic.endswith("no/such/path") else codes
        for _, body in replies:
            reply = json.loads(body)
            assert reply["code"] in expected, (topic, reply)
            assert "executionState" not in reply
    if dropped:
        attacker.marker()
        assert not attacker.since(mark, lambda m: m[0].startswith(dropped))

    execution = iot.describe_job_execution(jobId=job_id, thingName=attacker.thing)["execution"]
    assert (execution["status"], execution["versionNumber"]) == ("QUEUED", 1)
    started = v2.start_next().result(10).execution
    assert (started.job_id, started.status) == (calm_job, "IN_PROGRESS")


@pytest.mark.parametrize("path", ["{job}/update", "start-next"])
def test_a_lone_surrogate_is_refused_echoing_the_token_and_nothing_is_stored(iot, device, unique, path):
    job_id = create_job(iot, f"{unique}-a", [device.thing])
    # The JSON escape of a lone surrogate: valid JSON syntax, but no UTF-8 text carries it.
    body = b'{"clientToken": "tok-1", "status": "IN_PROGRESS", "statusDetails": {"k": "\\ud800"}}'

    reply = device.request(path.format(job=job_id), raw=body)

    assert reply.outcome == "rejected", reply
    assert (reply.code, reply.body["clientToken"]) == ("InvalidRequest", "tok-1")
    assert reply.body["message"] == "The payload has a lone UTF-16 surrogate (\\ud800) in 'statusDetails.k'"
    execution = iot.describe_job_execution(jobId=job_id, thingName=device.thing)["execution"]
    assert (execution["status"], execution["statusDetails"]) == ("QUEUED", {"detailsMap": {}})


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_number_literals_outside_json_are_invalid_json(device, literal):
    reply = device.request("get", raw=b'{"clientToken": "t", "x": ' + literal + b"}")
    assert (reply.outcome, reply.code) == ("rejected", "InvalidJson"), reply


@pytest.mark.parametrize("path", ["{job}/get", "{job}/update"])
@pytest.mark.parametrize("number", [2**63, 10**30], ids=["2**63", "10**30"])
def test_execution_number_beyond_64_bits_is_a_client_error(iot, device, unique, path, number):
    job_id = create_job(iot, f"{unique}-a", [device.thing])
    # The largest long is an ordinary (unknown) execution number.
    body = {"status": "IN_PROGRESS", "executionNumber": 2**63 - 1}
    assert device.rejected(path.format(job=job_id), body).code == "ResourceNotFound"

    reply = device.rejected(path.format(job=job_id), {**body, "executionNumber": number})

    assert reply.code in ("InvalidRequest", "ResourceNotFound"), reply
