"""The SigV4 Authorization header is parsed strictly, and the scope's region must be the server's."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from iot_jobs_bridge.jobs_service.errors import InvalidSignature
from iot_jobs_bridge.jobs_service.http_api.errors import IncompleteSignature
from iot_jobs_bridge.jobs_service.http_api.sigv4 import _signing_key, parse_authorization, verify_request

KEY_ID, SECRET = "AKIDTEST", "secret"
SIGNATURE = "0123456789abcdef" * 4
BOTOCORE_STYLE = (
    f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20240101/us-east-1/iot/aws4_request, "
    f"SignedHeaders=host;x-amz-date, Signature={SIGNATURE}"
)
NOW = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC)


def test_the_header_botocore_writes_is_parsed():
    auth = parse_authorization(BOTOCORE_STYLE)

    assert (auth.scope.access_key_id, auth.scope.date, auth.scope.region, auth.scope.service) == (
        KEY_ID,
        "20240101",
        "us-east-1",
        "iot",
    )
    assert (auth.signed_headers, auth.signature) == (("host", "x-amz-date"), SIGNATURE)


def test_commas_without_spaces_are_parsed_too():
    assert parse_authorization(BOTOCORE_STYLE.replace(", ", ",")) == parse_authorization(BOTOCORE_STYLE)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            BOTOCORE_STYLE + ", junk",
            "'junk' not a valid key=value pair (missing equal-sign) in Authorization header",
        ),
        (BOTOCORE_STYLE + ",", "'' not a valid key=value pair (missing equal-sign) in Authorization header"),
        (
            BOTOCORE_STYLE + ", Extra=1",
            "Unknown parameter 'Extra' in Authorization header; "
            "expected only Credential, SignedHeaders and Signature",
        ),
        (
            BOTOCORE_STYLE + f", Signature={SIGNATURE}",
            "Authorization header has more than one 'Signature' parameter",
        ),
        (
            BOTOCORE_STYLE.replace("Credential=", "Credential=X, Credential="),
            "Authorization header has more than one 'Credential' parameter",
        ),
        (
            BOTOCORE_STYLE.replace(SIGNATURE, SIGNATURE[:-1]),
            "Signature must be 64 lowercase hexadecimal digits",
        ),
        (
            BOTOCORE_STYLE.replace(SIGNATURE, SIGNATURE.upper()),
            "Signature must be 64 lowercase hexadecimal digits",
        ),
    ],
    ids=["trailing-junk", "trailing-comma", "unknown", "two-signatures", "two-credentials", "short", "upper"],
)
def test_anything_but_the_three_parameters_once_each_is_incomplete(header, message):
    with pytest.raises(IncompleteSignature) as caught:
        parse_authorization(header)

    assert caught.value.message == message
    assert caught.value.http_type == "IncompleteSignatureException"


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("AWS4-HMAC-SHA256", "'Credential', 'SignedHeaders', 'Signature'"),
        (
            f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20240101/us-east-1/iot/aws4_request",
            "'SignedHeaders', 'Signature'",
        ),
    ],
)
def test_missing_parameters_are_named(header, missing):
    with pytest.raises(IncompleteSignature) as caught:
        parse_authorization(header)

    assert caught.value.message == f"Authorization header requires {missing} parameter(s)"


@pytest.mark.parametrize(
    "signed", ["host;;x-amz-date", "x-amz-date;host", "Host;x-amz-date", "host;host;x-amz-date", "host;x amz"]
)
def test_signed_headers_must_be_lowercase_sorted_and_each_once(signed):
    with pytest.raises(IncompleteSignature) as caught:
        parse_authorization(BOTOCORE_STYLE.replace("host;x-amz-date", signed))

    assert caught.value.message == (
        f"SignedHeaders '{signed}' must be lowercase header names, sorted, each once, separated by ';'"
    )


def _signed(region: str = "us-east-1", headers: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """The header lines of a GET signed by botocore at NOW for ``region``."""
    request = AWSRequest(method="GET", url="http://127.0.0.1:8080/things", headers=headers or {})
    request.context["timestamp"] = NOW.strftime(SIGV4_TIMESTAMP)
    request.headers["X-Amz-Date"] = request.context["timestamp"]
    signer = SigV4Auth(Credentials(KEY_ID, SECRET), "iot", region)
    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
        f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, Signature={signature}"
    )
    return [("host", "127.0.0.1:8080"), *request.headers.items()]


def _verify(lines: list[tuple[str, str]], region: str = "us-east-1"):
    return verify_request(
        method="GET",
        url="http://127.0.0.1:8080/things",
        headers=lines,
        body=b"",
        credentials={KEY_ID: SECRET},
        region=region,
        now=NOW,
    )


def test_a_request_signed_for_the_servers_region_is_verified():
    assert _verify(_signed("eu-west-1"), region="eu-west-1").region == "eu-west-1"


@pytest.mark.parametrize("region", ["us-west-2", "xx-nowhere-9"])
def test_a_scope_for_another_region_is_refused_as_aws_does(region):
    with pytest.raises(InvalidSignature) as caught:
        _verify(_signed(region))

    assert caught.value.message == f"Credential should be scoped to a valid region, not '{region}'. "


def test_a_signed_header_the_request_does_not_carry_is_refused():
    # The signature covers host and x-amz-date; the list claims x-foo as well.
    lines = [
        (name, value.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=host;x-amz-date;x-foo"))
        for name, value in _signed()
    ]

    with pytest.raises(InvalidSignature) as caught:
        _verify(lines)

    assert caught.value.message == "SignedHeaders names 'x-foo', which the request does not carry"


@pytest.mark.parametrize("name", ["Authorization", "X-Amz-Date"])
def test_a_repeated_authorization_or_date_header_is_incomplete(name):
    lines = _signed()
    lines += [(n, v) for n, v in lines if n == name]

    with pytest.raises(IncompleteSignature) as caught:
        _verify(lines)

    assert caught.value.message == f"The request has more than one '{name.lower()}' header"


def test_requests_signed_with_another_secret_or_on_another_day_are_refused():
    # The signing key is derived once per secret, day, region and service and then reused.
    assert _verify(_signed()).access_key_id == KEY_ID
    assert _signing_key("a", "20260101", "us-east-1", "iot") != _signing_key(
        "b", "20260101", "us-east-1", "iot"
    )
    assert _signing_key("a", "20260101", "us-east-1", "iot") != _signing_key(
        "a", "20260102", "us-east-1", "iot"
    )
    with pytest.raises(InvalidSignature):
        verify_request(
            method="GET",
            url="http://127.0.0.1:8080/things",
            headers=_signed(),
            body=b"",
            credentials={KEY_ID: SECRET + "x"},
            region="us-east-1",
            now=NOW,
        )


@pytest.mark.parametrize(
    "amz_date",
    ["2026126T101010Z", "20261306T101010Z", "20260230T101010Z", "20260101T1010Z", "20260101T101010"],
)
def test_an_x_amz_date_not_of_the_iso_basic_form_is_incomplete(amz_date):
    lines = [(n, amz_date if n == "X-Amz-Date" else v) for n, v in _signed()]

    with pytest.raises(IncompleteSignature) as caught:
        _verify(lines)

    assert caught.value.message == f"X-Amz-Date '{amz_date}' is not of the form YYYYMMDD'T'HHMMSS'Z'"
