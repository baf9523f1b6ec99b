"""SigV4: only requests signed by a configured key, for this service, recently, get through."""

from __future__ import annotations

import time

import httpx
import pytest

from iot_jobs_bridge.jobs_service.http_api import build_app
from tests.http_api.conftest import (
    KEY_ID,
    REGION,
    SECRET,
    Calls,
    client_for,
    make_handlers,
    serve,
    signed_request,
)


def test_wrong_secret_is_invalid_signature(base_url):
    iot = client_for(base_url, secret="not-the-secret")

    with pytest.raises(iot.exceptions.ClientError) as excinfo:
        iot.describe_job(jobId="j1")

    error = excinfo.value.response["Error"]
    assert error["Code"] == "InvalidSignatureException"
    assert error["Message"].startswith("The request signature we calculated does not match")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_key_id_is_unrecognized_client(base_url, calls):
    iot = client_for(base_url, key_id="AKIDSOMEONEELSE")

    with pytest.raises(iot.exceptions.ClientError) as excinfo:
        iot.describe_job(jobId="j1")

    assert excinfo.value.response["Error"] == {
        "Code": "UnrecognizedClientException",
        "Message": "The security token included in the request is invalid.",
    }
    assert calls.log == []


def test_unsigned_request_is_refused(base_url, calls):
    response = httpx.get(f"{base_url}/jobs/j1")

    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert response.json() == {"message": "Missing Authentication Token"}
    assert calls.log == []


def test_malformed_authorization_is_refused(base_url):
    response = httpx.get(f"{base_url}/jobs/j1", headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"})

    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "IncompleteSignatureException"
    assert response.json() == {
        "message": "Authorization header requires 'SignedHeaders', 'Signature' parameter(s)"
    }


def test_signature_for_another_service_is_refused(base_url):
    response = signed_request(base_url, "GET", "/jobs/j1", service="s3")

    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert response.json() == {"message": "Credential should be scoped to correct service: 'iot'."}


def test_tampered_body_is_refused(base_url):
    good = signed_request(base_url, "PUT", "/jobs/j1", body=b'{"targets": ["a"]}')
    assert good.status_code == 200

    request_headers = dict(good.request.headers)
    with httpx.Client() as client:
        response = client.put(good.request.url, content=b'{"targets": ["b"]}', headers=request_headers)

    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_stated_payload_hash_must_match_the_body(base_url):
    response = signed_request(
        base_url,
        "PUT",
        "/jobs/j1",
        body=b'{"targets": ["a"]}',
        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )

    assert response.status_code == 403
    assert response.json() == {
        "message": "The provided 'x-amz-content-sha256' header does not match what was computed "
        "(unsigned payloads are not accepted)"
    }


def test_signature_older_than_fifteen_minutes_is_expired():
    # The server's clock runs an hour ahead of the client's.
    app = build_app(
        make_handlers(Calls()), {KEY_ID: SECRET}, region=REGION, wall_clock=lambda: time.time() + 3600
    )
    with serve(app) as url:
        iot = client_for(url)
        with pytest.raises(iot.exceptions.ClientError) as excinfo:
            iot.describe_job(jobId="j1")

    error = excinfo.value.response["Error"]
    assert error["Code"] == "InvalidSignatureException"
    assert error["Message"].startswith("Signature expired: ")
    assert error["Message"].endswith(" - 15 min.)")


def test_credentials_are_read_on_every_request():
    credentials: dict[str, str] = {}
    with serve(build_app(make_handlers(Calls()), credentials, region=REGION)) as url:
        iot = client_for(url)
        with pytest.raises(iot.exceptions.ClientError):
            iot.describe_job(jobId="j1")
        credentials[KEY_ID] = SECRET
        assert iot.describe_job(jobId="j1")["job"]["jobId"] == "j1"
