"""NATS keys (nkeys) and the JWTs NATS signs with them, on `cryptography`'s Ed25519.

NATS names an Ed25519 key by a base32 text: one prefix byte saying what kind of
key it is (account ``A``, user ``U``, server ``N``...), the 32 key bytes and a
CRC-16 (XMODEM, little-endian); a seed (private key) has two prefix bytes, the
first ``S``. NATS JWTs are ordinary JWTs signed ``ed25519-nkey``, with a ``jti``
that is the SHA-512/256 hash of the claims.

Only what auth callout needs: make and read keys, sign and read JWTs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = ["ACCOUNT", "SERVER", "USER", "KeyPair", "decode_jwt", "encode_jwt", "public_key_bytes"]

# Prefix bytes (the letter's 5-bit base32 value, shifted): what a public key belongs to.
ACCOUNT = 0 << 3  # "A"
SERVER = 13 << 3  # "N"
USER = 20 << 3  # "U"
_SEED = 18 << 3  # "S"
_JWT_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}


def _crc16(data: bytes) -> int:
    return binascii.crc_hqx(data, 0)  # CRC-16/XMODEM, as NATS computes it


def _encode(raw: bytes) -> str:
    return base64.b32encode(raw + _crc16(raw).to_bytes(2, "little")).decode("ascii").rstrip("=")


def _decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 8)
    try:
        raw = base64.b32decode(padded)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not an nkey") from exc
    if len(raw) < 3 or int.from_bytes(raw[-2:], "little") != _crc16(raw[:-2]):
        raise ValueError("not an nkey: its checksum does not match")
    return raw[:-2]


def public_key_bytes(public: str, kind: int) -> bytes:
    """The 32 key bytes of a public nkey of ``kind``; ValueError for anything else."""
    raw = _decode(public)
    if len(raw) != 33 or raw[0] != kind:
        raise ValueError("not a public nkey of the expected kind")
    return raw[1:]


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key of one ``kind``; ``seed`` is the private part, as NATS writes it."""

    kind: int
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls, kind: int) -> KeyPair:
        return cls.from_raw_seed(kind, secrets.token_bytes(32))

    @classmethod
    def from_raw_seed(cls, kind: int, raw: bytes) -> KeyPair:
        return cls(kind, Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def from_seed(cls, seed: str) -> KeyPair:
        raw = _decode(seed)
        if len(raw) != 34 or raw[0] & 0xF8 != _SEED:
            raise ValueError("not an nkey seed")
        kind = ((raw[0] & 0x07) << 5) | ((raw[1] & 0xF8) >> 3)
        return cls.from_raw_seed(kind, raw[2:])

    @property
    def seed(self) -> str:
        raw = self.private.private_bytes_raw()
        return _encode(bytes([_SEED | (self.kind >> 5), (self.kind & 0x1F) << 3]) + raw)

    @property
    def public(self) -> str:
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return _encode(bytes([self.kind]) + raw)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(claims: dict[str, Any], issuer: KeyPair) -> str:
    """``claims`` signed by ``issuer`` (which becomes ``iss``), with their ``jti``."""
    body = {**claims, "iss": issuer.public, "jti": ""}
    body["jti"] = (
        base64.b32encode(hashlib.new("sha512_256", json.dumps(body, separators=(",", ":")).encode()).digest())
        .decode("ascii")
        .rstrip("=")
    )
    signed = (
        _b64(json.dumps(_JWT_HEADER).encode()) + "." + _b64(json.dumps(body, separators=(",", ":")).encode())
    )
    return signed + "." + _b64(issuer.sign(signed.encode("ascii")))


def decode_jwt(token: str, issuer_kind: int) -> dict[str, Any]:
    """The claims of ``token`` once its signature checks out against its own ``iss``
    (a public key of ``issuer_kind``); ValueError otherwise."""
    try:
        header, body, signature = token.split(".")
        claims = json.loads(_unb64(body))
        if not isinstance(claims, dict) or json.loads(_unb64(header)).get("alg") != _JWT_HEADER["alg"]:
            raise ValueError("not a NATS JWT")
        key = Ed25519PublicKey.from_public_bytes(public_key_bytes(str(claims.get("iss", "")), issuer_kind))
        key.verify(_unb64(signature), f"{header}.{body}".encode("ascii"))
    except (InvalidSignature, binascii.Error, UnicodeError, json.JSONDecodeError) as exc:
        raise ValueError("not a validly signed NATS JWT") from exc
    except ValueError:
        raise
    return claims
