"""Turn an incoming rest-json request into the operation's input parameters.

This mirrors botocore's ``RestJSONSerializer`` in reverse: URI labels, query
parameters (``location: querystring``) and headers (``location: header`` /
``headers``) are found under their ``locationName``; every other member comes
from the JSON body under its ``locationName`` or member name (or the whole body
is the ``payload`` member). The result is keyed by *member names* at every
level, with values converted to Python types:

========== ===========================================================
integer    ``int`` (32-bit range; ``long`` is 64-bit)
double     ``float``
boolean    ``bool`` (``true``/``false`` in URIs, queries and headers)
timestamp  timezone-aware ``datetime`` in UTC (epoch seconds or ISO 8601)
blob       ``bytes`` (base64 on the wire)
list/map   ``list``/``dict``; query lists come from repeated keys
========== ===========================================================

Absent members and JSON ``null`` are left out. Unknown body keys and query
parameters are ignored, as AWS does. A value of the wrong type is an
:class:`~jobs_service.errors.InvalidRequest` naming its path. The body is read
by :func:`jobs_service.json_input.read_json`, so deep nesting, long number
literals, ``NaN`` and lone surrogates are refused before any member is looked at.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.utils import parse_to_aware_datetime

from iot_jobs_bridge.jobs_service.errors import InvalidRequest
from iot_jobs_bridge.jobs_service.json_input import read_json

__all__ = ["parse_input", "parse_members"]

_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_TEXT_TYPES = ("string", "character")
_SHOWN_MAX = 200
# Python's int()/float() also take "1_000", "nan" and non-ASCII digits; the wire does not.
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_DOUBLE_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def parse_input(
    operation_model: Any,
    labels: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """Collect the input members of ``operation_model`` from one request.

    ``labels`` are the decoded URI labels by label name, ``query`` the decoded
    query pairs in order, ``headers`` a case-insensitive mapping.
    """
    shape = operation_model.input_shape
    if shape is None:
        return {}
    params: dict[str, Any] = {}
    query_first = dict(reversed(query))
    payload_member = shape.serialization.get("payload")
    body_members: dict[str, Any] = {}
    claimed_query = {m.serialization.get("name", n) for n, m in shape.members.items()}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        value: Any = None
        if location == "uri":
            if wire in labels:
                value = _from_text(member, labels[wire], name)
        elif location == "querystring":
            value = _from_query(member, wire, name, query, query_first, claimed_query)
        elif location == "header":
            if wire in headers:
                value = _from_text(member, headers[wire], name)
        elif location == "headers":
            prefix = wire.lower()
            found = {k[len(prefix) :]: v for k, v in headers.items() if k.lower().startswith(prefix)}
            value = found or None
        elif location is None and name != payload_member:
            body_members[name] = member
        if value is not None:
            params[name] = value
    if payload_member is not None:
        value = _parse_body(body, required=False)
        if value is not None:
            params[payload_member] = _from_json(shape.members[payload_member], value, payload_member)
    elif body_members:
        document = _parse_body(body, required=True)
        if not isinstance(document, dict):
            raise InvalidRequest("Request body must be a JSON object")
        params.update(_structure_members(body_members, document, ""))
    return params


def parse_members(
    members: Mapping[str, Any], document: Mapping[str, Any], prefix: str = ""
) -> dict[str, Any]:
    """Some members of an input, from an already decoded JSON object, typed as :func:`parse_input` types them.

    For bodies that carry an operation's members among their own (``/schedules``
    takes CreateJob's targets, document and settings); ``prefix`` is where they
    sit in that body, for error messages.
    """
    return _structure_members(members, document, prefix)


def _parse_body(body: bytes, *, required: bool) -> Any:
    if not body.strip():
        return {} if required else None
    return read_json(body, what="Request body")


def _from_query(
    member: Any,
    wire: str,
    name: str,
    query: Sequence[tuple[str, str]],
    query_first: Mapping[str, str],
    claimed: set[str],
) -> Any:
    if member.type_name == "list":
        values = [v for k, v in query if k == wire]
        return [_from_text(member.member, v, f"{name}.{i}.member") for i, v in enumerate(values, 1)] or None
    if member.type_name == "map":
        # botocore spreads a querystring map over otherwise unmodeled keys.
        found = {k: v for k, v in query_first.items() if k not in claimed}
        return found or None
    if wire in query_first:
        return _from_text(member, query_first[wire], name)
    return None


def _from_text(shape: Any, text: str, path: str) -> Any:
    """Convert a URI label, query value or header value to the shape's type."""
    kind = shape.type_name
    if kind in _TEXT_TYPES:
        return text
    if kind in _INT_RANGES:
        if not _INTEGER_TEXT.fullmatch(text):
            raise _bad_type(text, path, kind)
        return _in_range(kind, int(text), text, path)
    if kind in ("double", "float"):
        if not _DOUBLE_TEXT.fullmatch(text):
            raise _bad_type(text, path, kind)
        return float(text)
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise _bad_type(text, path, kind)
        return lowered == "true"
    if kind == "timestamp":
        return _timestamp(text, path)
    if kind == "blob":
        return _blob(text, path)
    if kind == "list":
        return [
            _from_text(shape.member, part.strip(), f"{path}.{i}.member")
            for i, part in enumerate(text.split(","), 1)
        ]
    raise _bad_type(text, path, kind)


