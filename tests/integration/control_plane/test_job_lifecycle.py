"""UpdateJob, CancelJob, DeleteJob and AssociateTargetsWithJob."""

import pytest

from ._support import (
    create_things,
    device,
    executions_by_thing,
    fails_with,
    finish,
    group_arn,
    job_arn,
    process_details,
    start,
    thing_arn,
    wait_until_deleted,
)

ROLLOUT = {"maximumPerMinute": 300}
ABORT = {
    "criteriaList": [
        {
            "failureType": "ALL",
            "action": "CANCEL",
            "thresholdPercentage": 80.0,
            "minNumberOfExecutedThings": 5,
        }
    ]
}
RETRY = {"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 1}]}
PRESIGNED = {"roleArn": "arn:aws:iam::123456789012:role/jobs-s3-access", "expiresInSec": 900}


# -- UpdateJob ---------------------------------------------------------------
def test_update_job_changes_the_description_and_the_five_configs(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    iot.create_job(
        jobId=f"{unique}-j",
        document="{}",
        targets=[target],
        description="before",
        timeoutConfig={"inProgressTimeoutInMinutes": 5},
    )
    before = iot.describe_job(jobId=f"{unique}-j")["job"]
    iot.update_job(
        jobId=f"{unique}-j",
        description="after",
        presignedUrlConfig=PRESIGNED,
        jobExecutionsRolloutConfig=ROLLOUT,
        abortConfig=ABORT,
        timeoutConfig={"inProgressTimeoutInMinutes": 60},
        jobExecutionsRetryConfig=RETRY,
    )
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert job["description"] == "after"
    assert job["presignedUrlConfig"] == PRESIGNED
    assert job["jobExecutionsRolloutConfig"] == ROLLOUT
    assert job["abortConfig"] == ABORT
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 60}
    assert job["jobExecutionsRetryConfig"] == RETRY
    assert job["lastUpdatedAt"] >= before["lastUpdatedAt"]
    assert (job["status"], job["createdAt"], job["targets"]) == ("IN_PROGRESS", before["createdAt"], [target])

    # Fields left out of an update keep their values.
    iot.update_job(jobId=f"{unique}-j", description="again")
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert job["description"] == "again"
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 60}
    assert job["abortConfig"] == ABORT


def test_update_unknown_job(iot, unique):
    with fails_with(iot, "ResourceNotFoundException", 404, f"Job {unique}-nope does not exist"):
        iot.update_job(jobId=f"{unique}-nope", description="x")


def test_timeout_cannot_change_once_an_execution_started(server, iot, unique):
    started, waiting = create_things(iot, f"{unique}-started", f"{unique}-waiting")
    iot.create_job(
        jobId=f"{unique}-j",
        document="{}",
        targets=[started, waiting],
        timeoutConfig={"inProgressTimeoutInMinutes": 30},
    )
    iot.update_job(jobId=f"{unique}-j", timeoutConfig={"inProgressTimeoutInMinutes": 20})
    start(server, f"{unique}-started", f"{unique}-j")
    with fails_with(
        iot,
        "InvalidRequestException",
        400,
        f"The timeout of job {unique}-j cannot change once one of its executions has started",
    ):
        iot.update_job(jobId=f"{unique}-j", timeoutConfig={"inProgressTimeoutInMinutes": 10})
    assert iot.describe_job(jobId=f"{unique}-j")["job"]["timeoutConfig"] == {"inProgressTimeoutInMinutes": 20}
    # The other settings may still change.
    iot.update_job(jobId=f"{unique}-j", description="still editable", abortConfig=ABORT)
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert (job["description"], job["abortConfig"]) == ("still editable", ABORT)


