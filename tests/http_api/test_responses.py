"""Rendering never fails on text that has no UTF-8 form."""

from __future__ import annotations

import json
from typing import Any

from iot_jobs_bridge.jobs_service.http_api import build_app
from iot_jobs_bridge.jobs_service.http_api.responses import json_response
from tests.http_api.conftest import KEY_ID, REGION, SECRET, client_for, serve


def test_a_lone_surrogate_is_rendered_as_a_json_escape():
    response = json_response({"statusDetails": {"k": "\ud800", "ok": "ü"}}, request_id="r1")

    assert response.status_code == 200
    assert response.body == b'{"statusDetails":{"k":"\\ud800","ok":"\\u00fc"}}'
    assert json.loads(response.body) == {"statusDetails": {"k": "\ud800", "ok": "ü"}}


def test_text_with_a_utf8_form_stays_utf8():
    response = json_response({"ok": "ü😀"}, request_id="r1")

    assert response.body == '{"ok":"ü😀"}'.encode()


def test_a_stored_lone_surrogate_reaches_boto3_instead_of_a_500():
    # A value stored before the edges refused lone surrogates, as a handler returns it.
    def describe_thing(params: dict[str, Any]) -> dict[str, Any]:
        return {"thingName": params["thingName"], "attributes": {"colour": "red\udc80"}}

    with serve(build_app({"DescribeThing": describe_thing}, {KEY_ID: SECRET}, region=REGION)) as url:
        described = client_for(url).describe_thing(thingName="t1")

    assert described["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert described["attributes"] == {"colour": "red\udc80"}