def _from_json(shape: Any, value: Any, path: str) -> Any:
    """Convert one decoded JSON value to the shape's Python type."""
    kind = shape.type_name
    if kind == "structure":
        if getattr(shape, "is_document_type", False):
            return value
        if not isinstance(value, dict):
            raise _bad_type(value, path, kind)
        return _structure_members(shape.members, value, f"{path}.")
    if kind == "list":
        if not isinstance(value, list):
            raise _bad_type(value, path, kind)
        return [_from_json(shape.member, item, f"{path}.{i}.member") for i, item in enumerate(value, 1)]
    if kind == "map":
        if not isinstance(value, dict):
            raise _bad_type(value, path, kind)
        return {k: _from_json(shape.value, v, f"{path}.{k}") for k, v in value.items()}
    if kind in _TEXT_TYPES:
        if not isinstance(value, str):
            raise _bad_type(value, path, kind)
        return value
    if kind in _INT_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad_type(value, path, kind)
        return _in_range(kind, value, value, path)
    if kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _bad_type(value, path, kind)
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _bad_type(value, path, kind)
        return value
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _bad_type(value, path, kind)
        return _timestamp(value, path)
    if kind == "blob":
        if not isinstance(value, str):
            raise _bad_type(value, path, kind)
        return _blob(value, path)
    raise _bad_type(value, path, kind)


def _structure_members(
    members: Mapping[str, Any], document: Mapping[str, Any], prefix: str
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, member in members.items():
        value = document.get(member.serialization.get("name", name))
        if value is not None:
            result[name] = _from_json(member, value, f"{prefix}{name}")
    return result


def _in_range(kind: str, number: int, original: Any, path: str) -> int:
    low, high = _INT_RANGES[kind]
    if not low <= number <= high:
        raise _bad_type(original, path, kind)
    return number


def _timestamp(value: str | float, path: str) -> dt.datetime:
    try:
        parsed: dt.datetime = parse_to_aware_datetime(value)
        return parsed.astimezone(dt.UTC)
    except (ValueError, TypeError, OverflowError, OSError) as exc:
        raise _bad_type(value, path, "timestamp") from exc


def _blob(text: str, path: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad_type(text, path, "blob") from exc


def _bad_type(value: Any, path: str, kind: str) -> InvalidRequest:
    shown = json.dumps(value) if not isinstance(value, str) else f"'{value}'"
    if len(shown) > _SHOWN_MAX:
        shown = shown[:_SHOWN_MAX] + "..."
    return InvalidRequest(f"Value {shown} at '{path}' is not a valid {kind}")
