"""Jobs: CreateJob, DescribeJob, ListJobs, GetJobDocument, and CreateJob's validation."""

import datetime
import json

import pytest

from ._support import (
    create_things,
    device,
    executions_by_thing,
    fails_with,
    group_arn,
    job_arn,
    process_details,
    thing_arn,
)

ROLLOUT = {
    "maximumPerMinute": 500,
    "exponentialRate": {
        "baseRatePerMinute": 50,
        "incrementFactor": 2.0,
        "rateIncreaseCriteria": {"numberOfNotifiedThings": 10},
    },
}
ABORT = {
    "criteriaList": [
        {
            "failureType": "FAILED",
            "action": "CANCEL",
            "thresholdPercentage": 25.5,
            "minNumberOfExecutedThings": 4,
        }
    ]
}
TIMEOUT = {"inProgressTimeoutInMinutes": 30}
RETRY = {"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 2}]}
PRESIGNED = {"roleArn": "arn:aws:iam::123456789012:role/jobs-s3-access", "expiresInSec": 600}


def _later(days: int) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M")


def test_create_job_response(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    created = iot.create_job(
        jobId=f"{unique}-described", document="{}", targets=[target], description="hello"
    )
    assert created.pop("ResponseMetadata")["RequestId"]
    assert created == {
        "jobArn": job_arn(f"{unique}-described"),
        "jobId": f"{unique}-described",
        "description": "hello",
    }

    bare = iot.create_job(jobId=f"{unique}-bare", document="{}", targets=[target])
    bare.pop("ResponseMetadata")
    assert bare == {"jobArn": job_arn(f"{unique}-bare"), "jobId": f"{unique}-bare"}


def test_describe_job_returns_the_stored_configs(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    scheduling = {"endTime": _later(30), "endBehavior": "STOP_ROLLOUT"}
    iot.create_job(
        jobId=f"{unique}-j",
        document='{"op": "reboot"}',
        targets=[target],
        description="all configs",
        presignedUrlConfig=PRESIGNED,
        jobExecutionsRolloutConfig=ROLLOUT,
        abortConfig=ABORT,
        timeoutConfig=TIMEOUT,
        jobExecutionsRetryConfig=RETRY,
        schedulingConfig=scheduling,
    )
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert job["jobArn"] == job_arn(f"{unique}-j")
    assert job["jobId"] == f"{unique}-j"
    assert job["targetSelection"] == "SNAPSHOT"
    assert job["status"] == "IN_PROGRESS"
    assert job["forceCanceled"] is False
    assert job["targets"] == [target]
    assert job["description"] == "all configs"
    assert job["presignedUrlConfig"] == PRESIGNED
    assert job["jobExecutionsRolloutConfig"] == ROLLOUT
    assert job["abortConfig"] == ABORT
    assert job["timeoutConfig"] == TIMEOUT
    assert job["jobExecutionsRetryConfig"] == RETRY
    assert job["schedulingConfig"] == scheduling
    assert job["isConcurrent"] is False
    assert isinstance(job["createdAt"], datetime.datetime)
    assert isinstance(job["lastUpdatedAt"], datetime.datetime)
    assert job["jobProcessDetails"] == process_details(numberOfQueuedThings=1)
    for absent in ("completedAt", "reasonCode", "comment", "documentSource", "jobTemplateArn"):
        assert absent not in job


def test_describe_unknown_job(iot, unique):
    with fails_with(iot, "ResourceNotFoundException", 404, f"Job {unique}-nope does not exist"):
        iot.describe_job(jobId=f"{unique}-nope")
    with fails_with(iot, "ResourceNotFoundException", 404, f"Job {unique}-nope does not exist"):
        iot.get_job_document(jobId=f"{unique}-nope")


def test_process_details_follow_every_execution_change(server, iot, unique):
    names = {key: f"{unique}-{key}" for key in ("run", "ok", "fail", "reject", "cancel", "remove", "wait")}
    job_id = f"{unique}-j"
    iot.create_job(jobId=job_id, document="{}", targets=create_things(iot, *names.values()))
    assert iot.describe_job(jobId=job_id)["job"]["jobProcessDetails"] == process_details(
        numberOfQueuedThings=7
    )

    def details():
        return iot.describe_job(jobId=job_id)["job"]["jobProcessDetails"]

    with device(server, names["run"]) as dev:
        dev.start_next()
    assert details() == process_details(numberOfQueuedThings=6, numberOfInProgressThings=1)
    with device(server, names["ok"]) as dev:
        dev.finish(job_id, "SUCCEEDED")
    with device(server, names["fail"]) as dev:
        dev.finish(job_id, "FAILED")
    with device(server, names["reject"]) as dev:
        dev.finish(job_id, "REJECTED")
    assert details() == process_details(
        numberOfQueuedThings=3,
        numberOfInProgressThings=1,
        numberOfSucceededThings=1,
        numberOfFailedThings=1,
        numberOfRejectedThings=1,
    )
    iot.cancel_job_execution(jobId=job_id, thingName=names["cancel"])
    iot.delete_thing(thingName=names["remove"])
    assert details() == process_details(
        numberOfQueuedThings=1,
        numberOfInProgressThings=1,
        numberOfSucceededThings=1,
        numberOfFailedThings=1,
        numberOfRejectedThings=1,
        numberOfCanceledThings=1,
        numberOfRemovedThings=1,
    )
    assert iot.describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"

    with device(server, names["run"]) as dev:
        dev.update(job_id, "SUCCEEDED")
    with device(server, names["wait"]) as dev:
        dev.finish(job_id, "SUCCEEDED")
    job = iot.describe_job(jobId=job_id)["job"]
    assert job["jobProcessDetails"] == process_details(
        numberOfSucceededThings=3,
        numberOfFailedThings=1,
        numberOfRejectedThings=1,
        numberOfCanceledThings=1,
        numberOfRemovedThings=1,
    )
    assert job["status"] == "COMPLETED"
    assert job["completedAt"] >= job["createdAt"]


def test_targets_resolve_groups_with_descendants_and_each_thing_once(iot, unique):
    [direct] = create_things(iot, f"{unique}-direct")
    create_things(iot, f"{unique}-member", f"{unique}-nested", f"{unique}-outside")
    iot.create_thing_group(thingGroupName=f"{unique}-g")
    iot.create_thing_group(thingGroupName=f"{unique}-sub", parentGroupName=f"{unique}-g")
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g", thingName=f"{unique}-member")
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g", thingName=f"{unique}-direct")
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-sub", thingName=f"{unique}-nested")

    targets = [direct, group_arn(f"{unique}-g"), direct]
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=targets)
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert sorted(set(job["targets"])) == sorted([direct, group_arn(f"{unique}-g")])
    assert job["jobProcessDetails"] == process_details(numberOfQueuedThings=3)
    assert executions_by_thing(iot, f"{unique}-j") == {
        f"{unique}-direct": [(1, "QUEUED")],
        f"{unique}-member": [(1, "QUEUED")],
        f"{unique}-nested": [(1, "QUEUED")],
    }


def test_get_job_document_returns_the_text_as_given(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    document = '{ "operation" : "install",\n  "packages": ["a", "b"], "unicode": "gr\\u00fc\\u00df" }'
    iot.create_job(jobId=f"{unique}-j", document=document, targets=[target])
    assert iot.get_job_document(jobId=f"{unique}-j")["document"] == document
    assert iot.get_job_document(jobId=f"{unique}-j", beforeSubstitution=True)["document"] == document


def test_a_document_of_exactly_the_limit_is_accepted(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    document = json.dumps({"pad": ""})
    document = json.dumps({"pad": "x" * (32768 - len(document))})
    assert len(document) == 32768
    iot.create_job(jobId=f"{unique}-j", document=document, targets=[target])
    assert iot.get_job_document(jobId=f"{unique}-j")["document"] == document


def test_duplicate_job_id(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[target])
    with fails_with(iot, "ResourceAlreadyExistsException", 409, f"Job {unique}-j already exists") as caught:
        iot.create_job(jobId=f"{unique}-j", document='{"other": 1}', targets=[target])
    assert caught.value.response["resourceId"] == f"{unique}-j"
    assert caught.value.response["resourceArn"] == job_arn(f"{unique}-j")
    assert iot.get_job_document(jobId=f"{unique}-j")["document"] == "{}"


def test_unknown_targets(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    with fails_with(iot, "ResourceNotFoundException", 404, f"Thing {unique}-ghost does not exist"):
        iot.create_job(jobId=f"{unique}-j", document="{}", targets=[target, thing_arn(f"{unique}-ghost")])
    with fails_with(iot, "ResourceNotFoundException", 404, f"Thing group {unique}-ghost does not exist"):
        iot.create_job(jobId=f"{unique}-j", document="{}", targets=[target, group_arn(f"{unique}-ghost")])
    # Nothing was created by the refused requests.
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job(jobId=f"{unique}-j")
    assert iot.list_job_executions_for_thing(thingName=f"{unique}-t")["executionSummaries"] == []


@pytest.mark.parametrize(
    "target",
    [
        "arn:aws:iot:eu-west-1:123456789012:thing/{u}-t",
        "arn:aws:iot:us-east-1:999999999999:thing/{u}-t",
        "arn:aws:iot:us-east-1:123456789012:job/{u}-t",
        "{u}-t",
    ],
)
def test_foreign_or_malformed_target_arns(iot, unique, target):
    create_things(iot, f"{unique}-t")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job(jobId=f"{unique}-j", document="{}", targets=[target.format(u=unique)])


def test_more_than_100_targets(iot, unique, many_things):
    with fails_with(iot, "LimitExceededException", 410, "A job can have at most 100 targets, not 101"):
        iot.create_job(jobId=f"{unique}-j", document="{}", targets=many_things)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job(jobId=f"{unique}-j")
    iot.create_job(jobId=f"{unique}-hundred", document="{}", targets=many_things[:100])
    job = iot.describe_job(jobId=f"{unique}-hundred")["job"]
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 100


@pytest.mark.parametrize(
    ("document", "match"),
    [
        ("[]", "^The job document must be a JSON object$"),
        ('"text"', "^The job document must be a JSON object$"),
        ("42", "^The job document must be a JSON object$"),
        ("null", "^The job document must be a JSON object$"),
        ("not json at all", "^The job document is not valid JSON: "),
        ('{"unterminated": ', "^The job document is not valid JSON: "),
    ],
)
def test_document_must_be_a_json_object(iot, unique, document, match):
    [target] = create_things(iot, f"{unique}-t")
    with fails_with(iot, "InvalidRequestException", 400, match=match):
        iot.create_job(jobId=f"{unique}-j", document=document, targets=[target])


def test_document_sources(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    template = iot.create_job_template(jobTemplateId=f"{unique}-tpl", description="d", document="{}")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job(
            jobId=f"{unique}-j", documentSource="https://s3.amazonaws.com/bucket/job.json", targets=[target]
        )
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job(
            jobId=f"{unique}-j", document="{}", jobTemplateArn=template["jobTemplateArn"], targets=[target]
        )
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job(jobId=f"{unique}-j", targets=[target])
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job(jobId=f"{unique}-j", document="{}", documentParameters={"a": "b"}, targets=[target])
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job(jobId=f"{unique}-j")


def test_validation_botocore_leaves_to_the_server(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    long_id = "j" * 65
    with fails_with(
        iot,
        "InvalidRequestException",
        400,
        f"1 validation error detected: Value '{long_id}' at 'jobId' failed to satisfy constraint: "
        "Member must have length less than or equal to 64",
    ):
        iot.create_job(jobId=long_id, document="{}", targets=[target])
    with fails_with(
        iot,
        "InvalidRequestException",
        400,
        "1 validation error detected: Value 'a b' at 'jobId' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+",
    ):
        iot.create_job(jobId="a b", document="{}", targets=[target])
    with fails_with(iot, "InvalidRequestException", 400, match="enum value set"):
        iot.create_job(jobId=f"{unique}-j", document="{}", targets=[target], targetSelection="BOGUS")
    with fails_with(iot, "InvalidRequestException", 400, match="length less than or equal to 32768"):
        iot.create_job(jobId=f"{unique}-j", document=json.dumps({"x": "y" * 32768}), targets=[target])
    with fails_with(iot, "InvalidRequestException", 400, match="value less than or equal to 250"):
        iot.list_jobs(maxResults=251)
    with fails_with(iot, "InvalidRequestException", 400, match="length less than or equal to 2028"):
        iot.create_job(jobId=f"{unique}-j", document="{}", targets=[target], description="d" * 2029)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job(jobId=f"{unique}-j")


@pytest.mark.parametrize("minutes", [0, 10081])
def test_in_progress_timeout_is_one_minute_to_seven_days(iot, unique, minutes):
    [target] = create_things(iot, f"{unique}-t")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job(
            jobId=f"{unique}-j",
            document="{}",
            targets=[target],
            timeoutConfig={"inProgressTimeoutInMinutes": minutes},
        )
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job(jobId=f"{unique}-j")
    iot.create_job(
        jobId=f"{unique}-ok", document="{}", targets=[target], timeoutConfig={"inProgressTimeoutInMinutes": 1}
    )
    with fails_with(iot, "InvalidRequestException", 400):
        iot.update_job(jobId=f"{unique}-ok", timeoutConfig={"inProgressTimeoutInMinutes": minutes})
    assert iot.describe_job(jobId=f"{unique}-ok")["job"]["timeoutConfig"] == {"inProgressTimeoutInMinutes": 1}


def test_list_jobs_is_newest_first(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    iot.create_thing_group(thingGroupName=f"{unique}-g")
    for i in range(4):
        iot.create_job(jobId=f"{unique}-j{i}", document="{}", targets=[target, group_arn(f"{unique}-g")])
    listed = iot.list_jobs(thingGroupName=f"{unique}-g")["jobs"]
    assert [job["jobId"] for job in listed] == [f"{unique}-j{i}" for i in (3, 2, 1, 0)]
    created = [job["createdAt"] for job in listed]
    assert created == sorted(created, reverse=True)
    everything = [job["jobId"] for page in iot.get_paginator("list_jobs").paginate() for job in page["jobs"]]
    assert [job_id for job_id in everything if job_id.startswith(unique)] == [
        f"{unique}-j{i}" for i in (3, 2, 1, 0)
    ]


def test_list_jobs_filters(iot, unique):
    [thing] = create_things(iot, f"{unique}-t")
    group = iot.create_thing_group(thingGroupName=f"{unique}-g")
    iot.create_thing_group(thingGroupName=f"{unique}-other")
    targets = [thing, group["thingGroupArn"]]
    iot.create_job(jobId=f"{unique}-snap", document="{}", targets=targets)
    iot.create_job(jobId=f"{unique}-cont", document="{}", targets=targets, targetSelection="CONTINUOUS")
    iot.create_job(jobId=f"{unique}-canc", document="{}", targets=targets)
    iot.cancel_job(jobId=f"{unique}-canc")
    iot.create_job(jobId=f"{unique}-elsewhere", document="{}", targets=[group_arn(f"{unique}-other")])
    iot.create_job(jobId=f"{unique}-thing-only", document="{}", targets=[thing])
    iot.create_job(jobId=f"{unique}-ns", document="{}", targets=[thing], namespaceId=f"{unique}-ns")

    def ids(**filters):
        pages = iot.get_paginator("list_jobs").paginate(**filters)
        return [job["jobId"] for page in pages for job in page["jobs"] if job["jobId"].startswith(unique)]

    in_group = [f"{unique}-canc", f"{unique}-cont", f"{unique}-snap"]
    assert ids(thingGroupName=f"{unique}-g") == in_group
    assert ids(thingGroupId=group["thingGroupId"]) == in_group
    assert ids(namespaceId=f"{unique}-ns") == [f"{unique}-ns"]
    assert ids(thingGroupName=f"{unique}-g", thingGroupId=group["thingGroupId"]) == in_group
    assert ids(thingGroupName=f"{unique}-g", targetSelection="CONTINUOUS") == [f"{unique}-cont"]
    assert ids(thingGroupName=f"{unique}-g", targetSelection="SNAPSHOT") == [
        f"{unique}-canc",
        f"{unique}-snap",
    ]
    assert ids(thingGroupName=f"{unique}-g", status="CANCELED") == [f"{unique}-canc"]
    assert ids(thingGroupName=f"{unique}-g", status="IN_PROGRESS") == [f"{unique}-cont", f"{unique}-snap"]
    assert ids(thingGroupName=f"{unique}-g", status="COMPLETED") == []

    # The status and targetSelection filters alone, across every job on the server.
    canceled = [
        job for page in iot.get_paginator("list_jobs").paginate(status="CANCELED") for job in page["jobs"]
    ]
    assert {job["status"] for job in canceled} == {"CANCELED"}
    assert [job["jobId"] for job in canceled if job["jobId"].startswith(unique)] == [f"{unique}-canc"]
    continuous = [
        job
        for page in iot.get_paginator("list_jobs").paginate(targetSelection="CONTINUOUS")
        for job in page["jobs"]
    ]
    assert {job["targetSelection"] for job in continuous} == {"CONTINUOUS"}
    assert [job["jobId"] for job in continuous if job["jobId"].startswith(unique)] == [f"{unique}-cont"]

    summary = iot.list_jobs(thingGroupName=f"{unique}-g", targetSelection="CONTINUOUS")["jobs"][0]
    assert summary["jobArn"] == job_arn(f"{unique}-cont")
    assert summary["thingGroupId"] == group["thingGroupId"]
    assert (summary["targetSelection"], summary["status"], summary["isConcurrent"]) == (
        "CONTINUOUS",
        "IN_PROGRESS",
        False,
    )
    assert isinstance(summary["createdAt"], datetime.datetime)
    assert isinstance(summary["lastUpdatedAt"], datetime.datetime)


def test_list_jobs_with_an_unknown_group(iot, unique):
    with fails_with(iot, "ResourceNotFoundException", 404, f"Thing group {unique}-ghost does not exist"):
        iot.list_jobs(thingGroupName=f"{unique}-ghost")
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.list_jobs(thingGroupId="00000000-0000-0000-0000-000000000000")
    with fails_with(iot, "InvalidRequestException", 400, match="enum value set"):
        iot.list_jobs(status="FINISHED")
