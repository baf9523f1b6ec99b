"""Authentication: `CredentialAuthenticator` rules, and CONNACKs from the real broker."""

from __future__ import annotations

import json
import logging

import pytest

from iot_jobs_bridge.broker import CertificateIdentity, CredentialAuthenticator, Principal
from iot_jobs_bridge.broker.auth import Refusal, authenticate_explained

KEY = "AKIDUNITADMIN"
SECRET = "unit-secret"
SDK_USERNAME = "?SDK=IoTDeviceSDK/Python&Platform=Unix"


@pytest.fixture
def rules() -> CredentialAuthenticator:
    return CredentialAuthenticator(KEY, SECRET, {"t1", "t2"}.__contains__)


@pytest.mark.parametrize(
    ("client_id", "username", "password", "expected"),
    [
        ("svc", KEY, SECRET, Principal("admin", KEY)),
        ("", KEY, SECRET, Principal("admin", KEY)),
        ("svc", KEY, "wrong", None),
        ("svc", KEY, None, None),
        ("svc", KEY, SECRET + "x", None),
        ("svc", KEY, "pässwörd", None),
        # A wrong admin secret never falls through to the device rule.
        ("t1", KEY, "wrong", None),
        ("t1", KEY, None, None),
        ("t1", None, None, Principal("thing", "t1")),
        ("t1", SDK_USERNAME, None, Principal("thing", "t1")),
        ("t2", "anything", "anything", Principal("thing", "t2")),
        ("unknown", None, None, None),
        ("unknown", SDK_USERNAME, None, None),
        ("", None, None, None),
        (None, None, None, None),
    ],
)
def test_credential_rules(rules, client_id, username, password, expected):
    assert rules.authenticate(client_id, username, password) == expected


@pytest.mark.parametrize(("key_id", "secret"), [("", "s"), ("k", "")])
def test_empty_admin_credentials_are_rejected(key_id, secret):
    with pytest.raises(ValueError, match="must not be empty"):
        CredentialAuthenticator(key_id, secret, {"t1"}.__contains__)


@pytest.mark.anyio
async def test_unknown_client_id_is_refused_with_one_line_that_says_why(connect, creds, caplog):
    caplog.set_level(logging.INFO)
    await connect("not-a-thing", creds.sdk_username, None, accepted=False)
    lines = [r for r in caplog.records if "not-a-thing" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    (line,) = lines
    assert (line.name, line.levelno) == ("iotjobs.devices", logging.INFO)
    assert line.getMessage().startswith("refused connection: client id 'not-a-thing' from 127.0.0.1:")
    assert line.getMessage().endswith(
        ": thing not registered (aws iot create-thing --thing-name not-a-thing)"
    )
    assert (line.thing, line.reason) == (
        "not-a-thing",
        "thing not registered (aws iot create-thing --thing-name not-a-thing)",
    )


@pytest.mark.anyio
async def test_a_wrong_admin_secret_is_logged_as_such(connect, creds, caplog):
    caplog.set_level(logging.INFO, logger="iotjobs.devices")
    await connect("svc", creds.admin_key_id, "wrong", accepted=False)
    assert "refused connection: client id 'svc' from" in caplog.text
    assert f": bad admin secret for access key id {creds.admin_key_id}" in caplog.text
    assert "wrong" not in caplog.text.replace("bad admin secret", "")


@pytest.mark.anyio
async def test_admin_key_with_wrong_secret_is_refused(connect, creds):
    await connect("svc", creds.admin_key_id, "wrong", accepted=False)


@pytest.mark.anyio
async def test_admin_key_with_wrong_secret_is_refused_even_as_a_thing(connect, creds):
    await connect("t1", creds.admin_key_id, "wrong", accepted=False)


@pytest.mark.anyio
async def test_admin_is_accepted(connect, creds):
    await connect("svc", creds.admin_key_id, creds.admin_secret)


@pytest.mark.anyio
async def test_registered_thing_is_accepted(connect):
    await connect("t1")


@pytest.mark.anyio
async def test_thing_with_sdk_username_and_no_password_is_accepted(connect, creds):
    await connect("t1", creds.sdk_username, None)


CONNECT_ONLY_OTHERS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:r:1:client/someone-else"}
        ],
    }
)
CONNECT_ANY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
)
CERTIFICATES = {
    b"unknown": None,
    b"revoked": CertificateIdentity([], [], "REVOKED", "c-revoked"),
    b"inactive": CertificateIdentity([], [], "INACTIVE", "c-inactive"),
    b"for-t1": CertificateIdentity(["t1"], [], "ACTIVE", "c-t1"),
    b"narrow-policy": CertificateIdentity(["t1"], [CONNECT_ONLY_OTHERS], "ACTIVE", "c-narrow"),
    b"wide-policy": CertificateIdentity(["t1"], [CONNECT_ANY], "ACTIVE", "c-wide"),
}


@pytest.fixture
def explaining() -> CredentialAuthenticator:
    return CredentialAuthenticator(
        KEY,
        SECRET,
        {"t1", "t2"}.__contains__,
        certificate_identity=CERTIFICATES.get,
        arn_prefix="arn:aws:iot:r:1",
    )


@pytest.mark.parametrize(
    ("client_id", "username", "password", "certificate", "reason"),
    [
        ("ghost", None, None, None, "thing not registered (aws iot create-thing --thing-name ghost)"),
        ("", None, None, None, "no client id (a device connects with its thing name as client id)"),
        (None, SDK_USERNAME, None, None, "no client id (a device connects with its thing name as client id)"),
        ("t1", KEY, "wrong", None, f"bad admin secret for access key id {KEY}"),
        (
            "t1",
            None,
            None,
            b"unknown",
            "certificate unknown: not one this server issued or registered, or deleted",
        ),
        ("t1", None, None, b"revoked", "certificate revoked: c-revoked is REVOKED"),
        ("t1", None, None, b"inactive", "certificate inactive: c-inactive is INACTIVE"),
        (
            "t2",
            None,
            None,
            b"for-t1",
            "not attached to the thing: certificate c-t1 is not attached to thing 't2'"
            " (aws iot attach-thing-principal)",
        ),
        (
            "t1",
            None,
            None,
            b"narrow-policy",
            "policy does not allow iot:Connect for client id 't1' (certificate c-narrow)",
        ),
    ],
)
def test_each_refusal_says_why(explaining, client_id, username, password, certificate, reason):
    assert explaining.check(client_id, username, password, certificate) == Refusal(reason)
    assert explaining.authenticate(client_id, username, password, certificate) is None


@pytest.mark.parametrize(
    ("client_id", "certificate", "kind"),
    [("t1", b"for-t1", "thing"), ("anything", b"wide-policy", "policy"), ("t1", None, "thing")],
)
def test_accepted_clients_get_their_principal(explaining, client_id, certificate, kind):
    decided = explaining.check(client_id, None, None, certificate)
    assert isinstance(decided, Principal) and decided.kind == kind
    assert explaining.authenticate(client_id, None, None, certificate) == decided


class OnlyAuthenticates:
    """An authenticator written to the original protocol, without `check`."""

    def authenticate(self, client_id, username, password, certificate=None):
        return Principal("thing", client_id) if client_id == "ok" else None


def test_an_authenticator_without_reasons_still_works():
    assert authenticate_explained(OnlyAuthenticates(), "ok", None, None) == Principal("thing", "ok")
    assert authenticate_explained(OnlyAuthenticates(), "no", None, None) == Refusal(
        "credentials not accepted"
    )
