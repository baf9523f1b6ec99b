"""Authentication: `CredentialAuthenticator` rules, and CONNACKs from the real broker."""

from __future__ import annotations

import logging

import pytest

from iot_jobs_bridge.broker import CredentialAuthenticator, Principal

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
async def test_unknown_client_id_is_refused(connect, creds, caplog):
    caplog.set_level(logging.INFO, logger="iot_jobs_bridge.broker")
    await connect("not-a-thing", creds.sdk_username, None, accepted=False)
    assert "refused connection: client id 'not-a-thing'" in caplog.text


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
