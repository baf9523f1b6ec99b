"""Job executions: list, describe, CancelJobExecution and DeleteJobExecution."""

import datetime

import pytest

from ._support import (
    create_things,
    device,
    executions_by_thing,
    fails_with,
    finish,
    process_details,
    start,
    thing_arn,
)


def _execution(iot, job_id, thing, execution_number=None):
    extra = {} if execution_number is None else {"executionNumber": execution_number}
    return iot.describe_job_execution(jobId=job_id, thingName=thing, **extra)["execution"]


# -- describe and list ---------------------------------------------------------
def test_describe_job_execution_as_a_device_moves_it(server, iot, unique):
    thing = f"{unique}-t"
    create_things(iot, thing)
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[thing_arn(thing)])
    queued = _execution(iot, f"{unique}-j", thing)
    assert queued["jobId"] == f"{unique}-j"
    assert queued["thingArn"] == thing_arn(thing)
    assert (
        queued["status"],
        queued["forceCanceled"],
        queued["executionNumber"],
        queued["versionNumber"],
    ) == (
        "QUEUED",
        False,
        1,
        1,
    )
    assert queued["statusDetails"] == {"detailsMap": {}}
    assert isinstance(queued["queuedAt"], datetime.datetime)
    assert "startedAt" not in queued
    assert "thingName" not in queued

    with device(server, thing) as dev:
        dev.start_next(status_details={"step": "download"})
        running = _execution(iot, f"{unique}-j", thing)
        assert (running["status"], running["versionNumber"]) == ("IN_PROGRESS", 2)
        assert running["statusDetails"] == {"detailsMap": {"step": "download"}}
        assert running["startedAt"] >= running["queuedAt"]
        dev.update(f"{unique}-j", "SUCCEEDED", status_details={"step": "done", "exit": "0"})
    done = _execution(iot, f"{unique}-j", thing, execution_number=1)
    assert (done["status"], done["versionNumber"]) == ("SUCCEEDED", 3)
    assert done["statusDetails"] == {"detailsMap": {"step": "done", "exit": "0"}}
    assert done["lastUpdatedAt"] >= done["startedAt"]


def test_describe_unknown_executions(iot, unique):
    thing = f"{unique}-t"
    create_things(iot, thing)
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[thing_arn(thing)])
    with fails_with(
        iot, "ResourceNotFoundException", 404, f"Job execution {unique}-j on {unique}-other does not exist"
    ):
        iot.describe_job_execution(jobId=f"{unique}-j", thingName=f"{unique}-other")
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job_execution(jobId=f"{unique}-nope", thingName=thing)
    with fails_with(
        iot,
        "ResourceNotFoundException",
        404,
        f"Job execution {unique}-j on {thing} with execution number 2 does not exist",
    ):
        iot.describe_job_execution(jobId=f"{unique}-j", thingName=thing, executionNumber=2)


def test_list_job_executions_for_job(server, iot, unique):
    names = [f"{unique}-{i}" for i in range(4)]
    create_things(iot, *names)
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[thing_arn(name) for name in names])
    start(server, names[1], f"{unique}-j")
    finish(server, names[2], f"{unique}-j", "SUCCEEDED")

    summaries = iot.list_job_executions_for_job(jobId=f"{unique}-j")["executionSummaries"]
    assert sorted(item["thingArn"] for item in summaries) == [thing_arn(name) for name in names]
    by_thing = {item["thingArn"]: item["jobExecutionSummary"] for item in summaries}
    running = by_thing[thing_arn(names[1])]
    assert (running["status"], running["executionNumber"]) == ("IN_PROGRESS", 1)
    assert isinstance(running["startedAt"], datetime.datetime)
    assert isinstance(running["queuedAt"], datetime.datetime)
    assert isinstance(running["lastUpdatedAt"], datetime.datetime)
    assert "startedAt" not in by_thing[thing_arn(names[0])]

    def with_status(status):
        found = iot.list_job_executions_for_job(jobId=f"{unique}-j", status=status)["executionSummaries"]
        return sorted(item["thingArn"] for item in found)

    assert with_status("QUEUED") == [thing_arn(names[0]), thing_arn(names[3])]
    assert with_status("IN_PROGRESS") == [thing_arn(names[1])]
    assert with_status("SUCCEEDED") == [thing_arn(names[2])]
    assert with_status("CANCELED") == []

    with fails_with(iot, "ResourceNotFoundException", 404, f"Job {unique}-nope does not exist"):
        iot.list_job_executions_for_job(jobId=f"{unique}-nope")
    with fails_with(iot, "InvalidRequestException", 400, match="enum value set"):
        iot.list_job_executions_for_job(jobId=f"{unique}-j", status="DONE")


