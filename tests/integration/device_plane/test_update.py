"""UpdateJobExecution: statuses, versions, statusDetails, limits, include flags, step timers."""

import pytest

from ._support import create_job, group_arn, modeled_error


def stored(iot, job_id, thing):
    execution = iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
    details = execution.get("statusDetails", {}).get("detailsMap", {})
    return execution["status"], execution["versionNumber"], details


def test_status_is_required(iot, device, v2, unique):
    job_id = create_job(iot, f"{unique}-a", [device.thing, v2.thing])

    assert device.rejected(f"{job_id}/update", {"statusDetails": {"a": "b"}}).code == "InvalidRequest"
    assert device.rejected(f"{job_id}/update", raw=b"").code == "InvalidRequest"
    assert modeled_error(v2.update(job_id, None, expected_version=1)).code == "InvalidRequest"
    assert stored(iot, job_id, device.thing) == ("QUEUED", 1, {})
    assert stored(iot, job_id, v2.thing) == ("QUEUED", 1, {})


@pytest.mark.parametrize("status", ["IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"])
def test_a_device_may_set_its_four_statuses_from_queued(iot, device, unique, status):
    job_id = create_job(iot, f"{unique}-a", [device.thing])

    body = device.accepted(f"{job_id}/update", {"status": status})

    assert set(body) == {"clientToken", "timestamp"}
    assert stored(iot, job_id, device.thing) == (status, 2, {})


@pytest.mark.parametrize("status", ["QUEUED", "CANCELED", "TIMED_OUT", "REMOVED"])
@pytest.mark.parametrize("start", [False, True], ids=["from-queued", "from-in-progress"])
def test_service_statuses_are_invalid_request(iot, v2, unique, status, start):
    job_id = create_job(iot, f"{unique}-a", [v2.thing])
    if start:
        v2.start_next().result(10)

    error = modeled_error(v2.update(job_id, status))

    assert error.code == "InvalidRequest"
    assert stored(iot, job_id, v2.thing)[:2] == (("IN_PROGRESS", 2) if start else ("QUEUED", 1))


@pytest.mark.parametrize("status", ["DONE", "succeeded", "", 3, None, ["SUCCEEDED"]])
def test_unknown_status_values_are_invalid_request(iot, device, unique, status):
    job_id = create_job(iot, f"{unique}-a", [device.thing])
    assert device.rejected(f"{job_id}/update", {"status": status}).code == "InvalidRequest"
    assert stored(iot, job_id, device.thing) == ("QUEUED", 1, {})


@pytest.mark.parametrize("ending", ["SUCCEEDED", "FAILED", "REJECTED", "CANCELED", "REMOVED"])
def test_a_terminal_execution_cannot_move(iot, v2, unique, ending):
    group = f"{unique}-g"
    iot.create_thing_group(thingGroupName=group)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=v2.thing)
    job_id = f"{unique}-a"
    iot.create_job(jobId=job_id, document="{}", targets=[group_arn(group)], targetSelection="CONTINUOUS")
    v2.update(job_id, "IN_PROGRESS", status_details={"step": "1"}).result(10)
    if ending == "CANCELED":
        iot.cancel_job_execution(jobId=job_id, thingName=v2.thing, force=True)
    elif ending == "REMOVED":
        iot.remove_thing_from_thing_group(thingGroupName=group, thingName=v2.thing)
    else:
        v2.update(job_id, ending).result(10)
    status, version, details = stored(iot, job_id, v2.thing)
    assert (status, version) == (ending, 3)

    for target in ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"):
        error = modeled_error(v2.update(job_id, target, status_details={"x": "y"}))
        assert error.code == "InvalidStateTransition"
        assert (error.execution_state.status, error.execution_state.version_number) == (ending, 3)
        assert error.execution_state.status_details == (details or None)
    assert stored(iot, job_id, v2.thing) == (status, version, details)


def test_expected_version_as_integer_or_digit_string(iot, device, unique):
    job_id = create_job(iot, f"{unique}-a", [device.thing])

    device.accepted(f"{job_id}/update", {"status": "IN_PROGRESS", "expectedVersion": 1})
    device.accepted(f"{job_id}/update", {"status": "IN_PROGRESS", "expectedVersion": "2"})
    device.accepted(f"{job_id}/update", {"status": "SUCCEEDED", "expectedVersion": "3"})

    assert stored(iot, job_id, device.thing) == ("SUCCEEDED", 4, {})


