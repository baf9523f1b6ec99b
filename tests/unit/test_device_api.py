import json

import pytest

from iot_jobs_bridge.jobs_service.engine import NewJob


@pytest.fixture
def job(engine, registry, arns):
    engine.membership.create_thing("t1")
    engine.jobs.create_job(NewJob(job_id="j1", targets=[arns.thing("t1")], document='{"op": "x"}'))


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
        (b"\xff\xfe", "InvalidJson", "The payload is not UTF-8: invalid start byte at byte 0"),
        (b"{nope}", "InvalidJson", "The payload is not valid JSON: Expecting property name"),
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


def test_a_lone_surrogate_is_invalid_request_and_the_token_is_echoed(device, job, store):
    payload = b'{"clientToken": "tok", "status": "IN_PROGRESS", "statusDetails": {"k": "\\ud800"}}'
    reply = _call(device, "$aws/things/t1/jobs/j1/update", payload)["$aws/things/t1/jobs/j1/update/rejected"]
    assert (reply["code"], reply["clientToken"]) == ("InvalidRequest", "tok")
    assert reply["message"] == "The payload has a lone UTF-16 surrogate (\\ud800) in 'statusDetails.k'"
    execution = store.jobs.get_execution("j1", "t1")
    assert (execution.status.value, execution.status_details) == ("QUEUED", {})


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        (
            b"[" * 20_000 + b"]" * 20_000,
            "InvalidRequest",
            "The payload nests arrays and objects deeper than 64",
        ),
        (b"[" * 100_000, "InvalidJson", "The payload is not valid JSON: its brackets do not balance"),
        (b'{"executionNumber": ' + b"1" * 5000 + b"}", "InvalidRequest", "The payload has a number of 5000"),
        (
            b'{"stepTimeoutInMinutes": 1e400}',
            "InvalidRequest",
            "The payload has a number too large for a double",
        ),
    ],
    ids=["deep", "deep-unclosed", "long-number", "huge-number"],
)
def test_json_the_reader_refuses(device, payload, code, message):
    reply = _call(device, "$aws/things/t1/jobs/start-next", payload)[
        "$aws/things/t1/jobs/start-next/rejected"
    ]
    assert (reply["code"], reply["message"][: len(message)]) == (code, message)


def test_unknown_path_is_invalid_topic(device):
    replies = _call(device, "$aws/things/t1/jobs/a/b/c", {"clientToken": "x"})
    assert replies["$aws/things/t1/jobs/a/b/c/rejected"]["code"] == "InvalidTopic"


def test_replies_are_ignored(device):
    assert device.handle("$aws/things/t1/jobs/get/accepted", b"{}") == []


def test_step_timer_is_stored_replaced_and_cleared(device, job, engine, clock):
    _call(device, "$aws/things/t1/jobs/start-next", {"stepTimeoutInMinutes": 5})
    assert engine.get_execution("j1", "t1", None).step_timeout_at == clock.now() + 300
    clock.advance(10)
    _call(device, "$aws/things/t1/jobs/j1/update", {"status": "IN_PROGRESS", "stepTimeoutInMinutes": 1})
    assert engine.get_execution("j1", "t1", None).step_timeout_at == clock.now() + 60
    _call(device, "$aws/things/t1/jobs/j1/update", {"status": "IN_PROGRESS"})
    assert engine.get_execution("j1", "t1", None).step_timeout_at == clock.now() + 60
    _call(device, "$aws/things/t1/jobs/j1/update", {"status": "IN_PROGRESS", "stepTimeoutInMinutes": -1})
    assert engine.get_execution("j1", "t1", None).step_timeout_at is None


def test_describe_of_a_finished_job_is_terminal_state_reached(device, job):
    _call(device, "$aws/things/t1/jobs/j1/update", {"status": "SUCCEEDED"})
    reply = _call(device, "$aws/things/t1/jobs/j1/get", {"clientToken": "d"})[
        "$aws/things/t1/jobs/j1/get/rejected"
    ]
    assert (reply["code"], reply["clientToken"]) == ("TerminalStateReached", "d")
    assert reply["message"] == "Job j1 is COMPLETED and its execution on t1 is SUCCEEDED"
    assert "executionState" not in reply


def test_describe_of_a_terminal_execution_of_an_active_job_is_accepted(device, engine, arns):
    engine.membership.create_thing("t1")
    engine.membership.create_thing("t2")
    engine.jobs.create_job(NewJob(job_id="j2", targets=[arns.thing("t1"), arns.thing("t2")], document="{}"))
    _call(device, "$aws/things/t1/jobs/j2/update", {"status": "FAILED"})
    reply = _call(device, "$aws/things/t1/jobs/j2/get", {})["$aws/things/t1/jobs/j2/get/accepted"]
    assert reply["execution"]["status"] == "FAILED"


def test_oversize_and_deep_payloads_are_rejected(device, job):
    big = json.dumps({"status": "SUCCEEDED", "pad": "x" * (128 * 1024)}).encode()
    reply = _call(device, "$aws/things/t1/jobs/j1/update", big)["$aws/things/t1/jobs/j1/update/rejected"]
    assert (reply["code"], reply["message"]) == (
        "InvalidRequest",
        f"The payload is {len(big)} bytes; the limit is 131072",
    )
    deep = b"[" * 100_000
    reply = _call(device, "$aws/things/t1/jobs/get", deep)["$aws/things/t1/jobs/get/rejected"]
    assert reply["code"] == "InvalidJson"


def test_get_pending_lists_at_most_ten_queued(device, engine, arns):
    engine.membership.create_thing("t1")
    for i in range(12):
        engine.jobs.create_job(NewJob(job_id=f"j{i:02}", targets=[arns.thing("t1")], document="{}"))
    engine.device.start_next("t1", None)
    reply = _call(device, "$aws/things/t1/jobs/get", {})["$aws/things/t1/jobs/get/accepted"]
    assert [j["jobId"] for j in reply["inProgressJobs"]] == ["j00"]
    assert [j["jobId"] for j in reply["queuedJobs"]] == [f"j{i:02}" for i in range(1, 11)]


def test_a_flood_is_throttled_per_thing(engine):
    from iot_jobs_bridge.jobs_service.device_plane import Renderer
    from iot_jobs_bridge.jobs_service.device_plane.api import DeviceApi
    from iot_jobs_bridge.jobs_service.device_plane.throttle import Throttle

    frozen = DeviceApi(engine, Renderer(engine.arns), Throttle(rate=1.0, burst=2, monotonic=lambda: 0.0))
    replies = [frozen.handle("$aws/things/t1/jobs/get", b'{"clientToken": "x"}')[0] for _ in range(3)]
    assert [r.topic.rsplit("/", 1)[1] for r in replies] == ["accepted", "accepted", "rejected"]
    assert (replies[2].payload["code"], replies[2].payload["clientToken"]) == ("RequestThrottled", "x")
    other = frozen.handle("$aws/things/t2/jobs/get", b"{}")[0]
    assert other.topic == "$aws/things/t2/jobs/get/accepted"


def test_invalid_topic_wins_over_a_bad_payload_and_echoes_a_readable_token(device):
    bad = _call(device, "$aws/things/t1/jobs/a/b", b"{not json")["$aws/things/t1/jobs/a/b/rejected"]
    assert (bad["code"], "clientToken" in bad) == ("InvalidTopic", False)
    good = _call(device, "$aws/things/t1/jobs/a/b", {"clientToken": "k"})["$aws/things/t1/jobs/a/b/rejected"]
    assert (good["code"], good["clientToken"]) == ("InvalidTopic", "k")
