"""Input deserialisation for every location and type, on a small synthetic model and on `iot`."""

from __future__ import annotations

import datetime as dt
import json

import botocore.session
import pytest
from botocore.model import ServiceModel
from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge.jobs_service.errors import InvalidRequest
from iot_jobs_bridge.jobs_service.http_api.params import parse_input
from iot_jobs_bridge.jobs_service.http_api.responses import drop_nulls

SYNTHETIC = ServiceModel(
    {
        "metadata": {"protocol": "rest-json", "apiVersion": "2020-01-01", "serviceId": "Synthetic"},
        "operations": {
            "PutThing": {
                "name": "PutThing",
                "http": {"method": "PUT", "requestUri": "/things/{key+}"},
                "input": {"shape": "PutThingRequest"},
            },
            "SetConfig": {
                "name": "SetConfig",
                "http": {"method": "POST", "requestUri": "/config"},
                "input": {"shape": "SetConfigRequest"},
            },
        },
        "shapes": {
            "PutThingRequest": {
                "type": "structure",
                "required": ["key"],
                "members": {
                    "key": {"shape": "Text", "location": "uri", "locationName": "key"},
                    "tags": {"shape": "TextList", "location": "querystring", "locationName": "tag"},
                    "since": {"shape": "Stamp", "location": "querystring", "locationName": "since"},
                    "ratio": {"shape": "Ratio", "location": "querystring", "locationName": "ratio"},
                    "asOf": {"shape": "Stamp", "location": "header", "locationName": "x-as-of"},
                    "meta": {"shape": "TextMap", "location": "headers", "locationName": "x-meta-"},
                    "blobData": {"shape": "Data", "locationName": "data"},
                    "count": {"shape": "Count"},
                    "when": {"shape": "Stamp"},
                },
            },
            "SetConfigRequest": {
                "type": "structure",
                "members": {"config": {"shape": "Config"}},
                "payload": "config",
            },
            "Config": {"type": "structure", "members": {"level": {"shape": "Text"}}},
            "Text": {"type": "string"},
            "TextList": {"type": "list", "member": {"shape": "Text"}},
            "TextMap": {"type": "map", "key": {"shape": "Text"}, "value": {"shape": "Text"}},
            "Stamp": {"type": "timestamp"},
            "Ratio": {"type": "double"},
            "Data": {"type": "blob"},
            "Count": {"type": "integer"},
        },
    }
)


def _parse(operation: str, *, labels=None, query=(), headers=None, body=b""):
    return parse_input(SYNTHETIC.operation_model(operation), labels or {}, list(query), headers or {}, body)


def test_every_location_is_read_and_typed():
    params = _parse(
        "PutThing",
        labels={"key": "a/b"},
        query=[
            ("tag", "x"),
            ("tag", "y"),
            ("since", "2024-05-01T12:00:00Z"),
            ("ratio", "0.5"),
            ("other", "1"),
        ],
        headers={"x-as-of": "Wed, 01 May 2024 12:00:00 GMT", "x-meta-colour": "red"},
        body=json.dumps({"data": "aGk=", "count": 3, "when": 1714564800.5}).encode(),
    )

    noon = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    assert params == {
        "key": "a/b",
        "tags": ["x", "y"],
        "since": noon,
        "ratio": 0.5,
        "asOf": noon,
        "meta": {"colour": "red"},
        "blobData": b"hi",
        "count": 3,
        "when": noon + dt.timedelta(seconds=0.5),
    }
    assert params["since"].tzinfo is dt.UTC


def test_payload_member_takes_the_whole_body():
    assert _parse("SetConfig", body=b'{"level": "debug"}') == {"config": {"level": "debug"}}
    assert _parse("SetConfig") == {}


def test_json_nulls_and_unknown_keys_are_left_out():
    assert _parse("PutThing", labels={"key": "k"}, body=b'{"count": null, "surprise": 1}') == {"key": "k"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"count": 2147483648}', "Value 2147483648 at 'count' is not a valid integer"),
        (b'{"count": true}', "Value true at 'count' is not a valid integer"),
        (b'{"data": "not base64!"}', "Value 'not base64!' at 'blobData' is not a valid blob"),
        (b'{"when": "yesterday-ish"}', "Value 'yesterday-ish' at 'when' is not a valid timestamp"),
        (b'{"count": NaN}', None),
    ],
)
def test_wrong_body_types_are_invalid_requests(body, message):
    with pytest.raises(InvalidRequest) as excinfo:
        _parse("PutThing", labels={"key": "k"}, body=body)

    if message is not None:
        assert excinfo.value.message == message
    else:
        assert excinfo.value.message == "Request body is not valid JSON: NaN is not a JSON value"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (("ratio", "nan"), "Value 'nan' at 'ratio' is not a valid double"),
        (("since", "not a time"), "Value 'not a time' at 'since' is not a valid timestamp"),
    ],
)
def test_wrong_query_types_are_invalid_requests(query, message):
    with pytest.raises(InvalidRequest) as excinfo:
        _parse("PutThing", labels={"key": "k"}, query=[query])

    assert excinfo.value.message == message


def test_iot_header_member():
    operation = (
        botocore.session.get_session().get_service_model("iot").operation_model("AttachThingPrincipal")
    )

    params = parse_input(operation, {"thingName": "t1"}, [], {"x-amzn-principal": "arn:aws:iot:cert/1"}, b"")

    assert params == {"thingName": "t1", "principal": "arn:aws:iot:cert/1"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=5))
def test_drop_nulls_leaves_no_null_anywhere(body):
    def has_none(value):
        if value is None:
            return True
        if isinstance(value, dict):
            return any(has_none(item) for item in value.values())
        if isinstance(value, list):
            return any(has_none(item) for item in value)
        return False

    cleaned = drop_nulls(body)

    assert not has_none(cleaned)
    assert set(cleaned) == {key for key, value in body.items() if value is not None}
