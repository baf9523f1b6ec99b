"""Verify AWS Signature Version 4 on incoming requests.

The expected signature is computed by botocore's own signer, fed with the
request exactly as it arrived: the raw (still percent-encoded) path and query
string, the headers the client says it signed, the body bytes, and the client's
``X-Amz-Date`` and credential scope. Whatever botocore canonicalised on the
client side is therefore canonicalised the same way here.

Everything around the signature is checked strictly first, as AWS does: the
``Authorization`` header's shape, that every header it lists as signed is in
the request, and that the scope names the server's region.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from iot_jobs_bridge.jobs_service.errors import InvalidSignature, UnrecognizedClient
from iot_jobs_bridge.jobs_service.http_api.errors import IncompleteSignature, MissingAuthenticationToken

__all__ = ["MAX_CLOCK_SKEW", "SignedScope", "parse_authorization", "verify_request"]

ALGORITHM = "AWS4-HMAC-SHA256"
_PARAMETERS = ("Credential", "SignedHeaders", "Signature")
# An HTTP token (RFC 9110 field-name), lowercase as SigV4 lists it.
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_SHOWN_MAX = 100
#: How far ``X-Amz-Date`` may be from the server's clock, either way (AWS uses 15 minutes).
MAX_CLOCK_SKEW = dt.timedelta(minutes=15)
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z", re.ASCII)


@dataclass(frozen=True)
class SignedScope:
    """Who signed a verified request, and for which region and service."""

    access_key_id: str
    date: str
    region: str
    service: str


@dataclass(frozen=True)
class Authorization:
    """The parts of a SigV4 ``Authorization`` header."""

    scope: SignedScope
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> Authorization:
    """Split ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``, strictly.

    Exactly those three parameters, each once, separated by commas (spaces
    around them are allowed); anything else is an IncompleteSignature, as is a
    SignedHeaders list that is not lowercase names, sorted, each once.
    """
    if not value:
        raise MissingAuthenticationToken("Missing Authentication Token")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(f"Unsupported Authorization algorithm '{algorithm}'; expected {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in rest.split(",") if rest.strip() else []:
        key, sep, field = part.strip(" \t").partition("=")
        if not sep:
            shown = _shown(part.strip())
            raise IncompleteSignature(
                f"'{shown}' not a valid key=value pair (missing equal-sign) in Authorization header"
            )
        if key not in _PARAMETERS:
            raise IncompleteSignature(
                f"Unknown parameter '{_shown(key)}' in Authorization header; "
                "expected only Credential, SignedHeaders and Signature"
            )
        if key in fields:
            raise IncompleteSignature(f"Authorization header has more than one '{key}' parameter")
        fields[key] = field
    missing = [key for key in _PARAMETERS if not fields.get(key)]
    if missing:
        raise IncompleteSignature(
            "Authorization header requires " + ", ".join(f"'{key}'" for key in missing) + " parameter(s)"
        )
    credential = fields["Credential"].split("/")
    if len(credential) != 5 or credential[4] != "aws4_request" or not all(credential):
        raise IncompleteSignature(
            f"Credential '{fields['Credential']}' is not of the form KEY/YYYYMMDD/REGION/SERVICE/aws4_request"
        )
    key, date, region, service, _ = credential
    signed = tuple(fields["SignedHeaders"].split(";"))
    if not all(_HEADER_NAME.fullmatch(name) for name in signed) or list(signed) != sorted(set(signed)):
        raise IncompleteSignature(
            f"SignedHeaders '{_shown(fields['SignedHeaders'])}' must be lowercase header names, "
            "sorted, each once, separated by ';'"
        )
    if _SIGNATURE.fullmatch(fields["Signature"]) is None:
        raise IncompleteSignature("Signature must be 64 lowercase hexadecimal digits")
    return Authorization(SignedScope(key, date, region, service), signed, fields["Signature"])


def verify_request(
    *,
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    credentials: Mapping[str, str],
    region: str,
    now: dt.datetime,
) -> SignedScope:
    """Check the SigV4 signature of one request and return its signed scope.

    ``url`` must carry the raw path and query string as received; ``headers``
    every header line in order (repeated names allowed); ``region`` the one
    region the server serves; ``now`` an aware datetime. Raises an
    :class:`~jobs_service.errors.AccessDenied` subclass.
    """
    lowered = [(name.lower(), value) for name, value in headers]
    auth = parse_authorization(_only(lowered, "authorization"))
    scope = auth.scope
    for required in ("host", "x-amz-date"):
        if required not in auth.signed_headers:
            raise IncompleteSignature(f"SignedHeaders must include '{required}'")
    present = {name for name, _ in lowered}
    absent = [name for name in auth.signed_headers if name not in present]
    if absent:
        # Otherwise the list would claim more than the signature covers.
        raise InvalidSignature(f"SignedHeaders names '{absent[0]}', which the request does not carry")
    amz_date = _only(lowered, "x-amz-date") or ""
    signed_at = _parse_amz_date(amz_date)
    if amz_date[:8] != scope.date:
        raise InvalidSignature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{scope.date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    if scope.region != region:
        # AWS's wording, trailing space included.
        raise InvalidSignature(
            f"Credential should be scoped to a valid region, not '{_shown(scope.region)}'. "
        )
    secret = credentials.get(scope.access_key_id)
    if secret is None:
        raise UnrecognizedClient("The security token included in the request is invalid.")
    _check_freshness(amz_date, signed_at, now)
    _check_content_hash(lowered, body)

    request = AWSRequest(method=method, url=url, data=body)
    for name, value in lowered:
        request.headers[name] = value  # appends, so repeated headers are all kept
    request.context["timestamp"] = amz_date
    signer = _ClientHeadersSigV4(Credentials(scope.access_key_id, secret), scope, auth.signed_headers)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
        raise InvalidSignature(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. "
            "Consult the service documentation for details."
        )
    return scope


class _ClientHeadersSigV4(SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    """botocore's signer, restricted to the headers the client chose to sign."""

    def __init__(self, credentials: Credentials, scope: SignedScope, signed_headers: Sequence[str]) -> None:
        super().__init__(credentials, scope.service, scope.region)
        self._signed = frozenset(signed_headers)

    def signature(self, string_to_sign: str, request: Any) -> str:
        # botocore derives the signing key (four HMACs) on every call; it changes once a day.
        key = _signing_key(
            self.credentials.secret_key,
            request.context["timestamp"][:8],
            self._region_name,
            self._service_name,
        )
        return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()

    def headers_to_sign(self, request: Any) -> Any:
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed:
                header_map[name.lower()] = value
        return header_map


