"""`schemas.check` answers from compiled schemas, and they accept exactly what jsonschema accepts.

The compiled check (fastjsonschema) lets a payload through on its own, so it must
never accept one that jsonschema, the reference, refuses; and what it refuses
goes to jsonschema, which words the error.
"""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from iot_jobs_bridge import schemas

DOCUMENTS = ("device_requests", "device_responses", "events")
DEFINITIONS = [(doc, name) for doc in DOCUMENTS for name in schemas.load(doc)["$defs"]]


def _names_and_values(node: Any, names: set[str], values: list[Any]) -> None:
    """Every property name and every enum/const value the schemas mention."""
    if isinstance(node, dict):
        for key in ("properties",):
            names.update(node.get(key, {}))
        values.extend(node.get("enum", []))
        if "const" in node:
            values.append(node["const"])
        for child in node.values():
            _names_and_values(child, names, values)
    elif isinstance(node, list):
        for child in node:
            _names_and_values(child, names, values)


_NAMES: set[str] = set()
_VALUES: list[Any] = []
for _document in DOCUMENTS:
    _names_and_values(schemas.load(_document), _NAMES, _VALUES)

# The edges where two validators could differ: bools as integers, 2.0 as an
# integer, huge numbers, control characters, empty and long strings.
_scalars = st.one_of(
    st.sampled_from(sorted({repr(v): v for v in _VALUES}.values(), key=repr)),
    st.sampled_from([True, False, None, 0, -1, 1, 2.0, 2.5, 2**63, 2**63 - 1, "", "1", "12a", "a" * 129]),
    st.integers(),
    st.text(alphabet=st.characters(max_codepoint=0x200), max_size=12),
    st.floats(allow_nan=False, allow_infinity=False),
)
_keys = st.one_of(st.sampled_from(sorted(_NAMES)), st.text(max_size=6))
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=6)),
    max_leaves=12,
)


def _payloads(document: str, definition: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects shaped like the definition (its own keys, required ones mostly present), or not."""
    schema = schemas.load(document)["$defs"][definition]
    properties = sorted(schema.get("properties", {}))
    required = [key for key in properties if key in schema.get("required", [])]
    shaped = st.fixed_dictionaries(
        {key: _json for key in required}, optional={key: _json for key in properties if key not in required}
    )
    return st.one_of(shaped, st.dictionaries(_keys, _json, max_size=8))


def _reference_accepts(document: str, definition: str, payload: Any) -> bool:
    validator = Draft202012Validator({**schemas.load(document), "$ref": f"#/$defs/{definition}"})
    return not any(True for _ in validator.iter_errors(payload))


@settings(max_examples=1500)
@given(st.data())
def test_the_compiled_check_accepts_exactly_what_jsonschema_accepts(data: st.DataObject) -> None:
    document, name = data.draw(st.sampled_from(DEFINITIONS))
    payload = data.draw(_payloads(document, name))
    try:
        schemas.check(document, name, payload)
        accepted = True
    except schemas.SchemaError:
        accepted = False
    assert accepted == _reference_accepts(document, name, payload)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"status": "DONE"}, "status: 'DONE' is not one of"),
        ({"status": "SUCCEEDED", "statusDetails": {"a": "\x01"}}, "statusDetails.a: contains characters"),
        ({"status": "SUCCEEDED", "expectedVersion": True}, "expectedVersion: True is not valid here"),
        ({}, "'status' is required"),
    ],
)
def test_a_refusal_is_still_worded_by_field(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(schemas.SchemaError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        schemas.check("device_requests", "UpdateJobExecutionRequest", payload)


def test_an_unknown_definition_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no definition Nope"):
        schemas.check("device_requests", "Nope", {})
