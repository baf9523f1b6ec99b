"""Hostile bodies on the control plane are 400 InvalidRequestException, never a 500, and change nothing."""

import json

import pytest

from ._support import fails_with, signed_request, template_arn

SURROGATE = "\ud800"


@pytest.fixture
def new_lines(server):
    """The server's output lines printed from now on."""
    start = len(server.lines)
    return lambda: server.lines[start:]


def test_a_lone_surrogate_in_an_attribute_is_refused_naming_it(iot, unique):
    name = f"{unique}-thing"
    with fails_with(
        iot,
        "InvalidRequestException",
        400,
        message="Request body has a lone UTF-16 surrogate (\\ud800) in 'attributePayload.attributes.colour'",
    ):
        iot.create_thing(thingName=name, attributePayload={"attributes": {"colour": f"red{SURROGATE}"}})
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_thing(thingName=name)


def test_a_lone_surrogate_in_a_description_is_refused_naming_it(iot, unique):
    thing = iot.create_thing(thingName=f"{unique}-thing")["thingArn"]
    with fails_with(
        iot,
        "InvalidRequestException",
        400,
        message="Request body has a lone UTF-16 surrogate (\\ud800) in 'description'",
    ):
        iot.create_job(jobId=f"{unique}-job", targets=[thing], document="{}", description=SURROGATE)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job(jobId=f"{unique}-job")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "Request body nests arrays and objects deeper than 64 levels"),
        (b"[" * 100_000, "Request body is not valid JSON: its brackets do not balance"),
        (
            b'{"targets": ["t"], "document": "{}", "n": ' + b"7" * 5000 + b"}",
            "Request body has a number of 5000 characters; the limit is 100",
        ),
        (
            b'{"targets": ["t"], "document": "{}", "n": 1e400}',
            "Request body has a number too large for a double: 1e400",
        ),
    ],
    ids=["100k-levels", "100k-unclosed", "5000-digits", "beyond-double"],
)
def test_json_the_reader_refuses_is_a_client_error(server, unique, new_lines, body, message):
    response = signed_request(server, "PUT", f"/jobs/{unique}-job", body)

    assert (response.status_code, response.headers["x-amzn-ErrorType"]) == (400, "InvalidRequestException")
    assert response.json() == {"message": message}
    assert not [line for line in new_lines() if "Traceback" in line]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"a": NaN}', "The job document is not valid JSON: NaN is not a JSON value"),
        ('{"a": [Infinity]}', "The job document is not valid JSON: Infinity is not a JSON value"),
        ('{"a": -Infinity}', "The job document is not valid JSON: -Infinity is not a JSON value"),
        ('{"a": 1e400}', "The job document has a number too large for a double: 1e400"),
        ('{"a": "\\ud800"}', "The job document has a lone UTF-16 surrogate (\\ud800) in 'a'"),
    ],
    ids=["nan", "infinity", "minus-infinity", "beyond-double", "lone-surrogate"],
)
def test_a_job_document_devices_could_not_parse_is_refused(iot, unique, document, message):
    thing = iot.create_thing(thingName=f"{unique}-thing")["thingArn"]
    with fails_with(iot, "InvalidRequestException", 400, message=message):
        iot.create_job(jobId=f"{unique}-job", targets=[thing], document=document)
    with fails_with(iot, "InvalidRequestException", 400, message=message):
        iot.create_job_template(jobTemplateId=f"{unique}-tpl", description="d", document=document)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job(jobId=f"{unique}-job")
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job_template(jobTemplateId=f"{unique}-tpl")


def _schedule_body(thing: str, document: str) -> bytes:
    return ('{"cron": "0 3 * * *", "targets": ["' + thing + '"], "document": ' + document + "}").encode()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (json.dumps('{"a": NaN}'), "The job document is not valid JSON: NaN is not a JSON value"),
        ('{"a": NaN}', "Request body is not valid JSON: NaN is not a JSON value"),
        ('{"a": Infinity}', "Request body is not valid JSON: Infinity is not a JSON value"),
        (json.dumps('{"a": 1e999}'), "The job document has a number too large for a double: 1e999"),
    ],
    ids=["nan-in-text", "nan-in-object", "infinity-in-object", "beyond-double-in-text"],
)
def test_a_schedule_document_devices_could_not_parse_is_refused(server, iot, unique, document, message):
    thing = iot.create_thing(thingName=f"{unique}-thing")["thingArn"]

    refused = signed_request(server, "POST", f"/schedules/{unique}", _schedule_body(thing, document))

    assert (refused.status_code, refused.headers["x-amzn-ErrorType"]) == (400, "InvalidRequestException")
    assert refused.json() == {"message": message}
    assert signed_request(server, "GET", f"/schedules/{unique}").status_code == 404
    accepted = signed_request(server, "POST", f"/schedules/{unique}", _schedule_body(thing, '{"a": 1.5}'))
    assert (accepted.status_code, accepted.json()["document"]) == (200, '{"a": 1.5}')
    changed = signed_request(server, "PATCH", f"/schedules/{unique}", b'{"document": {"a": NaN}}')
    assert (changed.status_code, changed.json()) == (
        400,
        {"message": "Request body is not valid JSON: NaN is not a JSON value"},
    )
    assert signed_request(server, "DELETE", f"/schedules/{unique}").status_code == 200


def test_a_custom_template_with_a_strict_document_still_makes_jobs(iot, unique):
    # The document nests 60 levels: deep, within the limit.
    document = json.dumps({"steps": json.loads("[" * 59 + "1" + "]" * 59)})
    iot.create_job_template(jobTemplateId=f"{unique}-tpl", description="d", document=document)
    thing = iot.create_thing(thingName=f"{unique}-thing")["thingArn"]
    iot.create_job(jobId=f"{unique}-job", targets=[thing], jobTemplateArn=template_arn(f"{unique}-tpl"))
    assert json.loads(iot.get_job_document(jobId=f"{unique}-job")["document"]) == json.loads(document)
