"""The log formats of ``iotjobs serve``: text, and JSON with the event's fields."""

import io
import json
import logging
import sys

import pytest

from iot_jobs_bridge.jobs_service.logs import JsonFormatter, setup_logging


def record(message="job j1 created", **extra):
    made = logging.LogRecord("iotjobs.jobs", logging.INFO, "engine.py", 1, message, None, None)
    made.created = 1_700_000_000.25
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_json_line_has_the_four_fields_and_the_events_fields():
    line = JsonFormatter().format(record(job_id="j1", thing="t1", reason="because"))
    assert "\n" not in line
    assert json.loads(line) == {
        "timestamp": "2023-11-14T22:13:20.250Z",
        "level": "INFO",
        "logger": "iotjobs.jobs",
        "message": "job j1 created",
        "job_id": "j1",
        "thing": "t1",
        "reason": "because",
    }


def test_a_json_line_keeps_an_exception_and_any_value_as_text():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = record("it failed", exc_info=sys.exc_info(), path=io.StringIO)
    parsed = json.loads(JsonFormatter().format(failed))
    assert parsed["message"] == "it failed"
    assert "RuntimeError: boom" in parsed["exception"]
    assert parsed["path"] == str(io.StringIO)


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("amqtt").level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("amqtt").setLevel(saved[2])


def test_setup_in_json_writes_one_object_per_line(restore_logging):
    stream = io.StringIO()
    setup_logging("INFO", "json", stream)
    logging.getLogger("iotjobs.jobs").info("job %s created", "j1", extra={"job_id": "j1"})
    logging.getLogger("iotjobs.access").debug("not at INFO")
    logging.getLogger("amqtt.broker").info("amqtt's own chatter")
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["job j1 created"]
    assert json.loads(lines[0])["job_id"] == "j1"


def test_setup_in_text_writes_level_logger_and_message(restore_logging):
    stream = io.StringIO()
    setup_logging("DEBUG", "text", stream)
    logging.getLogger("iotjobs.devices").debug("t1 connected", extra={"thing": "t1"})
    assert stream.getvalue().rstrip().endswith(" DEBUG iotjobs.devices: t1 connected")


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="log format 'xml' is not one of text, json"):
        setup_logging("INFO", "xml")
