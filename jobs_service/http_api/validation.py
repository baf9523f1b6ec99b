"""Server-side input validation against the service model.

botocore checks only ``required``, types and minimums before sending; AWS
checks the rest on the server. This module checks string and blob length,
``pattern``, ``enum``, numeric ranges, list and map sizes and required members,
recursively, and words failures the way AWS does::

    1 validation error detected: Value 'a b' at 'jobId' failed to satisfy
    constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+

Paths name members as in the model (``timeoutConfig.inProgressTimeoutInMinutes``);
structures inside lists are ``criteriaList.1.member.failureType``. Like AWS,
a list of scalars or a map is reported once, listing the element's constraints
(``Member must satisfy constraint: [...]``, ``Map keys must satisfy constraint: [...]``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from iot_jobs_bridge.jobs_service.errors import InvalidRequest
from iot_jobs_bridge.jobs_service.http_api.patterns import matches

__all__ = ["check_input", "check_members", "validation_errors"]

_NUMERIC = ("integer", "long", "double", "float")
_REDACTED = "*** Sensitive Data Redacted ***"


def check_input(input_shape: Any, params: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidRequest` listing every constraint ``params`` violate."""
    if input_shape is None:
        return
    _raise_if_any(validation_errors(input_shape, params))


def check_members(members: Mapping[str, Any], params: Mapping[str, Any], prefix: str = "") -> None:
    """:func:`check_input` for some members of an input: those ``params`` holds, none required.

    ``prefix`` is where they sit in the body, as for :func:`params.parse_members`.
    """
    errors: list[str] = []
    for name, value in params.items():
        _check_value(members[name], value, f"{prefix}{name}", errors)
    _raise_if_any(errors)


def _raise_if_any(errors: list[str]) -> None:
    if errors:
        count = len(errors)
        noun = "error" if count == 1 else "errors"
        raise InvalidRequest(f"{count} validation {noun} detected: " + "; ".join(errors))


def validation_errors(shape: Any, params: Mapping[str, Any]) -> list[str]:
    """Return AWS-style messages for each violated constraint (empty when valid)."""
    errors: list[str] = []
    _check_structure(shape, params, "", errors)
    return errors


def _check_structure(shape: Any, value: Mapping[str, Any], prefix: str, errors: list[str]) -> None:
    required = set(shape.required_members)
    for name, member in shape.members.items():
        path = f"{prefix}{name}"
        item = value.get(name)
        if item is None:
            if name in required:
                errors.append(f"Value null at '{path}' failed to satisfy constraint: Member must not be null")
            continue
        _check_value(member, item, path, errors)


def _check_value(shape: Any, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not getattr(shape, "is_document_type", False):
            _check_structure(shape, value, f"{path}.", errors)
        return
    for constraint in _failed(shape, value):
        errors.append(_message(shape, value, path, constraint))
    if kind == "list":
        _check_elements(shape.member, list(enumerate(value, 1)), value, path, errors, "Member")
    elif kind == "map":
        keys = list(value)
        if any(_failed(shape.key, key) for key in keys):
            errors.append(_message(shape, value, path, _nested("Map keys", shape.key)))
        _check_elements(shape.value, list(value.items()), value, path, errors, "Map value")


def _check_elements(
    element: Any, items: list[tuple[Any, Any]], whole: Any, path: str, errors: list[str], label: str
) -> None:
    if element.type_name in ("structure", "list", "map"):
        suffix = ".member" if label == "Member" else ""
        for index, item in items:
            if item is not None:
                _check_value(element, item, f"{path}.{index}{suffix}", errors)
    elif any(_failed(element, item) for _, item in items if item is not None):
        errors.append(_message(element, whole, path, _nested(label, element)))


def _failed(shape: Any, value: Any) -> list[str]:
    """The constraints of ``shape`` that ``value`` violates, in AWS's order."""
    failed = []
    meta = shape.metadata
    kind = shape.type_name
    if kind in _NUMERIC:
        if "max" in meta and value > meta["max"]:
            failed.append(f"Member must have value less than or equal to {meta['max']}")
        if "min" in meta and value < meta["min"]:
            failed.append(f"Member must have value greater than or equal to {meta['min']}")
        return failed
    if kind in ("string", "blob", "list", "map"):
        size = _java_length(value) if isinstance(value, str) else len(value)
        if "max" in meta and size > meta["max"]:
            failed.append(f"Member must have length less than or equal to {meta['max']}")
        if "min" in meta and size < meta["min"]:
            failed.append(f"Member must have length greater than or equal to {meta['min']}")
    if isinstance(value, str):
        if "pattern" in meta and not matches(meta["pattern"], value):
            failed.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
        if "enum" in meta and value not in meta["enum"]:
            failed.append(f"Member must satisfy enum value set: [{', '.join(meta['enum'])}]")
    return failed


def _nested(label: str, element: Any) -> str:
    """``Member must satisfy constraint: [...]`` listing all of ``element``'s constraints."""
    meta = element.metadata
    parts = []
    unit = "value" if element.type_name in _NUMERIC else "length"
    if "max" in meta:
        parts.append(f"Member must have {unit} less than or equal to {meta['max']}")
    if "min" in meta:
        parts.append(f"Member must have {unit} greater than or equal to {meta['min']}")
    if "pattern" in meta:
        parts.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
    if "enum" in meta:
        parts.append(f"Member must satisfy enum value set: [{', '.join(meta['enum'])}]")
    return f"{label} must satisfy constraint: [{', '.join(parts)}]"


def _message(shape: Any, value: Any, path: str, constraint: str) -> str:
    shown = _REDACTED if shape.metadata.get("sensitive") else _java_string(value)
    return f"Value '{shown}' at '{path}' failed to satisfy constraint: {constraint}"


def _java_length(text: str) -> int:
    # Java counts UTF-16 code units: a character outside the BMP counts twice.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _java_string(value: Any) -> str:
    """Render a value the way Java's ``toString`` does in AWS messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_java_string(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_java_string(k)}={_java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)
