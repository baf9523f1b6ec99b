"""StartNextPendingJobExecution: start the head once, return an IN_PROGRESS head unchanged."""

import datetime

import pytest

from ._support import create_job, is_int, modeled_error


def test_start_next_starts_the_head_and_applies_status_details(iot, device, unique):
    head = create_job(iot, f"{unique}-a", [device.thing], document='{"step": 1, "nested": {"k": [1, 2]}}')
    second = create_job(iot, f"{unique}-b", [device.thing])

    body = device.accepted("start-next", {"statusDetails": {"phase": "download"}})

    assert set(body) == {"execution", "clientToken", "timestamp"}
    execution = body["execution"]
    assert (execution["jobId"], execution["status"]) == (head, "IN_PROGRESS")
    assert (execution["versionNumber"], execution["executionNumber"]) == (2, 1)
    assert execution["statusDetails"] == {"phase": "download"}
    assert execution["jobDocument"] == {"step": 1, "nested": {"k": [1, 2]}}
    assert all(is_int(execution[k]) for k in ("queuedAt", "startedAt", "lastUpdatedAt"))
    assert execution["startedAt"] >= execution["queuedAt"]

    stored = iot.describe_job_execution(jobId=head, thingName=device.thing)["execution"]
    assert (stored["status"], stored["versionNumber"]) == ("IN_PROGRESS", 2)
    assert stored["statusDetails"] == {"detailsMap": {"phase": "download"}}
    assert "startedAt" in stored
    assert device.pending() == ([head], [second])


def test_an_in_progress_head_is_returned_unchanged(iot, device, unique):
    head = create_job(iot, f"{unique}-a", [device.thing])
    later = create_job(iot, f"{unique}-b", [device.thing])
    first = device.accepted("start-next", {"statusDetails": {"phase": "one"}})["execution"]

    again = device.accepted("start-next", {"statusDetails": {"phase": "two"}, "stepTimeoutInMinutes": 5})

    assert again["execution"] == first
    assert (again["execution"]["jobId"], again["execution"]["versionNumber"]) == (head, 2)
    stored = iot.describe_job_execution(jobId=head, thingName=device.thing)["execution"]
    assert (stored["versionNumber"], stored["statusDetails"]) == (2, {"detailsMap": {"phase": "one"}})
    untouched = iot.describe_job_execution(jobId=later, thingName=device.thing)["execution"]
    assert (untouched["status"], untouched["versionNumber"]) == ("QUEUED", 1)


def test_with_nothing_pending_the_reply_has_no_execution(iot, device, v2, unique):
    assert set(device.accepted("start-next")) == {"clientToken", "timestamp"}
    assert v2.start_next().result(10).execution is None

    job_id = create_job(iot, f"{unique}-a", [device.thing])
    device.accepted(f"{job_id}/update", {"status": "FAILED"})
    assert set(device.accepted("start-next")) == {"clientToken", "timestamp"}


def test_the_sdk_starts_the_next_job(iot, v2, unique):
    job_id = create_job(iot, f"{unique}-a", [v2.thing], document='{"url": "https://example.com/fw.bin"}')

    started = v2.start_next(status_details={"phase": "download"}).result(10)

    execution = started.execution
    assert (execution.job_id, execution.status, execution.version_number) == (job_id, "IN_PROGRESS", 2)
    assert execution.status_details == {"phase": "download"}
    assert execution.job_document == {"url": "https://example.com/fw.bin"}
    assert isinstance(execution.started_at, datetime.datetime)
    assert isinstance(started.timestamp, datetime.datetime)


@pytest.mark.parametrize("minutes", [1, 10080])
def test_step_timeout_in_range_is_accepted(iot, v2, unique, minutes):
    job_id = create_job(iot, f"{unique}-a", [v2.thing])
    started = v2.start_next(step_timeout_in_minutes=minutes).result(10)
    assert (started.execution.job_id, started.execution.status) == (job_id, "IN_PROGRESS")


@pytest.mark.parametrize("minutes", [0, 10081, -1])
def test_step_timeout_out_of_range_is_invalid_request_and_changes_nothing(iot, v2, unique, minutes):
    job_id = create_job(iot, f"{unique}-a", [v2.thing])

    error = modeled_error(v2.start_next(step_timeout_in_minutes=minutes, status_details={"a": "b"}))

    assert error.code == "InvalidRequest"
    stored = iot.describe_job_execution(jobId=job_id, thingName=v2.thing)["execution"]
    assert (stored["status"], stored["versionNumber"]) == ("QUEUED", 1)


@pytest.mark.parametrize(
    "body",
    [
        {"statusDetails": {f"k{i}": "v" for i in range(11)}},
        {"statusDetails": {"bad key": "v"}},
        {"statusDetails": {"k": 1}},
        {"statusDetails": "phase=one"},
        {"stepTimeoutInMinutes": "5"},
    ],
    ids=["eleven-pairs", "bad-key", "number-value", "not-a-map", "string-timeout"],
)
def test_bad_start_next_fields_are_invalid_request(iot, device, unique, body):
    job_id = create_job(iot, f"{unique}-a", [device.thing])
    assert device.rejected("start-next", body).code == "InvalidRequest"
    stored = iot.describe_job_execution(jobId=job_id, thingName=device.thing)["execution"]
    assert (stored["status"], stored["versionNumber"]) == ("QUEUED", 1)
