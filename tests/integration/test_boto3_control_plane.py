"""boto3 against the real control plane: things, groups, jobs, executions, errors."""

import datetime
import json

import pytest


def test_things_and_groups(iot, unique):
    created = iot.create_thing(thingName=f"{unique}-a", attributePayload={"attributes": {"model": "x1"}})
    assert created["thingArn"] == f"arn:aws:iot:us-east-1:123456789012:thing/{unique}-a"
    # Same name, same settings: the existing thing comes back.
    again = iot.create_thing(thingName=f"{unique}-a", attributePayload={"attributes": {"model": "x1"}})
    assert (again["thingId"], again["thingArn"]) == (created["thingId"], created["thingArn"])
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_thing(thingName=f"{unique}-a", attributePayload={"attributes": {"model": "x2"}})

    described = iot.describe_thing(thingName=f"{unique}-a")
    assert (
        described["thingName"],
        described["defaultClientId"],
        described["attributes"],
        described["version"],
    ) == (f"{unique}-a", f"{unique}-a", {"model": "x1"}, 1)
    assert described["thingId"] == created["thingId"]

    iot.create_thing(thingName=f"{unique}-b")
    group = iot.create_thing_group(thingGroupName=f"{unique}-g")
    iot.create_thing_group(thingGroupName=f"{unique}-child", parentGroupName=f"{unique}-g")
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g", thingName=f"{unique}-a")
    iot.add_thing_to_thing_group(
        thingGroupArn=group["thingGroupArn"].replace(f"{unique}-g", f"{unique}-child"),
        thingArn=f"arn:aws:iot:us-east-1:123456789012:thing/{unique}-b",
    )
    assert iot.list_things_in_thing_group(thingGroupName=f"{unique}-g")["things"] == [f"{unique}-a"]
    assert iot.list_things_in_thing_group(thingGroupName=f"{unique}-g", recursive=True)["things"] == [
        f"{unique}-a",
        f"{unique}-b",
    ]
    child = iot.describe_thing_group(thingGroupName=f"{unique}-child")
    assert child["thingGroupMetadata"]["parentGroupName"] == f"{unique}-g"

    matching = iot.list_things(attributeName="model", attributeValue="x1")["things"]
    assert [t["thingName"] for t in matching if t["thingName"].startswith(unique)] == [f"{unique}-a"]


def test_list_things_paginates(iot, unique):
    for i in range(5):
        iot.create_thing(thingName=f"{unique}-p{i}", attributePayload={"attributes": {"batch": unique}})
    pages = iot.get_paginator("list_things").paginate(
        attributeName="batch", attributeValue=unique, PaginationConfig={"PageSize": 2}
    )
    names = [t["thingName"] for page in pages for t in page["things"]]
    assert names == [f"{unique}-p{i}" for i in range(5)]


def test_job_lifecycle_as_seen_by_the_control_plane(iot, unique):
    iot.create_thing(thingName=f"{unique}-1")
    iot.create_thing(thingName=f"{unique}-2")
    group = iot.create_thing_group(thingGroupName=f"{unique}-g")
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g", thingName=f"{unique}-2")
    document = json.dumps({"operation": "reboot", "pad": "x" * 30000})
    created = iot.create_job(
        jobId=f"{unique}-job",
        document=document,
        description="reboot all",
        targets=[f"arn:aws:iot:us-east-1:123456789012:thing/{unique}-1", group["thingGroupArn"]],
        timeoutConfig={"inProgressTimeoutInMinutes": 10},
    )
    assert created["jobArn"] == f"arn:aws:iot:us-east-1:123456789012:job/{unique}-job"
    assert created["description"] == "reboot all"

    job = iot.describe_job(jobId=f"{unique}-job")["job"]
    assert job["status"] == "IN_PROGRESS"
    assert job["targetSelection"] == "SNAPSHOT"
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 10}
    assert isinstance(job["createdAt"], datetime.datetime)
    assert job["jobProcessDetails"] == {
        "numberOfCanceledThings": 0,
        "numberOfSucceededThings": 0,
        "numberOfFailedThings": 0,
        "numberOfRejectedThings": 0,
        "numberOfQueuedThings": 2,
        "numberOfInProgressThings": 0,
        "numberOfRemovedThings": 0,
        "numberOfTimedOutThings": 0,
    }
    assert iot.get_job_document(jobId=f"{unique}-job")["document"] == document

    summaries = iot.list_job_executions_for_job(jobId=f"{unique}-job")["executionSummaries"]
    assert sorted(s["thingArn"].rsplit("/", 1)[1] for s in summaries) == [f"{unique}-1", f"{unique}-2"]
    assert all(s["jobExecutionSummary"]["status"] == "QUEUED" for s in summaries)

    for_thing = iot.list_job_executions_for_thing(thingName=f"{unique}-2", status="QUEUED")[
        "executionSummaries"
    ]
    assert [s["jobId"] for s in for_thing] == [f"{unique}-job"]

    execution = iot.describe_job_execution(jobId=f"{unique}-job", thingName=f"{unique}-1")["execution"]
    assert (execution["status"], execution["versionNumber"], execution["executionNumber"]) == ("QUEUED", 1, 1)
    assert execution["statusDetails"] == {"detailsMap": {}}
    assert "startedAt" not in execution


def test_errors_map_to_boto3_exceptions(iot, unique):
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as missing:
        iot.describe_job(jobId=f"{unique}-nope")
    assert missing.value.response["Error"]["Message"] == f"Job {unique}-nope does not exist"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    with pytest.raises(
        iot.exceptions.ResourceNotFoundException, match=f"Thing {unique}-ghost does not exist"
    ):
        iot.create_job(
            jobId=f"{unique}-j",
            document="{}",
            targets=[f"arn:aws:iot:us-east-1:123456789012:thing/{unique}-ghost"],
        )
    iot.create_thing(thingName=f"{unique}-t")
    target = [f"arn:aws:iot:us-east-1:123456789012:thing/{unique}-t"]
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=target)
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_job(jobId=f"{unique}-j", document="{}", targets=target)
    with pytest.raises(iot.exceptions.InvalidRequestException, match="regular expression pattern"):
        iot.create_job(jobId="has space", document="{}", targets=target)
    with pytest.raises(iot.exceptions.InvalidRequestException, match="length less than or equal to 32768"):
        iot.create_job(jobId=f"{unique}-big", document=json.dumps({"x": "y" * 32768}), targets=target)
    with pytest.raises(iot.exceptions.InvalidRequestException, match="must be a JSON object"):
        iot.create_job(jobId=f"{unique}-arr", document="[]", targets=target)
    with pytest.raises(iot.exceptions.InvalidRequestException, match="region eu-west-1"):
        iot.create_job(
            jobId=f"{unique}-eu",
            document="{}",
            targets=[f"arn:aws:iot:eu-west-1:123456789012:thing/{unique}-t"],
        )
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job_execution(jobId=f"{unique}-j", thingName=f"{unique}-t", executionNumber=5)


def test_wrong_secret_is_refused(server):
    iot = server.iot(secret="not-the-secret")
    with pytest.raises(iot.exceptions.ClientError) as refused:
        iot.list_things()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
