"""What ``iotjobs serve`` logs for an operator: formats, the access log, job and device events."""

import asyncio
import json
import os
import subprocess
import sys

import pytest

from iot_jobs_bridge.device_sdk.testing import Fail, FakeDevice, Hang, Succeed
from iot_jobs_bridge.jobs_service.job_policies import ABORT_REASON

from .conftest import ACCESS_KEY_ID, SECRET, start_server
from .device_sdk.helpers import endpoint, wait_until

pytestmark = pytest.mark.integration

# What `serve` prints to stdout for people (fixed contract), as opposed to log lines.
PRINTED = ("admin credentials:", "iotjobs ready ", "iotjobs stopping", "mqtts listening on")


def log_lines(server) -> list[str]:
    return [line for line in server.lines if not line.startswith(PRINTED)]


@pytest.fixture(scope="module")
def json_server(tmp_path_factory):
    # At time scale 60 a minute (a timeout, a rollout rate, a cron step) lasts a second.
    running = start_server(
        tmp_path_factory.mktemp("json-log"),
        extra_args=["--log-format", "json", "--access-log"],
        extra_env={"IOTJOBS_TIME_SCALE": "60"},
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


def lines_with(server, *fragments):
    return [line for line in log_lines(server) if all(f in line for f in fragments)]


def run_device(server, thing, script, reports=1):
    async def scenario():
        async with FakeDevice(thing, endpoint(server), script) as device:
            return await device.wait_for_reports(reports, timeout=30)

    return asyncio.run(scenario())


def test_a_jobs_life_is_in_the_default_log_and_the_services_own_replies_are_not(server, iot, unique):
    thing = f"{unique}-dev"
    arn = iot.create_thing(thingName=thing)["thingArn"]
    iot.create_job(jobId=f"{unique}-ok", targets=[arn], document='{"operation": "x"}')
    run_device(server, thing, [Succeed()])
    completed = wait_until(lambda: lines_with(server, f"job {unique}-ok completed"))
    assert completed[0].endswith(f" INFO iotjobs.jobs: job {unique}-ok completed: 1 SUCCEEDED")
    assert lines_with(server, f"INFO iotjobs.jobs: job {unique}-ok created for 1 thing (SNAPSHOT)")

    iot.create_job(jobId=f"{unique}-stop", targets=[arn], document="{}")
    iot.cancel_job(jobId=f"{unique}-stop", reasonCode="OPS", comment="wrong file")
    iot.delete_job(jobId=f"{unique}-stop")
    wait_until(
        lambda: lines_with(server, f"job {unique}-stop canceled (reasonCode: OPS, comment: wrong file)")
    )
    wait_until(lambda: lines_with(server, f"job {unique}-stop deleted: it was CANCELED, with 1 execution"))
    # Replies the service sends meet its own subscription and are withheld: that is no news.
    assert not [line for line in server.lines if "refused receive" in line]
    about = [line for line in log_lines(server) if unique in line]
    assert len(about) == 5, about  # created, completed; created, canceled, deleted


def test_a_paced_rollout_is_logged_when_it_starts_and_when_all_is_released(json_server, unique):
    iot = json_server.iot()
    arns = [iot.create_thing(thingName=f"{unique}-r{i}")["thingArn"] for i in range(2)]
    iot.create_job(
        jobId=f"{unique}-paced",
        targets=arns,
        document="{}",
        jobExecutionsRolloutConfig={"maximumPerMinute": 1},
    )
    started = wait_until(lambda: json_line(json_server, job_id=f"{unique}-paced", logger="iotjobs.jobs"))
    assert started["message"] == (
        f"job {unique}-paced created for 2 things (SNAPSHOT); rollout started, paced at 1 per minute"
    )
    assert (started["things"], started["rate_per_minute"], started["level"]) == (2, 1, "INFO")
    # One per (scaled) minute: the second thing is released about a second later.
    released = wait_until(
        lambda: json_line(json_server, message=f"job {unique}-paced: all its 2 things released")
    )
    assert released["job_id"] == f"{unique}-paced"


def test_a_timeout_and_an_abort_are_warnings_with_their_reasons(json_server, unique):
    iot = json_server.iot()
    hanging = iot.create_thing(thingName=f"{unique}-hang")["thingArn"]
    failing = iot.create_thing(thingName=f"{unique}-fail")["thingArn"]
    iot.create_job(
        jobId=f"{unique}-slow",
        targets=[hanging],
        document="{}",
        timeoutConfig={"inProgressTimeoutInMinutes": 1},
    )
    iot.create_job(
        jobId=f"{unique}-doomed",
        targets=[failing],
        document="{}",
        abortConfig={
            "criteriaList": [
                {
                    "failureType": "FAILED",
                    "action": "CANCEL",
                    "thresholdPercentage": 50,
                    "minNumberOfExecutedThings": 1,
                }
            ]
        },
    )
    run_device(json_server, f"{unique}-fail", [Fail({"why": "disk full"})])
    aborted = wait_until(lambda: json_line(json_server, job_id=f"{unique}-doomed", level="WARNING"))
    assert aborted["message"].startswith(f"job {unique}-doomed aborted: ")
    assert aborted["reason"] == ABORT_REASON
    assert aborted["comment"] in aborted["message"]

    async def hang():
        async with FakeDevice(f"{unique}-hang", endpoint(json_server), [Hang()]):
            return await asyncio.to_thread(
                wait_until, lambda: json_line(json_server, job_id=f"{unique}-slow", level="WARNING"), 20
            )

    timed_out = asyncio.run(hang())
    assert timed_out["message"] == (
        f"execution of job {unique}-slow on {unique}-hang timed out:"
        " its timer (inProgressTimeoutInMinutes) ran out"
    )
    assert (timed_out["thing"], timed_out["reason"]) == (f"{unique}-hang", "in-progress timeout")


def test_a_schedule_firing_is_logged_with_the_job_it_created(json_server, unique):
    arn = json_server.iot().create_thing(thingName=f"{unique}-cron")["thingArn"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTJOBS_")}
    env.update(IOTJOBS_ACCESS_KEY_ID=ACCESS_KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
    command = [sys.executable, "-m", "iot_jobs_bridge.jobs_service.cli", "schedule"]
    name = f"{unique}-s"
    options = [
        "--endpoint",
        json_server.http_url,
        "--cron",
        "* * * * *",
        "--targets",
        arn,
        "--document",
        "{}",
    ]
    created = subprocess.run(
        [*command, "create", name, *options], env=env, capture_output=True, text=True, timeout=60
    )
    assert created.returncode == 0, created.stderr
    try:
        fired = wait_until(lambda: json_line(json_server, schedule=name), timeout=20)
    finally:
        subprocess.run([*command, "delete", "--endpoint", json_server.http_url, name], env=env, timeout=60)
    assert fired["logger"] == "iotjobs.schedules"
    assert fired["job_id"].startswith(f"{name}-") and fired["job_id"].endswith("Z")
    assert fired["message"] == f"schedule {name} fired: job {fired['job_id']} created"