def test_version_mismatch_reports_the_execution_state(iot, device, v2, unique):
    job_id = create_job(iot, f"{unique}-a", [device.thing, v2.thing])

    rejected = device.rejected(f"{job_id}/update", {"status": "IN_PROGRESS", "expectedVersion": 7})
    assert rejected.code == "VersionMismatch"
    assert rejected.body["executionState"] == {"status": "QUEUED", "versionNumber": 1}

    device.accepted(f"{job_id}/update", {"status": "IN_PROGRESS", "statusDetails": {"pct": "50"}})
    rejected = device.rejected(f"{job_id}/update", {"status": "SUCCEEDED", "expectedVersion": "1"})
    assert rejected.code == "VersionMismatch"
    assert rejected.body["executionState"] == {
        "status": "IN_PROGRESS",
        "statusDetails": {"pct": "50"},
        "versionNumber": 2,
    }
    assert stored(iot, job_id, device.thing) == ("IN_PROGRESS", 2, {"pct": "50"})

    error = modeled_error(v2.update(job_id, "SUCCEEDED", expected_version=0))
    assert error.code == "VersionMismatch"
    assert (error.execution_state.status, error.execution_state.version_number) == ("QUEUED", 1)
    assert error.execution_state.status_details is None


@pytest.mark.parametrize("expected", ["abc", "1.0", " 1", "", -1, 1.5, True, [1], {"v": 1}], ids=repr)
def test_malformed_expected_version_is_invalid_request(iot, device, unique, expected):
    job_id = create_job(iot, f"{unique}-a", [device.thing])
    reply = device.rejected(f"{job_id}/update", {"status": "IN_PROGRESS", "expectedVersion": expected})
    assert reply.code == "InvalidRequest"
    assert stored(iot, job_id, device.thing) == ("QUEUED", 1, {})


def test_status_details_replace_the_map_when_present_and_stay_when_absent(iot, device, unique):
    job_id = create_job(iot, f"{unique}-a", [device.thing])
    path = f"{job_id}/update"

    device.accepted(path, {"status": "IN_PROGRESS", "statusDetails": {"a": "1", "b": "2"}})
    assert stored(iot, job_id, device.thing) == ("IN_PROGRESS", 2, {"a": "1", "b": "2"})
    device.accepted(path, {"status": "IN_PROGRESS", "statusDetails": {"c": "3"}})
    assert stored(iot, job_id, device.thing) == ("IN_PROGRESS", 3, {"c": "3"})
    device.accepted(path, {"status": "IN_PROGRESS"})
    assert stored(iot, job_id, device.thing) == ("IN_PROGRESS", 4, {"c": "3"})
    state = device.accepted(path, {"status": "IN_PROGRESS", "includeJobExecutionState": True})
    assert state["executionState"] == {
        "status": "IN_PROGRESS",
        "statusDetails": {"c": "3"},
        "versionNumber": 5,
    }
    device.accepted(path, {"status": "SUCCEEDED", "statusDetails": {}})
    assert stored(iot, job_id, device.thing) == ("SUCCEEDED", 6, {})
    assert "statusDetails" not in device.rejected(path, {"status": "FAILED"}).body["executionState"]


ALLOWED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-"


@pytest.mark.parametrize(
    "details",
    [
        {f"k{i}": str(i) for i in range(10)},
        {ALLOWED: "v"},
        {"k" * 128: "v"},
        {"k": "v" * 1024},
        {"log": "line one\n\tline two\r\n"},
        {"k": "unicode ✓ ok"},
    ],
    ids=["ten-pairs", "every-key-character", "key-128", "value-1024", "tab-newline-return", "unicode"],
)
def test_status_details_within_limits_are_accepted(iot, device, unique, details):
    job_id = create_job(iot, f"{unique}-a", [device.thing])
    device.accepted(f"{job_id}/update", {"status": "IN_PROGRESS", "statusDetails": details})
    assert stored(iot, job_id, device.thing) == ("IN_PROGRESS", 2, details)
    assert device.accepted(f"{job_id}/get")["execution"]["statusDetails"] == details


@pytest.mark.parametrize(
    "details",
    [
        {f"k{i}": str(i) for i in range(11)},
        {"k" * 129: "v"},
        {"": "v"},
        {"a.b": "v"},
        {"a b": "v"},
        {"a/b": "v"},
        {"ключ": "v"},
        {"k": ""},
        {"k": "v" * 1025},
        {"k": 1},
        {"k": True},
        {"k": None},
        {"k": ["v"]},
        {"k": {"nested": "v"}},
        {"k": "nul\x00"},
        {"k": "bell\x07"},
        {"k": "escape\x1b[0m"},
        {"k": "delete\x7f"},
        {"k": "c1\x85"},
        ["k", "v"],
        "k=v",
    ],
    ids=[
        "eleven-pairs",
        "key-129",
        "empty-key",
        "key-dot",
        "key-space",
        "key-slash",
        "key-non-ascii",
        "empty-value",
        "value-1025",
        "number",
        "boolean",
        "null",
        "list",
        "object",
        "nul",
        "bell",
        "escape",
        "delete",
        "c1-control",
        "not-a-map-list",
        "not-a-map-string",
    ],
)
def test_status_details_outside_limits_are_invalid_request(iot, device, unique, details):
    job_id = create_job(iot, f"{unique}-a", [device.thing])
    device.accepted(f"{job_id}/update", {"status": "IN_PROGRESS", "statusDetails": {"kept": "yes"}})

    reply = device.rejected(f"{job_id}/update", {"status": "SUCCEEDED", "statusDetails": details})

    assert reply.code == "InvalidRequest"
    assert stored(iot, job_id, device.thing) == ("IN_PROGRESS", 2, {"kept": "yes"})


