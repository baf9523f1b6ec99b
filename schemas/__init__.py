"""JSON Schemas for payloads on the wire, and a small validator around them.

The schemas are data (``*.json`` beside this file); :func:`check` turns the
first problem into one readable sentence that names the field.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator

__all__ = ["SchemaError", "check", "load"]


class SchemaError(ValueError):
    """A payload does not match its schema; the message names the field."""


@cache
def load(document: str) -> dict[str, Any]:
    """One schema document from this package, e.g. ``"device_requests"``."""
    text = resources.files(__package__).joinpath(f"{document}.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator(document: str, definition: str) -> Draft202012Validator:
    schema = load(document)
    if definition not in schema.get("$defs", {}):
        raise KeyError(f"{document}.json has no definition {definition}")
    return Draft202012Validator({**schema, "$ref": f"#/$defs/{definition}"})


@cache
def _compiled(document: str, definition: str) -> Any:
    """The definition compiled to Python: about twenty times faster than walking the schema."""
    _validator(document, definition)  # the same KeyError for a definition that does not exist
    return fastjsonschema.compile({**load(document), "$ref": f"#/$defs/{definition}"})


def check(document: str, definition: str, payload: Any, *, allow_unknown_keys: bool = False) -> None:
    """Raise :class:`SchemaError` when ``payload`` does not match ``document#/$defs/definition``.

    ``allow_unknown_keys`` tolerates keys the schema does not name: a client reading
    replies should accept fields a newer service adds, as the AWS SDKs do.
    """
    # Nearly every payload is valid, so the compiled check answers first. jsonschema
    # stays the judge of anything it refuses, and the one that words the error.
    try:
        _compiled(document, definition)(payload)
    except fastjsonschema.JsonSchemaException:
        pass
    else:
        return
    errors = _validator(document, definition).iter_errors(payload)
    if allow_unknown_keys:
        errors = (e for e in errors if not _unknown_key(e))
    error = min(errors, key=_depth_first, default=None)
    if error is None:
        return
    where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    subject = f"{where}: " if where else ""
    raise SchemaError(f"{subject}{_describe(error)}")


def _unknown_key(error: Any) -> bool:
    return error.validator == "additionalProperties" and error.validator_value is False


def _depth_first(error: Any) -> tuple[int, str]:
    # Report the most specific problem first, then by message for a stable order.
    return (-len(error.absolute_path), error.message)


def _describe(error: Any) -> str:
    """One short sentence; long values are never echoed back."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "required":
        return str(error.message).replace("is a required property", "is required")
    if error.validator == "maxProperties":
        return f"has more than {schema['maxProperties']} entries"
    if error.validator == "maxLength":
        return f"is longer than {schema['maxLength']} characters"
    if error.validator == "minLength":
        return "must not be empty" if schema["minLength"] == 1 else f"is shorter than {schema['minLength']}"
    if error.validator == "pattern":
        if "propertyNames" in error.schema_path:
            return f"the key {_short(error.instance)} is not allowed"
        return "contains characters that are not allowed"
    if error.validator == "oneOf":
        return f"{_short(error.instance)} is not valid here"
    if error.validator == "type":
        return f"{_short(error.instance)} is not of type {schema.get('type')!r}"
    if error.validator == "enum":
        return f"{_short(error.instance)} is not one of {schema['enum']}"
    return str(error.message)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
