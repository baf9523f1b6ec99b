"""boto3 `iot` calls reach handlers with model-typed params and get their results back."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from tests.http_api.conftest import ARN_PREFIX, signed_request


def test_create_thing_reaches_handler_and_returns_its_dict(iot, calls):
    reply = iot.create_thing(thingName="t1")

    assert calls.log == [("CreateThing", {"thingName": "t1"})]
    assert reply["thingName"] == "t1"
    assert reply["thingArn"] == f"{ARN_PREFIX}:thing/t1"
    assert reply["thingId"] == "0001"


def test_describe_job_takes_the_path_label(iot, calls):
    reply = iot.describe_job(jobId="job-7")

    assert calls.last("DescribeJob") == {"jobId": "job-7"}
    assert reply["job"]["jobId"] == "job-7"
    assert reply["job"]["createdAt"] == dt.datetime(2017, 2, 10, 0, 37, 59, 743000, tzinfo=dt.UTC)


def test_list_jobs_query_parameters_are_typed(iot, calls):
    iot.list_jobs(status="IN_PROGRESS", maxResults=10)

    assert calls.last("ListJobs") == {"status": "IN_PROGRESS", "maxResults": 10}


def test_create_job_nested_body_is_keyed_by_member_names(iot, calls):
    iot.create_job(
        jobId="job-1",
        targets=[f"{ARN_PREFIX}:thing/t1", f"{ARN_PREFIX}:thinggroup/g1"],
        document="{}",
        timeoutConfig={"inProgressTimeoutInMinutes": 30},
        abortConfig={
            "criteriaList": [
                {
                    "failureType": "FAILED",
                    "action": "CANCEL",
                    "thresholdPercentage": 50,
                    "minNumberOfExecutedThings": 2,
                }
            ]
        },
        documentParameters={"url": "https://example.invalid/fw.bin"},
    )

    assert calls.last("CreateJob") == {
        "jobId": "job-1",
        "targets": [f"{ARN_PREFIX}:thing/t1", f"{ARN_PREFIX}:thinggroup/g1"],
        "document": "{}",
        "timeoutConfig": {"inProgressTimeoutInMinutes": 30},
        "abortConfig": {
            "criteriaList": [
                {
                    "failureType": "FAILED",
                    "action": "CANCEL",
                    "thresholdPercentage": 50.0,
                    "minNumberOfExecutedThings": 2,
                }
            ]
        },
        "documentParameters": {"url": "https://example.invalid/fw.bin"},
    }
    assert isinstance(calls.last("CreateJob")["abortConfig"]["criteriaList"][0]["thresholdPercentage"], float)


def test_literal_path_with_put_is_add_thing_to_thing_group(iot, calls):
    iot.add_thing_to_thing_group(thingGroupName="g1", thingName="t1")

    assert calls.log == [("AddThingToThingGroup", {"thingGroupName": "g1", "thingName": "t1"})]


def test_group_named_like_the_literal_segment_is_still_create_thing_group(iot, calls):
    reply = iot.create_thing_group(thingGroupName="addThingToThingGroup")

    assert calls.log == [("CreateThingGroup", {"thingGroupName": "addThingToThingGroup"})]
    assert reply["thingGroupName"] == "addThingToThingGroup"


def test_label_needing_percent_encoding_round_trips(iot, calls):
    reply = iot.describe_thing(thingName="plant:line-2:t_1")

    assert calls.last("DescribeThing") == {"thingName": "plant:line-2:t_1"}
    assert reply["thingName"] == "plant:line-2:t_1"


def test_long_path_label_and_boolean_query_are_typed(iot, calls):
    iot.delete_job_execution(jobId="j1", thingName="t1", executionNumber=3, force=True)

    assert calls.last("DeleteJobExecution") == {
        "jobId": "j1",
        "thingName": "t1",
        "executionNumber": 3,
        "force": True,
    }


def test_handler_returning_none_answers_empty_object(base_url):
    body = json.dumps({"thingGroupName": "g1", "thingName": "t1"}).encode()
    response = signed_request(base_url, "PUT", "/thing-groups/addThingToThingGroup", body=body)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}


def test_request_id_is_in_response_metadata(iot):
    reply = iot.create_thing(thingName="t2")

    request_id = reply["ResponseMetadata"]["RequestId"]
    assert len(request_id) == 36
    assert reply["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"] == request_id


def test_nulls_are_dropped_recursively(base_url):
    response = signed_request(base_url, "GET", "/jobs/job-3")

    assert response.status_code == 200
    assert "null" not in response.text
    job = response.json()["job"]
    assert "description" not in job
    assert job["targets"] == [f"{ARN_PREFIX}:thing/t1"]
    assert job["jobProcessDetails"] == {"numberOfQueuedThings": 1}
    assert "documentSource" not in response.json()


def test_error_responses_also_carry_a_request_id(base_url):
    response = httpx.get(f"{base_url}/jobs/job-3")

    assert response.headers["x-amzn-RequestId"]


def test_query_values_with_reserved_characters_round_trip(iot, calls):
    token = "a b+c/d=e&f%g~é"

    iot.list_jobs(nextToken=token, thingGroupName="g:1")

    assert calls.last("ListJobs") == {"nextToken": token, "thingGroupName": "g:1"}


def test_non_ascii_label_is_decoded_before_validation(iot):
    with pytest.raises(iot.exceptions.InvalidRequestException) as excinfo:
        iot.describe_thing(thingName="thermostat-é")

    assert excinfo.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'thermostat-é' at 'thingName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+"
    )
