"""Constraints botocore leaves to the server: pinned AWS-style messages."""

from __future__ import annotations

import json

import botocore.session
import pytest

from iot_jobs_bridge.jobs_service.http_api.validation import validation_errors
from tests.http_api.conftest import ARN_PREFIX, signed_request

TARGETS = [f"{ARN_PREFIX}:thing/t1"]
PATTERN_ERROR = (
    "1 validation error detected: Value 'a b' at 'jobId' failed to satisfy constraint: "
    "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+"
)


def _message(excinfo: pytest.ExceptionInfo[Exception]) -> str:
    return excinfo.value.response["Error"]["Message"]  # type: ignore[attr-defined]


def test_pattern_violation(iot, calls):
    with pytest.raises(iot.exceptions.InvalidRequestException) as excinfo:
        iot.create_job(jobId="a b", targets=TARGETS, document="{}")

    assert _message(excinfo) == PATTERN_ERROR
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert calls.log == []


def test_too_long_job_id(iot):
    job_id = "j" * 65
    with pytest.raises(iot.exceptions.InvalidRequestException) as excinfo:
        iot.create_job(jobId=job_id, targets=TARGETS, document="{}")

    assert _message(excinfo) == (
        f"1 validation error detected: Value '{job_id}' at 'jobId' failed to satisfy constraint: "
        "Member must have length less than or equal to 64"
    )


def test_unknown_enum_value(iot):
    with pytest.raises(iot.exceptions.InvalidRequestException) as excinfo:
        iot.create_job(jobId="j1", targets=TARGETS, document="{}", targetSelection="BOGUS")

    assert _message(excinfo) == (
        "1 validation error detected: Value 'BOGUS' at 'targetSelection' failed to satisfy constraint: "
        "Member must satisfy enum value set: [CONTINUOUS, SNAPSHOT]"
    )


def test_max_results_over_range(iot):
    with pytest.raises(iot.exceptions.InvalidRequestException) as excinfo:
        iot.list_jobs(maxResults=1000)

    assert _message(excinfo) == (
        "1 validation error detected: Value '1000' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 250"
    )


def test_document_over_32768_characters(iot):
    document = json.dumps({"pad": "x" * 32768})
    with pytest.raises(iot.exceptions.InvalidRequestException) as excinfo:
        iot.create_job(jobId="j1", targets=TARGETS, document=document)

    assert _message(excinfo).startswith('1 validation error detected: Value \'{"pad": "xxx')
    assert _message(excinfo).endswith(
        "' at 'document' failed to satisfy constraint: Member must have length less than or equal to 32768"
    )


def test_several_errors_are_counted_and_joined(iot):
    with pytest.raises(iot.exceptions.InvalidRequestException) as excinfo:
        iot.create_job(
            jobId="a b",
            targets=TARGETS,
            document="{}",
            targetSelection="BOGUS",
            timeoutConfig={"inProgressTimeoutInMinutes": 5},
            abortConfig={
                "criteriaList": [
                    {
                        "failureType": "NOPE",
                        "action": "CANCEL",
                        "thresholdPercentage": 150,
                        "minNumberOfExecutedThings": 1,
                    }
                ]
            },
        )

    assert _message(excinfo) == (
        "4 validation errors detected: "
        "Value 'a b' at 'jobId' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+; "
        "Value 'BOGUS' at 'targetSelection' failed to satisfy constraint: "
        "Member must satisfy enum value set: [CONTINUOUS, SNAPSHOT]; "
        "Value 'NOPE' at 'abortConfig.criteriaList.1.member.failureType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [FAILED, REJECTED, TIMED_OUT, ALL]; "
        "Value '150.0' at 'abortConfig.criteriaList.1.member.thresholdPercentage' "
        "failed to satisfy constraint: Member must have value less than or equal to 100"
    )


def test_list_of_scalars_reports_the_element_constraints(iot):
    with pytest.raises(iot.exceptions.InvalidRequestException) as excinfo:
        iot.create_job(jobId="j1", targets=["a" * 2049], document="{}")

    assert _message(excinfo) == (
        f"1 validation error detected: Value '[{'a' * 2049}]' at 'targets' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must have length less than or equal to 2048]"
    )


def test_required_member_sent_by_another_client(base_url):
    response = signed_request(base_url, "PUT", "/jobs/j1", body=b'{"document": "{}"}')

    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "InvalidRequestException"
    assert response.json() == {
        "message": "1 validation error detected: Value null at 'targets' failed to satisfy constraint: "
        "Member must not be null"
    }


def test_wrong_json_type_names_the_member(base_url):
    body = json.dumps({"targets": TARGETS, "timeoutConfig": {"inProgressTimeoutInMinutes": "soon"}}).encode()
    response = signed_request(base_url, "PUT", "/jobs/j1", body=body)

    assert response.status_code == 400
    assert response.json() == {
        "message": "Value 'soon' at 'timeoutConfig.inProgressTimeoutInMinutes' is not a valid long"
    }


def test_query_integer_must_be_decimal(base_url):
    response = signed_request(base_url, "GET", "/jobs?maxResults=1_0")

    assert response.status_code == 400
    assert response.json() == {"message": "Value '1_0' at 'maxResults' is not a valid integer"}


def test_bad_json_body(base_url):
    response = signed_request(base_url, "PUT", "/jobs/j1", body=b"{not json")

    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "InvalidRequestException"
    assert response.json()["message"].startswith("Request body is not valid JSON: ")


def test_body_must_be_an_object(base_url):
    response = signed_request(base_url, "PUT", "/jobs/j1", body=b"[1]")

    assert response.status_code == 400
    assert response.json() == {"message": "Request body must be a JSON object"}


def test_body_over_one_mebibyte_is_refused(base_url):
    response = signed_request(base_url, "PUT", "/jobs/j1", body=b" " * (1024 * 1024 + 1))

    assert response.status_code == 400
    assert response.json() == {"message": "Request body too large: the limit is 1048576 bytes"}


# Messages for shapes the boto3 tests do not reach, checked directly against the model.
def _create_job_shape():
    return botocore.session.get_session().get_service_model("iot").operation_model("CreateJob").input_shape


def test_map_values_are_reported_with_their_constraints():
    errors = validation_errors(
        _create_job_shape(), {"jobId": "j1", "targets": TARGETS, "documentParameters": {"k": ""}}
    )

    assert errors == [
        "Value '{k=}' at 'documentParameters' failed to satisfy constraint: "
        "Map value must satisfy constraint: [Member must have length less than or equal to 30720, "
        "Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: "
        "[^\\p{C}]+]"
    ]


def test_length_counts_utf16_units_like_java():
    # 32767 BMP characters plus one emoji is 32769 UTF-16 units.
    errors = validation_errors(
        _create_job_shape(), {"jobId": "j1", "targets": TARGETS, "document": "x" * 32767 + "😀"}
    )

    assert len(errors) == 1
    assert errors[0].endswith("Member must have length less than or equal to 32768")


def test_java_posix_classes_are_ascii_only():
    shape = botocore.session.get_session().get_service_model("iot").operation_model("CancelJob").input_shape

    assert validation_errors(shape, {"jobId": "j1", "reasonCode": "BAD_FW_2"}) == []
    assert validation_errors(shape, {"jobId": "j1", "reasonCode": "ÉCHEC"}) == [
        "Value 'ÉCHEC' at 'reasonCode' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\p{Upper}\\p{Digit}_]+"
    ]