def test_list_job_executions_for_thing(server, iot, unique):
    thing = f"{unique}-t"
    create_things(iot, thing)
    for i in range(3):
        iot.create_job(jobId=f"{unique}-j{i}", document="{}", targets=[thing_arn(thing)])
    finish(server, thing, f"{unique}-j0", "REJECTED")

    summaries = iot.list_job_executions_for_thing(thingName=thing)["executionSummaries"]
    assert sorted(item["jobId"] for item in summaries) == [f"{unique}-j{i}" for i in range(3)]
    by_job = {item["jobId"]: item["jobExecutionSummary"] for item in summaries}
    assert (by_job[f"{unique}-j0"]["status"], by_job[f"{unique}-j0"]["executionNumber"]) == ("REJECTED", 1)

    queued = iot.list_job_executions_for_thing(thingName=thing, status="QUEUED")["executionSummaries"]
    assert sorted(item["jobId"] for item in queued) == [f"{unique}-j1", f"{unique}-j2"]
    one = iot.list_job_executions_for_thing(thingName=thing, jobId=f"{unique}-j2")["executionSummaries"]
    assert [item["jobId"] for item in one] == [f"{unique}-j2"]

    with fails_with(iot, "ResourceNotFoundException", 404, f"Thing {unique}-ghost does not exist"):
        iot.list_job_executions_for_thing(thingName=f"{unique}-ghost")
    with fails_with(iot, "InvalidRequestException", 400, match="value less than or equal to 250"):
        iot.list_job_executions_for_thing(thingName=thing, maxResults=251)


# -- CancelJobExecution --------------------------------------------------------
def test_cancel_a_queued_execution(iot, unique):
    first, second = f"{unique}-1", f"{unique}-2"
    create_things(iot, first, second)
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[thing_arn(first), thing_arn(second)])

    with fails_with(
        iot,
        "VersionConflictException",
        409,
        f"Job execution {unique}-j on {first} is at version 1, not 3",
    ):
        iot.cancel_job_execution(jobId=f"{unique}-j", thingName=first, expectedVersion=3)
    assert _execution(iot, f"{unique}-j", first)["status"] == "QUEUED"

    iot.cancel_job_execution(jobId=f"{unique}-j", thingName=first, expectedVersion=1)
    canceled = _execution(iot, f"{unique}-j", first)
    assert (canceled["status"], canceled["versionNumber"], canceled["forceCanceled"]) == (
        "CANCELED",
        2,
        False,
    )
    assert canceled["statusDetails"] == {"detailsMap": {}}
    assert iot.describe_job(jobId=f"{unique}-j")["job"]["jobProcessDetails"] == process_details(
        numberOfQueuedThings=1, numberOfCanceledThings=1
    )

    with fails_with(
        iot,
        "InvalidStateTransitionException",
        409,
        f"Job execution {unique}-j on {first} is CANCELED; it cannot be canceled",
    ):
        iot.cancel_job_execution(jobId=f"{unique}-j", thingName=first)
    with fails_with(iot, "InvalidStateTransitionException", 409):
        iot.cancel_job_execution(jobId=f"{unique}-j", thingName=first, force=True)

    # statusDetails given with the cancel replace the stored map.
    iot.cancel_job_execution(jobId=f"{unique}-j", thingName=second, statusDetails={"reason": "operator"})
    assert _execution(iot, f"{unique}-j", second)["statusDetails"] == {"detailsMap": {"reason": "operator"}}
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert job["jobProcessDetails"] == process_details(numberOfCanceledThings=2)
    assert job["status"] == "COMPLETED"


def test_cancel_a_running_execution(server, iot, unique):
    thing = f"{unique}-t"
    create_things(iot, thing)
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[thing_arn(thing)])
    with device(server, thing) as dev:
        dev.start_next(status_details={"a": "1", "b": "2"})
        with fails_with(
            iot,
            "InvalidStateTransitionException",
            409,
            f"Job execution {unique}-j on {thing} is IN_PROGRESS; cancel it with force=true",
        ):
            iot.cancel_job_execution(jobId=f"{unique}-j", thingName=thing)
        assert _execution(iot, f"{unique}-j", thing)["status"] == "IN_PROGRESS"
        with fails_with(iot, "VersionConflictException", 409):
            iot.cancel_job_execution(jobId=f"{unique}-j", thingName=thing, force=True, expectedVersion=1)

        iot.cancel_job_execution(
            jobId=f"{unique}-j", thingName=thing, force=True, expectedVersion=2, statusDetails={"c": "3"}
        )
        canceled = _execution(iot, f"{unique}-j", thing)
        assert (canceled["status"], canceled["forceCanceled"], canceled["versionNumber"]) == (
            "CANCELED",
            True,
            3,
        )
        assert canceled["statusDetails"] == {"detailsMap": {"c": "3"}}
        # The device learns that its execution ended.
        outcome, reply = dev.request(f"{unique}-j/update", {"status": "SUCCEEDED"})
        assert (outcome, reply["code"]) == ("rejected", "InvalidStateTransition")