def test_execution_number_selects_which_execution_to_update(iot, device, unique):
    group = f"{unique}-g"
    iot.create_thing_group(thingGroupName=group)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=device.thing)
    job_id = f"{unique}-cont"
    iot.create_job(jobId=job_id, document="{}", targets=[group_arn(group)], targetSelection="CONTINUOUS")
    iot.remove_thing_from_thing_group(thingGroupName=group, thingName=device.thing)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=device.thing)
    path = f"{job_id}/update"

    old = device.rejected(path, {"status": "IN_PROGRESS", "executionNumber": 1})
    assert old.code == "InvalidStateTransition"
    assert old.body["executionState"] == {"status": "REMOVED", "versionNumber": 2}
    assert device.rejected(path, {"status": "IN_PROGRESS", "executionNumber": 5}).code == "ResourceNotFound"
    state = device.accepted(
        path, {"status": "IN_PROGRESS", "executionNumber": 2, "includeJobExecutionState": True}
    )["executionState"]
    assert state == {"status": "IN_PROGRESS", "versionNumber": 2}
    assert device.accepted(f"{job_id}/get", {"executionNumber": 1})["execution"]["status"] == "REMOVED"


def test_include_flags_add_state_and_document(iot, device, v2, unique):
    job_id = create_job(iot, f"{unique}-a", [device.thing, v2.thing], document='{"fw": "2.1", "n": [1]}')
    path = f"{job_id}/update"

    plain = device.accepted(path, {"status": "IN_PROGRESS"})
    assert set(plain) == {"clientToken", "timestamp"}
    off = device.accepted(
        path, {"status": "IN_PROGRESS", "includeJobExecutionState": False, "includeJobDocument": False}
    )
    assert set(off) == {"clientToken", "timestamp"}
    state = device.accepted(path, {"status": "IN_PROGRESS", "includeJobExecutionState": True})
    assert set(state) == {"clientToken", "timestamp", "executionState"}
    assert state["executionState"] == {"status": "IN_PROGRESS", "versionNumber": 4}
    document = device.accepted(path, {"status": "IN_PROGRESS", "includeJobDocument": True})
    assert set(document) == {"clientToken", "timestamp", "jobDocument"}
    assert document["jobDocument"] == {"fw": "2.1", "n": [1]}

    both = v2.update(
        job_id,
        "SUCCEEDED",
        status_details={"done": "yes"},
        include_job_execution_state=True,
        include_job_document=True,
    ).result(10)
    assert both.job_document == {"fw": "2.1", "n": [1]}
    assert (both.execution_state.status, both.execution_state.version_number) == ("SUCCEEDED", 2)
    assert both.execution_state.status_details == {"done": "yes"}


@pytest.mark.parametrize("minutes", [1, 10080, -1])
def test_step_timeout_in_range_or_minus_one_is_accepted(iot, v2, unique, minutes):
    job_id = create_job(iot, f"{unique}-a", [v2.thing])
    v2.update(job_id, "IN_PROGRESS", step_timeout_in_minutes=minutes).result(10)
    assert stored(iot, job_id, v2.thing)[:2] == ("IN_PROGRESS", 2)


@pytest.mark.parametrize("minutes", [0, 10081, -2])
def test_step_timeout_out_of_range_is_invalid_request(iot, v2, unique, minutes):
    job_id = create_job(iot, f"{unique}-a", [v2.thing])
    assert modeled_error(v2.update(job_id, "IN_PROGRESS", step_timeout_in_minutes=minutes)).code == (
        "InvalidRequest"
    )
    assert stored(iot, job_id, v2.thing)[:2] == ("QUEUED", 1)


def test_unknown_job_is_resource_not_found(iot, v2, device, unique):
    assert modeled_error(v2.update(f"{unique}-none", "SUCCEEDED")).code == "ResourceNotFound"
    other = create_job(iot, f"{unique}-other", [device.thing])
    assert modeled_error(v2.update(other, "SUCCEEDED")).code == "ResourceNotFound"
    assert stored(iot, other, device.thing) == ("QUEUED", 1, {})
