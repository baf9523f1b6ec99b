"""SigV4 on the control plane: wrong secret, unknown key, no signature, a stale signature."""

import datetime

import httpx
import pytest
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from ..conftest import ACCESS_KEY_ID, SECRET, start_server


def _refusal(call):
    # botocore models no exception class for these codes: they arrive as a plain ClientError.
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_wrong_secret(server):
    iot = server.iot(secret="not-the-secret-key")
    status, code, message = _refusal(iot.list_things)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith(
        "The request signature we calculated does not match the signature you provided."
    )


def test_unknown_access_key(server):
    iot = server.iot(key_id="AKIAUNKNOWNKEY000000")
    status, code, message = _refusal(iot.list_jobs)
    assert (status, code, message) == (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_refused_writes_change_nothing(server, iot, unique):
    forged = server.iot(secret="not-the-secret-key")
    status, code, _ = _refusal(lambda: forged.create_thing(thingName=f"{unique}-forged"))
    assert (status, code) == (403, "InvalidSignatureException")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=f"{unique}-forged")


@pytest.mark.parametrize(("method", "path"), [("GET", "/things"), ("GET", "/jobs"), ("PUT", "/jobs/x")])
def test_unsigned_requests(server, method, path):
    response = httpx.request(method, server.http_url + path, json={} if method == "PUT" else None)
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert response.json() == {"message": "Missing Authentication Token"}
    assert response.headers["x-amzn-RequestId"]


def _signed_headers(server, path: str, signed_at: datetime.datetime) -> dict[str, str]:
    """The headers of a GET of ``path`` signed by botocore's SigV4 signer as if at ``signed_at``."""
    request = AWSRequest(method="GET", url=server.http_url + path)
    signer = SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET), "iot", "us-east-1")
    stamp = signed_at.strftime(SIGV4_TIMESTAMP)
    request.context["timestamp"] = stamp
    request.headers["X-Amz-Date"] = stamp
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signed_headers = signer.signed_headers(signer.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return dict(request.headers.items())


def _signed_get(server, path: str, signed_at: datetime.datetime) -> httpx.Response:
    """GET ``path`` signed by botocore's SigV4 signer as if at ``signed_at``."""
    return httpx.get(server.http_url + path, headers=_signed_headers(server, path, signed_at))


def test_a_signature_from_20_minutes_ago_has_expired(server):
    now = datetime.datetime.now(datetime.UTC)
    # The same signing path with the current time is accepted...
    fresh = _signed_get(server, "/things", now)
    assert fresh.status_code == 200, fresh.text
    assert "things" in fresh.json()
    # ...and with a time 20 minutes back it is refused.
    stale = _signed_get(server, "/things", now - datetime.timedelta(minutes=20))
    assert stale.status_code == 403
    assert stale.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert stale.json()["message"].startswith("Signature expired")


def test_a_signature_from_20_minutes_ahead_is_not_yet_valid(server):
    ahead = _signed_get(server, "/jobs", datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=20))
    assert ahead.status_code == 403
    assert ahead.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert ahead.json()["message"].startswith("Signature not yet current")


@pytest.mark.parametrize("region", ["us-west-2", "xx-nowhere-9"])
def test_a_signature_scoped_to_another_region_is_refused(server, region):
    status, code, message = _refusal(server.iot(region=region).list_things)
    assert (status, code, message) == (
        403,
        "InvalidSignatureException",
        f"Credential should be scoped to a valid region, not '{region}'. ",
    )


@pytest.fixture(scope="module")
def eu_server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("eu-west-1"), extra_args=["--region", "eu-west-1"])
    yield running
    assert running.stop() == 0, "\n".join(running.lines)


def test_the_region_the_server_serves_is_the_one_clients_sign_for(eu_server):
    thing = eu_server.iot(region="eu-west-1").create_thing(thingName="eu-thing")
    assert thing["thingArn"] == "arn:aws:iot:eu-west-1:123456789012:thing/eu-thing"
    status, code, message = _refusal(eu_server.iot().list_things)
    assert (status, code, message) == (
        403,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'us-east-1'. ",
    )


def _with_authorization(headers: dict[str, str], change) -> dict[str, str]:
    return {**headers, "Authorization": change(headers["Authorization"])}


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            lambda auth: auth + ", junk",
            "IncompleteSignatureException",
            "'junk' not a valid key=value pair (missing equal-sign) in Authorization header",
        ),
        (
            lambda auth: auth + ", Region=us-east-1",
            "IncompleteSignatureException",
            "Unknown parameter 'Region' in Authorization header; "
            "expected only Credential, SignedHeaders and Signature",
        ),
        (
            # A second Signature before the real one: the last one used to win.
            lambda auth: auth.replace("Signature=", "Signature=" + "0" * 64 + ", Signature="),
            "IncompleteSignatureException",
            "Authorization header has more than one 'Signature' parameter",
        ),
        (
            # Listed as signed, but neither sent nor covered by the signature.
            lambda auth: auth.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=host;x-amz-date;x-foo"),
            "InvalidSignatureException",
            "SignedHeaders names 'x-foo', which the request does not carry",
        ),
    ],
    ids=["trailing-junk", "unknown-parameter", "repeated-signature", "signed-header-absent"],
)
def test_a_valid_signature_in_a_loose_authorization_header_is_refused(server, change, code, message):
    headers = _signed_headers(server, "/things", datetime.datetime.now(datetime.UTC))
    assert httpx.get(server.http_url + "/things", headers=headers).status_code == 200

    response = httpx.get(server.http_url + "/things", headers=_with_authorization(headers, change))

    assert (response.status_code, response.headers["x-amzn-ErrorType"]) == (403, code)
    assert response.json() == {"message": message}