def test_cancel_without_status_details_keeps_them(server, iot, unique):
    thing = f"{unique}-t"
    create_things(iot, thing)
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[thing_arn(thing)])
    with device(server, thing) as dev:
        dev.start_next(status_details={"progress": "40%"})
    iot.cancel_job_execution(jobId=f"{unique}-j", thingName=thing, force=True)
    assert _execution(iot, f"{unique}-j", thing)["statusDetails"] == {"detailsMap": {"progress": "40%"}}


def test_cancel_unknown_execution(iot, unique):
    thing = f"{unique}-t"
    create_things(iot, thing)
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[thing_arn(thing)])
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.cancel_job_execution(jobId=f"{unique}-nope", thingName=thing)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.cancel_job_execution(jobId=f"{unique}-j", thingName=f"{unique}-ghost")


@pytest.mark.parametrize(
    "details",
    [
        pytest.param({"bad key": "v"}, id="key-pattern"),
        pytest.param({f"k{i}": "v" for i in range(11)}, id="eleven-pairs"),
        pytest.param({"k": "v" * 1025}, id="value-over-1024"),
    ],
)
def test_cancel_execution_validates_status_details(iot, unique, details):
    thing = f"{unique}-t"
    create_things(iot, thing)
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[thing_arn(thing)])
    with fails_with(iot, "InvalidRequestException", 400):
        iot.cancel_job_execution(jobId=f"{unique}-j", thingName=thing, statusDetails=details)
    assert _execution(iot, f"{unique}-j", thing)["status"] == "QUEUED"


# -- DeleteJobExecution --------------------------------------------------------
def test_delete_queued_and_terminal_executions(server, iot, unique):
    queued, done = f"{unique}-q", f"{unique}-d"
    create_things(iot, queued, done)
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[thing_arn(queued), thing_arn(done)])
    finish(server, done, f"{unique}-j", "FAILED")

    iot.delete_job_execution(jobId=f"{unique}-j", thingName=queued, executionNumber=1)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job_execution(jobId=f"{unique}-j", thingName=queued, executionNumber=1)
    iot.delete_job_execution(jobId=f"{unique}-j", thingName=done, executionNumber=1)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job_execution(jobId=f"{unique}-j", thingName=done, executionNumber=1)
    assert executions_by_thing(iot, f"{unique}-j") == {}
    assert iot.list_job_executions_for_thing(thingName=queued)["executionSummaries"] == []
    with device(server, queued) as dev:
        assert dev.start_next() is None

    with fails_with(
        iot,
        "ResourceNotFoundException",
        404,
        f"Job execution {unique}-j on {queued} with execution number 1 does not exist",
    ):
        iot.delete_job_execution(jobId=f"{unique}-j", thingName=queued, executionNumber=1)


def test_delete_a_running_execution_needs_force(server, iot, unique):
    thing = f"{unique}-t"
    create_things(iot, thing)
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[thing_arn(thing)])
    start(server, thing, f"{unique}-j")
    with fails_with(
        iot,
        "InvalidStateTransitionException",
        409,
        f"Job execution {unique}-j on {thing} is IN_PROGRESS; delete it with force=true",
    ):
        iot.delete_job_execution(jobId=f"{unique}-j", thingName=thing, executionNumber=1)
    assert _execution(iot, f"{unique}-j", thing, 1)["status"] == "IN_PROGRESS"

    iot.delete_job_execution(jobId=f"{unique}-j", thingName=thing, executionNumber=1, force=True)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job_execution(jobId=f"{unique}-j", thingName=thing, executionNumber=1)


def test_delete_unknown_execution(iot, unique):
    thing = f"{unique}-t"
    create_things(iot, thing)
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[thing_arn(thing)])
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.delete_job_execution(jobId=f"{unique}-j", thingName=thing, executionNumber=2)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.delete_job_execution(jobId=f"{unique}-nope", thingName=thing, executionNumber=1)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.delete_job_execution(jobId=f"{unique}-j", thingName=f"{unique}-ghost", executionNumber=1)
    assert _execution(iot, f"{unique}-j", thing, 1)["status"] == "QUEUED"
