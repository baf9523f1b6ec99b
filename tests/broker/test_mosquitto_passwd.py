"""The service's Mosquitto account: a passwd line in mosquitto_passwd's PBKDF2-SHA512 format."""

import base64
import hashlib

from iot_jobs_bridge.broker.mosquitto import password_line

# Written by `mosquitto_passwd -b` for user "u", password "secret".
KNOWN_LINE = (
    "u:$7$101$SFYsrcKAtnZGpGm1$"
    "bZxPLaSRFgO+8vK+QW7gIMLCo7s36NdmsN4SLuTmkYMs/Rc3CRQste3d3Clb2BHf/V6nx/dOlQGJjR6Iv3RV2A=="
)


def test_a_known_salt_gives_exactly_what_mosquitto_passwd_writes():
    assert password_line("u", "secret", base64.b64decode("SFYsrcKAtnZGpGm1")) == KNOWN_LINE


def test_a_fresh_line_has_a_random_twelve_byte_salt_and_verifies():
    first, second = password_line("svc", "pw"), password_line("svc", "pw")
    assert first != second
    username, rest = first.split(":", 1)
    assert username == "svc"
    empty, kind, iterations, salt, digest = rest.split("$")
    assert (empty, kind, iterations) == ("", "7", "101")
    raw_salt = base64.b64decode(salt, validate=True)
    assert len(raw_salt) == 12
    assert base64.b64decode(digest, validate=True) == hashlib.pbkdf2_hmac("sha512", b"pw", raw_salt, 101)


def test_the_password_is_encoded_as_utf8():
    salt = b"0123456789ab"
    digest = hashlib.pbkdf2_hmac("sha512", "pässwörd".encode(), salt, 101)
    assert password_line("u", "pässwörd", salt).endswith("$" + base64.b64encode(digest).decode())
