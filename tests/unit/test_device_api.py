import json

import pytest

from jobs_service.engine import NewJob


@pytest.fixture
def job(engine, registry, arns):
    engine.create_thing("t1")
    engine.create_job(NewJob(job_id="j1", targets=[arns.thing("t1")], document='{"op": "x"}'))


def _call(device, topic, payload):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return {m.topic: m.payload for m in device.handle(topic, raw)}


def test_get_pending_always_has_both_lists_and_echoes_token(device, clock):
    replies = _call(device, "$aws/things/nobody/jobs/get", {"clientToken": "tok"})
    assert replies == {
        "$aws/things/nobody/jobs/get/accepted": {
            "inProgressJobs": [],
            "queuedJobs": [],
            "clientToken": "tok",
            "timestamp": int(clock.now()),
        }
    }


def test_v1_request_without_token_gets_no_token(device, job):
    reply = _call(device, "$aws/things/t1/jobs/get", {})["$aws/things/t1/jobs/get/accepted"]
    assert "clientToken" not in reply
    assert [j["jobId"] for j in reply["queuedJobs"]] == ["j1"]
    assert isinstance(reply["timestamp"], int)


def test_start_next_reply_has_document_object(device, job):
    reply = _call(device, "$aws/things/t1/jobs/start-next", {"clientToken": "c"})[
        "$aws/things/t1/jobs/start-next/accepted"
    ]
    assert reply["execution"]["jobDocument"] == {"op": "x"}
    assert reply["execution"]["status"] == "IN_PROGRESS"
    assert reply["execution"]["versionNumber"] == 2
    assert all(isinstance(reply["execution"][k], int) for k in ("queuedAt", "startedAt", "lastUpdatedAt"))


def test_start_next_with_nothing_pending_is_accepted_without_execution(device):
    reply = _call(device, "$aws/things/t9/jobs/start-next", {"clientToken": "c"})
    assert reply["$aws/things/t9/jobs/start-next/accepted"].keys() == {"clientToken", "timestamp"}


def test_describe_next_replies_on_the_literal_topic(device, job):
    replies = _call(
        device, "$aws/things/t1/jobs/$next/get", {"clientToken": "c", "includeJobDocument": False}
    )
    execution = replies["$aws/things/t1/jobs/$next/get/accepted"]["execution"]
    assert execution["jobId"] == "j1"
    assert "jobDocument" not in execution


def test_update_accepted_payload_follows_include_flags(device, job):
    plain = _call(device, "$aws/things/t1/jobs/j1/update", {"status": "IN_PROGRESS", "clientToken": "a"})
    assert plain["$aws/things/t1/jobs/j1/update/accepted"].keys() == {"clientToken", "timestamp"}
    full = _call(
        device,
        "$aws/things/t1/jobs/j1/update",
        {
            "status": "SUCCEEDED",
            "expectedVersion": "2",
            "statusDetails": {"out": "line\n"},
            "includeJobExecutionState": True,
            "includeJobDocument": True,
        },
    )
    reply = full["$aws/things/t1/jobs/j1/update/accepted"]
    assert reply["executionState"] == {
        "status": "SUCCEEDED",
        "statusDetails": {"out": "line\n"},
        "versionNumber": 3,
    }
    assert reply["jobDocument"] == {"op": "x"}
    assert full["$aws/things/t1/jobs/notify-next"] == {"timestamp": reply["timestamp"]}


def test_rejections_carry_code_token_and_state_only_where_allowed(device, job):
    mismatch = _call(
        device,
        "$aws/things/t1/jobs/j1/update",
        {"status": "SUCCEEDED", "expectedVersion": 9, "clientToken": "v"},
    )
    reply = mismatch["$aws/things/t1/jobs/j1/update/rejected"]
    assert reply["code"] == "VersionMismatch"
    assert reply["clientToken"] == "v"
    assert reply["executionState"] == {"status": "QUEUED", "versionNumber": 1}

    missing = _call(device, "$aws/things/t1/jobs/nope/update", {"status": "SUCCEEDED", "clientToken": "m"})
    reply = missing["$aws/things/t1/jobs/nope/update/rejected"]
    assert reply["code"] == "ResourceNotFound"
    assert "executionState" not in reply


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        (b"\xff\xfe", "InvalidJson", "The payload is not UTF-8 JSON"),
        (b"{nope", "InvalidJson", "The payload is not UTF-8 JSON"),
        (b"[1]", "InvalidJson", "The payload must be a JSON object"),
        ({"clientToken": "t"}, "InvalidRequest", "'status' is required"),
        ({"status": "DONE", "clientToken": "t"}, "InvalidRequest", "status: 'DONE' is not one of"),
        (
            {"status": "SUCCEEDED", "statusDetails": {"k": 1}},
            "InvalidRequest",
            "statusDetails.k: 1 is not of type",
        ),
        (
            {"status": "SUCCEEDED", "statusDetails": {f"k{i}": "v" for i in range(11)}},
            "InvalidRequest",
            "statusDetails: has more than 10 entries",
        ),
        (
            {"status": "SUCCEEDED", "stepTimeoutInMinutes": 0},
            "InvalidRequest",
            "stepTimeoutInMinutes: 0 is not valid",
        ),
        ({"status": "CANCELED"}, "InvalidRequest", "A device cannot set status CANCELED"),
    ],
)
def test_bad_update_requests(device, job, payload, code, message):
    replies = _call(device, "$aws/things/t1/jobs/j1/update", payload)
    reply = replies["$aws/things/t1/jobs/j1/update/rejected"]
    assert reply["code"] == code
    assert reply["message"].startswith(message)
    assert ("clientToken" in reply) == (isinstance(payload, dict) and "clientToken" in payload)


def test_unknown_path_is_invalid_topic(device):
    replies = _call(device, "$aws/things/t1/jobs/a/b/c", {"clientToken": "x"})
    assert replies["$aws/things/t1/jobs/a/b/c/rejected"]["code"] == "InvalidTopic"


def test_replies_are_ignored(device):
    assert device.handle("$aws/things/t1/jobs/get/accepted", b"{}") == []