@functools.lru_cache(maxsize=64)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """SigV4's signing key, as botocore's `SigV4Auth.signature` derives it."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def _only(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """The value of a header that may appear at most once."""
    values = [value for key, value in headers if key == name]
    if len(values) > 1:
        raise IncompleteSignature(f"The request has more than one '{name}' header")
    return values[0] if values else None


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX] + "..."


def _parse_amz_date(amz_date: str) -> dt.datetime:
    if not amz_date:
        raise IncompleteSignature("Authorization header requires an 'X-Amz-Date' header")
    # Read by hand: `strptime` cost more than the rest of the date checks together.
    match = _AMZ_DATE.fullmatch(amz_date)
    try:
        if match is None:
            raise ValueError(amz_date)
        year, month, day, hour, minute, second = map(int, match.groups())
        return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    except ValueError as exc:
        raise IncompleteSignature(f"X-Amz-Date '{amz_date}' is not of the form YYYYMMDD'T'HHMMSS'Z'") from exc


def _check_freshness(amz_date: str, signed_at: dt.datetime, now: dt.datetime) -> None:
    def stamp(moment: dt.datetime) -> str:
        return moment.astimezone(dt.UTC).strftime(SIGV4_TIMESTAMP)

    if signed_at < now - MAX_CLOCK_SKEW:
        raise InvalidSignature(
            f"Signature expired: {amz_date} is now earlier than {stamp(now - MAX_CLOCK_SKEW)} "
            f"({stamp(now)} - 15 min.)"
        )
    if signed_at > now + MAX_CLOCK_SKEW:
        raise InvalidSignature(
            f"Signature not yet current: {amz_date} is still later than {stamp(now + MAX_CLOCK_SKEW)} "
            f"({stamp(now)} + 15 min.)"
        )


def _check_content_hash(headers: Sequence[tuple[str, str]], body: bytes) -> None:
    # botocore signs X-Amz-Content-SHA256 in place of hashing the body, so a
    # stated hash must be the body's real one for the signature to cover it.
    stated = _only(headers, "x-amz-content-sha256")
    if stated is None:
        return
    if stated.strip().lower() != hashlib.sha256(body).hexdigest():
        detail = " (unsigned payloads are not accepted)" if stated.strip() == _UNSIGNED_PAYLOAD else ""
        raise InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed" + detail
        )
