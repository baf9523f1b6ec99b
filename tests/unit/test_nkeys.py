"""NATS keys and JWTs as NATS writes them, on cryptography's Ed25519."""

import base64
import json

import pytest

from iot_jobs_bridge.jobs_service.nkeys import ACCOUNT, SERVER, USER, KeyPair, decode_jwt, encode_jwt


def test_keys_are_named_as_nats_names_them_and_their_seeds_round_trip():
    account, user = KeyPair.generate(ACCOUNT), KeyPair.generate(USER)
    assert account.public.startswith("A") and len(account.public) == 56
    assert user.public.startswith("U")
    assert account.seed.startswith("SA") and user.seed.startswith("SU")
    again = KeyPair.from_seed(account.seed)
    assert again.public == account.public and again.kind == ACCOUNT


def test_a_damaged_seed_is_refused():
    seed = KeyPair.generate(ACCOUNT).seed
    damaged = seed[:10] + ("B" if seed[10] != "B" else "C") + seed[11:]
    with pytest.raises(ValueError):
        KeyPair.from_seed(damaged)


def test_a_signed_jwt_reads_back_and_a_tampered_one_does_not():
    issuer = KeyPair.generate(ACCOUNT)
    token = encode_jwt({"sub": "UABC", "nats": {"type": "user"}}, issuer)
    claims = decode_jwt(token, ACCOUNT)
    assert claims["iss"] == issuer.public and claims["sub"] == "UABC" and claims["jti"]
    header, body, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged["sub"] = "UEVIL"
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    with pytest.raises(ValueError):
        decode_jwt(f"{header}.{forged_body}.{signature}", ACCOUNT)
    with pytest.raises(ValueError):
        decode_jwt(token, SERVER)  # signed by an account, not a server
    with pytest.raises(ValueError):
        decode_jwt("not.a.jwt", ACCOUNT)