# -- CancelJob ---------------------------------------------------------------
def test_cancel_job_cancels_queued_executions_and_leaves_running_ones(server, iot, unique):
    queued, running, done = create_things(iot, f"{unique}-q", f"{unique}-r", f"{unique}-s")
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[queued, running, done], description="d")
    start(server, f"{unique}-r", f"{unique}-j")
    finish(server, f"{unique}-s", f"{unique}-j", "SUCCEEDED")
    version_before = iot.describe_job_execution(jobId=f"{unique}-j", thingName=f"{unique}-q")["execution"][
        "versionNumber"
    ]

    canceled = iot.cancel_job(jobId=f"{unique}-j", reasonCode="BAD_BUILD_42", comment="firmware recalled")
    assert (canceled["jobArn"], canceled["jobId"], canceled["description"]) == (
        job_arn(f"{unique}-j"),
        f"{unique}-j",
        "d",
    )
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert (job["status"], job["forceCanceled"], job["reasonCode"], job["comment"]) == (
        "CANCELED",
        False,
        "BAD_BUILD_42",
        "firmware recalled",
    )
    assert job["jobProcessDetails"] == process_details(
        numberOfCanceledThings=1, numberOfInProgressThings=1, numberOfSucceededThings=1
    )
    queued_execution = iot.describe_job_execution(jobId=f"{unique}-j", thingName=f"{unique}-q")["execution"]
    assert (queued_execution["status"], queued_execution["forceCanceled"]) == ("CANCELED", False)
    assert queued_execution["versionNumber"] == version_before + 1
    assert executions_by_thing(iot, f"{unique}-j") == {
        f"{unique}-q": [(1, "CANCELED")],
        f"{unique}-r": [(1, "IN_PROGRESS")],
        f"{unique}-s": [(1, "SUCCEEDED")],
    }

    # Canceled again without force: refused.
    with fails_with(iot, "InvalidRequestException", 400, f"Job {unique}-j is already canceled"):
        iot.cancel_job(jobId=f"{unique}-j")

    # With force: the remaining IN_PROGRESS execution is canceled too.
    iot.cancel_job(jobId=f"{unique}-j", force=True)
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert (job["status"], job["forceCanceled"], job["reasonCode"], job["comment"]) == (
        "CANCELED",
        True,
        "BAD_BUILD_42",
        "firmware recalled",
    )
    assert job["jobProcessDetails"] == process_details(numberOfCanceledThings=2, numberOfSucceededThings=1)
    running_execution = iot.describe_job_execution(jobId=f"{unique}-j", thingName=f"{unique}-r")["execution"]
    assert (running_execution["status"], running_execution["forceCanceled"]) == ("CANCELED", True)

    with fails_with(iot, "InvalidRequestException", 400, f"Job {unique}-j is already canceled"):
        iot.cancel_job(jobId=f"{unique}-j", force=True)
    with fails_with(iot, "InvalidRequestException", 400):
        iot.cancel_job(jobId=f"{unique}-j")


def test_force_cancel_cancels_running_executions(server, iot, unique):
    queued, running = create_things(iot, f"{unique}-q", f"{unique}-r")
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[queued, running])
    start(server, f"{unique}-r", f"{unique}-j")
    iot.cancel_job(jobId=f"{unique}-j", force=True)
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert (job["status"], job["forceCanceled"]) == ("CANCELED", True)
    assert "reasonCode" not in job
    assert job["jobProcessDetails"] == process_details(numberOfCanceledThings=2)
    running_execution = iot.describe_job_execution(jobId=f"{unique}-j", thingName=f"{unique}-r")["execution"]
    assert (running_execution["status"], running_execution["forceCanceled"]) == ("CANCELED", True)
    queued_execution = iot.describe_job_execution(jobId=f"{unique}-j", thingName=f"{unique}-q")["execution"]
    assert (queued_execution["status"], queued_execution["forceCanceled"]) == ("CANCELED", False)
    with fails_with(iot, "InvalidRequestException", 400):
        iot.cancel_job(jobId=f"{unique}-j", force=True)


def test_a_completed_job_cannot_be_canceled(server, iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[target])
    finish(server, f"{unique}-t", f"{unique}-j", "SUCCEEDED")
    assert iot.describe_job(jobId=f"{unique}-j")["job"]["status"] == "COMPLETED"
    with fails_with(
        iot, "InvalidRequestException", 400, f"Job {unique}-j is COMPLETED; it cannot be canceled"
    ):
        iot.cancel_job(jobId=f"{unique}-j")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.cancel_job(jobId=f"{unique}-j", force=True)
    assert iot.describe_job(jobId=f"{unique}-j")["job"]["status"] == "COMPLETED"


