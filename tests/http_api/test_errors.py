"""Handler errors reach boto3 as the modeled exceptions; surprises become a bare 500."""

from __future__ import annotations

import logging

import pytest

from tests.http_api.conftest import ARN_PREFIX, TARGETS_FOR_ERRORS, signed_request


def test_resource_not_found_reaches_boto3(iot):
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as excinfo:
        iot.describe_job(jobId="j9")

    assert excinfo.value.response["Error"] == {
        "Code": "ResourceNotFoundException",
        "Message": "Job j9 does not exist",
    }
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert excinfo.value.response["ResponseMetadata"]["RequestId"]


def test_resource_already_exists_carries_extra_members(iot):
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as excinfo:
        iot.create_job(jobId="dup", targets=TARGETS_FOR_ERRORS, document="{}")

    response = excinfo.value.response
    assert response["Error"]["Code"] == "ResourceAlreadyExistsException"
    assert response["Error"]["Message"] == "Job dup already exists"
    assert response["resourceId"] == "dup"
    assert response["resourceArn"] == f"{ARN_PREFIX}:job/dup"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_unexpected_exception_is_logged_and_answered_with_a_generic_500(iot, caplog):
    with (
        caplog.at_level(logging.ERROR, logger="iot_jobs_bridge.jobs_service.http_api"),
        pytest.raises(iot.exceptions.InternalFailureException) as excinfo,
    ):
        iot.describe_job(jobId="boom")

    response = excinfo.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert response["Error"]["Message"] == "An internal error occurred while processing the request"
    assert "secret internals" not in str(response)
    [record] = [r for r in caplog.records if r.name == "iot_jobs_bridge.jobs_service.http_api"]
    assert record.getMessage() == "Handler for DescribeJob failed"
    assert record.exc_info is not None


def test_operation_without_handler_is_an_invalid_request(iot):
    with pytest.raises(iot.exceptions.InvalidRequestException) as excinfo:
        iot.delete_job(jobId="j1")

    assert excinfo.value.response["Error"]["Message"] == "Operation DeleteJob is not supported by this server"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_route_is_404_unknown_operation(base_url):
    response = signed_request(base_url, "GET", "/no/such/route")

    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert response.json() == {"message": "No iot operation matches GET /no/such/route"}
    assert response.headers["x-amzn-RequestId"]


def test_known_path_with_unmodeled_method_is_unknown_operation(base_url):
    response = signed_request(base_url, "POST", "/thing-groups/addThingToThingGroup/extra")

    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"
