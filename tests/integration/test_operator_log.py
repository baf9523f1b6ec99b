"""What ``iotjobs serve`` logs for an operator: formats, the access log, job and device events."""

import json

import pytest

from .conftest import start_server
from .device_sdk.helpers import wait_until

pytestmark = pytest.mark.integration

# What `serve` prints to stdout for people (fixed contract), as opposed to log lines.
PRINTED = ("admin credentials:", "iotjobs ready ", "iotjobs stopping", "mqtts listening on")


def log_lines(server) -> list[str]:
    return [line for line in server.lines if not line.startswith(PRINTED)]


@pytest.fixture(scope="module")
def json_server(tmp_path_factory):
    running = start_server(
        tmp_path_factory.mktemp("json-log"), extra_args=["--log-format", "json", "--access-log"]
    )
    yield running
    assert running.stop() == 0, "\n".join(running.lines)


def json_line(server, **fields):
    """The first JSON log line carrying ``fields``, or None."""
    for raw in log_lines(server):
        line = json.loads(raw)
        if all(line.get(key) == value for key, value in fields.items()):
            return line
    return None


def test_json_lines_are_one_object_each_with_the_four_fields(json_server, unique):
    iot = json_server.iot()
    iot.create_thing(thingName=f"{unique}-t")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=f"{unique}-missing")
    # An access line is written once the response has gone out: it may trail the client's return.
    created = wait_until(lambda: json_line(json_server, path=f"/things/{unique}-t"))
    assert (created["logger"], created["level"], created["method"], created["status"]) == (
        "iotjobs.access",
        "INFO",
        "POST",
        200,
    )
    assert created["operation"] == "CreateThing" and created["duration_ms"] >= 0
    missing = wait_until(lambda: json_line(json_server, path=f"/things/{unique}-missing"))
    assert (missing["status"], missing["operation"]) == (404, "DescribeThing")
    for raw in log_lines(json_server):
        line = json.loads(raw)
        assert {"timestamp", "level", "logger", "message"} <= set(line), line
        assert line["timestamp"].endswith("Z")


def test_without_access_log_requests_are_not_logged_at_info(server, iot, unique):
    iot.create_thing(thingName=f"{unique}-quiet")
    assert not [line for line in server.lines if "iotjobs.access" in line]