def test_cancel_unknown_job(iot, unique):
    with fails_with(iot, "ResourceNotFoundException", 404, f"Job {unique}-nope does not exist"):
        iot.cancel_job(jobId=f"{unique}-nope")


def test_cancel_job_validates_reason_code(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[target])
    with fails_with(iot, "InvalidRequestException", 400, match="regular expression pattern"):
        iot.cancel_job(jobId=f"{unique}-j", reasonCode="lower case")
    assert iot.describe_job(jobId=f"{unique}-j")["job"]["status"] == "IN_PROGRESS"


# -- DeleteJob ---------------------------------------------------------------
def test_delete_in_progress_job_needs_force(server, iot, unique):
    queued, running = create_things(iot, f"{unique}-q", f"{unique}-r")
    iot.create_job(jobId=f"{unique}-j", document='{"v": 1}', targets=[queued, running])
    start(server, f"{unique}-r", f"{unique}-j")
    with fails_with(
        iot,
        "InvalidStateTransitionException",
        409,
        f"Job {unique}-j is IN_PROGRESS; delete it with force=true, or cancel it first",
    ):
        iot.delete_job(jobId=f"{unique}-j")
    assert iot.describe_job(jobId=f"{unique}-j")["job"]["status"] == "IN_PROGRESS"

    iot.delete_job(jobId=f"{unique}-j", force=True)
    wait_until_deleted(iot, f"{unique}-j")
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.get_job_document(jobId=f"{unique}-j")
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job_execution(jobId=f"{unique}-j", thingName=f"{unique}-r")
    assert iot.list_job_executions_for_thing(thingName=f"{unique}-r")["executionSummaries"] == []
    with device(server, f"{unique}-r") as dev:
        assert dev.start_next() is None

    # The id is free again.
    iot.create_job(jobId=f"{unique}-j", document='{"v": 2}', targets=[queued])
    assert iot.get_job_document(jobId=f"{unique}-j")["document"] == '{"v": 2}'
    assert executions_by_thing(iot, f"{unique}-j") == {f"{unique}-q": [(1, "QUEUED")]}


def test_canceled_and_completed_jobs_delete_without_force(server, iot, unique):
    first, second = create_things(iot, f"{unique}-1", f"{unique}-2")
    iot.create_job(jobId=f"{unique}-canceled", document="{}", targets=[first])
    iot.cancel_job(jobId=f"{unique}-canceled")
    iot.create_job(jobId=f"{unique}-completed", document="{}", targets=[second])
    finish(server, f"{unique}-2", f"{unique}-completed", "FAILED")
    assert iot.describe_job(jobId=f"{unique}-completed")["job"]["status"] == "COMPLETED"

    iot.delete_job(jobId=f"{unique}-canceled")
    iot.delete_job(jobId=f"{unique}-completed")
    wait_until_deleted(iot, f"{unique}-canceled")
    wait_until_deleted(iot, f"{unique}-completed")
    assert iot.list_job_executions_for_thing(thingName=f"{unique}-1")["executionSummaries"] == []
    assert iot.list_job_executions_for_thing(thingName=f"{unique}-2")["executionSummaries"] == []


def test_delete_unknown_job(iot, unique):
    with fails_with(iot, "ResourceNotFoundException", 404, f"Job {unique}-nope does not exist"):
        iot.delete_job(jobId=f"{unique}-nope")
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.delete_job(jobId=f"{unique}-nope", force=True)


def test_requests_on_a_job_being_deleted(iot, unique):
    """Right after DeleteJob the job may still be DELETION_IN_PROGRESS, or already gone.

    Either way the id is not free for CreateJob until it is gone, and UpdateJob,
    CancelJob and DeleteJob are refused, never answered with a 5xx.
    """
    [target] = create_things(iot, f"{unique}-t")
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[target])
    iot.delete_job(jobId=f"{unique}-j", force=True)

    # InvalidRequest while DELETION_IN_PROGRESS, ResourceNotFound once the job is gone.
    while_deleting_or_gone = (
        iot.exceptions.InvalidRequestException,
        iot.exceptions.ResourceNotFoundException,
    )
    with pytest.raises(while_deleting_or_gone):
        iot.update_job(jobId=f"{unique}-j", description="x")
    with pytest.raises(while_deleting_or_gone):
        iot.cancel_job(jobId=f"{unique}-j")
    with pytest.raises(while_deleting_or_gone):
        iot.delete_job(jobId=f"{unique}-j", force=True)
    try:
        iot.create_job(jobId=f"{unique}-j", document="{}", targets=[target])
    except iot.exceptions.ResourceAlreadyExistsException:
        # Still DELETION_IN_PROGRESS at that moment; the id is free once the deletion finishes.
        wait_until_deleted(iot, f"{unique}-j")
        iot.create_job(jobId=f"{unique}-j", document="{}", targets=[target])
    assert iot.describe_job(jobId=f"{unique}-j")["job"]["status"] == "IN_PROGRESS"


