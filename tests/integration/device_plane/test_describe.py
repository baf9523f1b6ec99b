"""DescribeJobExecution on ``<jobId>/get`` and ``$next/get``."""

import pytest

from ._support import create_job, group_arn, is_int, modeled_error

EXECUTION_FIELDS = {
    "jobId",
    "thingName",
    "status",
    "statusDetails",
    "queuedAt",
    "startedAt",
    "lastUpdatedAt",
    "versionNumber",
    "executionNumber",
    "jobDocument",
    "approximateSecondsBeforeTimedOut",
}


def test_describe_returns_the_execution_with_its_document_by_default(iot, device, unique):
    job_id = create_job(iot, f"{unique}-a", [device.thing], document='{"cmd": "reboot", "n": 2}')

    body = device.accepted(f"{job_id}/get")

    assert set(body) == {"execution", "clientToken", "timestamp"}
    execution = body["execution"]
    assert set(execution) <= EXECUTION_FIELDS
    assert (execution["jobId"], execution["status"]) == (job_id, "QUEUED")
    assert (execution["versionNumber"], execution["executionNumber"]) == (1, 1)
    assert execution["jobDocument"] == {"cmd": "reboot", "n": 2}
    assert is_int(execution["queuedAt"]) and is_int(execution["lastUpdatedAt"])
    assert "startedAt" not in execution and "statusDetails" not in execution

    without = device.accepted(f"{job_id}/get", {"includeJobDocument": False})["execution"]
    assert "jobDocument" not in without
    assert {k: v for k, v in execution.items() if k != "jobDocument"} == without
    assert device.accepted(f"{job_id}/get", {"includeJobDocument": True})["execution"] == execution


def test_next_describes_the_head_without_changing_it(iot, device, unique):
    head = create_job(iot, f"{unique}-a", [device.thing], document='{"first": true}')
    create_job(iot, f"{unique}-b", [device.thing])

    reply = device.request("$next/get")

    assert reply.topic == f"{device.prefix}/$next/get/accepted"
    execution = reply.body["execution"]
    assert (execution["jobId"], execution["status"], execution["versionNumber"]) == (head, "QUEUED", 1)
    assert execution["jobDocument"] == {"first": True}
    assert device.pending() == ([], [head, f"{unique}-b"])

    device.accepted(f"{unique}-b/update", {"status": "IN_PROGRESS", "statusDetails": {"p": "1"}})
    execution = device.accepted("$next/get")["execution"]
    assert (execution["jobId"], execution["status"]) == (f"{unique}-b", "IN_PROGRESS")
    assert execution["statusDetails"] == {"p": "1"}


def test_next_with_nothing_pending_is_accepted_without_execution(iot, device, v2, unique):
    assert set(device.accepted("$next/get")) == {"clientToken", "timestamp"}
    assert v2.describe("$next").result(10).execution is None

    job_id = create_job(iot, f"{unique}-a", [v2.thing])
    v2.update(job_id, "SUCCEEDED").result(10)
    assert v2.describe("$next").result(10).execution is None


def test_unknown_job_is_resource_not_found(iot, device, v2, unique):
    assert modeled_error(v2.describe(f"{unique}-nothing")).code == "ResourceNotFound"
    # A job that exists but does not target this thing.
    other = create_job(iot, f"{unique}-other", [device.thing])
    assert modeled_error(v2.describe(other)).code == "ResourceNotFound"


def test_execution_number_selects_one_execution(iot, device, unique):
    group = f"{unique}-g"
    iot.create_thing_group(thingGroupName=group)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=device.thing)
    job_id = f"{unique}-cont"
    iot.create_job(
        jobId=job_id, document='{"c": 1}', targets=[group_arn(group)], targetSelection="CONTINUOUS"
    )
    iot.remove_thing_from_thing_group(thingGroupName=group, thingName=device.thing)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=device.thing)

    latest = device.accepted(f"{job_id}/get")["execution"]
    assert (latest["executionNumber"], latest["status"]) == (2, "QUEUED")
    second = device.accepted(f"{job_id}/get", {"executionNumber": 2})["execution"]
    assert second == latest
    # The first execution ended REMOVED while its (continuous) job is still IN_PROGRESS.
    first = device.accepted(f"{job_id}/get", {"executionNumber": 1})["execution"]
    assert (first["executionNumber"], first["status"], first["versionNumber"]) == (1, "REMOVED", 2)

    assert device.rejected(f"{job_id}/get", {"executionNumber": 3}).code == "ResourceNotFound"


def test_terminal_execution_of_a_completed_job_is_terminal_state_reached(iot, v2, unique):
    job_id = create_job(iot, f"{unique}-a", [v2.thing])
    v2.update(job_id, "SUCCEEDED").result(10)
    assert iot.describe_job(jobId=job_id)["job"]["status"] == "COMPLETED"

    error = modeled_error(v2.describe(job_id))

    assert error.code == "TerminalStateReached"


@pytest.mark.parametrize("force", [False, True])
def test_terminal_execution_of_a_canceled_job_is_terminal_state_reached(iot, connect, unique, force):
    queued, running = connect("q"), connect("r")
    job_id = create_job(iot, f"{unique}-a", [queued.thing, running.thing])
    running.accepted(f"{job_id}/update", {"status": "IN_PROGRESS"})

    iot.cancel_job(jobId=job_id, force=force)

    assert queued.rejected(f"{job_id}/get").code == "TerminalStateReached"
    if force:
        assert running.rejected(f"{job_id}/get").code == "TerminalStateReached"
    else:
        # Left running by a cancel without force: not terminal, so it is described.
        assert running.accepted(f"{job_id}/get")["execution"]["status"] == "IN_PROGRESS"


def test_terminal_execution_of_a_job_still_in_progress_is_described(iot, connect, unique):
    done, waiting = connect("done"), connect("waiting")
    job_id = create_job(iot, f"{unique}-a", [done.thing, waiting.thing])
    done.accepted(f"{job_id}/update", {"status": "REJECTED", "statusDetails": {"why": "busy"}})
    assert iot.describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"

    execution = done.accepted(f"{job_id}/get")["execution"]

    assert (execution["status"], execution["versionNumber"]) == ("REJECTED", 2)
    assert execution["statusDetails"] == {"why": "busy"}