# -- AssociateTargetsWithJob -------------------------------------------------
def test_associate_targets_with_a_continuous_job(iot, unique):
    first, second, third = create_things(iot, f"{unique}-1", f"{unique}-2", f"{unique}-3")
    iot.create_thing_group(thingGroupName=f"{unique}-g")
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g", thingName=f"{unique}-3")
    iot.create_job(
        jobId=f"{unique}-j", document="{}", targets=[first], targetSelection="CONTINUOUS", description="grow"
    )
    associated = iot.associate_targets_with_job(
        jobId=f"{unique}-j", targets=[second, group_arn(f"{unique}-g"), first], comment="more devices"
    )
    assert (associated["jobArn"], associated["jobId"], associated["description"]) == (
        job_arn(f"{unique}-j"),
        f"{unique}-j",
        "grow",
    )
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert sorted(set(job["targets"])) == sorted([first, second, group_arn(f"{unique}-g")])
    assert job["jobProcessDetails"] == process_details(numberOfQueuedThings=3)
    assert executions_by_thing(iot, f"{unique}-j") == {
        f"{unique}-1": [(1, "QUEUED")],
        f"{unique}-2": [(1, "QUEUED")],
        f"{unique}-3": [(1, "QUEUED")],
    }
    assert third == thing_arn(f"{unique}-3")

    with fails_with(iot, "ResourceNotFoundException", 404, f"Thing {unique}-ghost does not exist"):
        iot.associate_targets_with_job(jobId=f"{unique}-j", targets=[thing_arn(f"{unique}-ghost")])
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.associate_targets_with_job(jobId=f"{unique}-nope", targets=[first])
    after_refusals = iot.describe_job(jobId=f"{unique}-j")["job"]["targets"]
    assert sorted(set(after_refusals)) == sorted([first, second, group_arn(f"{unique}-g")])


def test_associate_targets_refuses_snapshot_and_canceled_jobs(iot, unique):
    first, second = create_things(iot, f"{unique}-1", f"{unique}-2")
    iot.create_job(jobId=f"{unique}-snap", document="{}", targets=[first])
    with fails_with(
        iot,
        "InvalidRequestException",
        400,
        f"Job {unique}-snap is a snapshot job; targets can be added to continuous jobs only",
    ):
        iot.associate_targets_with_job(jobId=f"{unique}-snap", targets=[second])

    iot.create_job(jobId=f"{unique}-cont", document="{}", targets=[first], targetSelection="CONTINUOUS")
    iot.cancel_job(jobId=f"{unique}-cont")
    with fails_with(
        iot,
        "InvalidRequestException",
        400,
        f"Job {unique}-cont is CANCELED; targets can be added only while IN_PROGRESS",
    ):
        iot.associate_targets_with_job(jobId=f"{unique}-cont", targets=[second])
    assert iot.list_job_executions_for_thing(thingName=f"{unique}-2")["executionSummaries"] == []


def test_associate_targets_beyond_100(iot, unique, many_things):
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=many_things[:60], targetSelection="CONTINUOUS")
    iot.associate_targets_with_job(jobId=f"{unique}-j", targets=many_things[60:100])
    with fails_with(iot, "LimitExceededException", 410, "A job can have at most 100 targets, not 101"):
        iot.associate_targets_with_job(jobId=f"{unique}-j", targets=many_things[100:])
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert sorted(set(job["targets"])) == sorted(many_things[:100])
    assert job["jobProcessDetails"] == process_details(numberOfQueuedThings=100)
