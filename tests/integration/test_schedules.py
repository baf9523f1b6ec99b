"""Recurring schedules end to end: the CLI, the HTTP routes, fires on a scaled clock, a real device."""

import asyncio
import json
import os
import subprocess
import sys

import pytest

from iot_jobs_bridge.device_sdk.testing import FakeDevice, Succeed

from .conftest import ACCESS_KEY_ID, SECRET, start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fast_server(tmp_path_factory):
    # At time scale 60 a one-minute cron fires every real second.
    server = start_server(tmp_path_factory.mktemp("schedules"), extra_env={"IOTJOBS_TIME_SCALE": "60"})
    yield server
    assert server.stop() == 0


def schedule(server, *args, credentials=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTJOBS_")}
    if credentials:
        env.update(IOTJOBS_ACCESS_KEY_ID=ACCESS_KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
    action, *rest = args
    command = [
        sys.executable,
        "-m",
        "iot_jobs_bridge.jobs_service.cli",
        "schedule",
        action,
        "--endpoint",
        server.http_url,
        *rest,
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_a_schedule_fires_jobs_that_a_device_runs(fast_server):
    iot = fast_server.iot()
    arn = iot.create_thing(thingName="cron-dev")["thingArn"]
    document = json.dumps({"operation": "clean-tmp"})
    created = schedule(fast_server, "create", "cleanup", "--cron", "* * * * *", "--targets", arn,
                       "--document", document, "--overlap", "allow")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["nextFireTime"] > 0
    endpoint = f"mqtt://{fast_server.mqtt_host}:{fast_server.mqtt_port}"

    async def scenario():
        async with FakeDevice("cron-dev", endpoint, [Succeed({"cleaned": "yes"})]) as device:
            return await device.wait_for_reports(3, timeout=30)

    reports = asyncio.run(scenario())
    assert all(r.status == "SUCCEEDED" for r in reports)
    assert all(r.job_id.startswith("cleanup-") and r.job_id.endswith("Z") for r in reports)
    assert len({r.job_id for r in reports}) == len(reports), "each fire is its own job"
    assert schedule(fast_server, "disable", "cleanup").returncode == 0
    history = json.loads(schedule(fast_server, "history", "cleanup").stdout)["fires"]
    succeeded = [f for f in history if f["jobStatus"] == "COMPLETED"]
    assert len(succeeded) >= 3 and all(f["outcome"] == "created" for f in succeeded)
    for fire in succeeded:
        assert iot.describe_job(jobId=fire["jobId"])["job"]["description"].startswith("schedule cleanup")


def test_list_describe_enable_and_delete(fast_server):
    iot = fast_server.iot()
    arn = iot.create_thing(thingName="cron-dev-2")["thingArn"]
    options = ["--cron", "0 3 * * 1", "--timezone", "Europe/Berlin", "--misfire", "run-once"]
    assert (
        schedule(fast_server, "create", "weekly", *options, "--targets", arn, "--document", "{}").returncode
        == 0
    )
    described = json.loads(schedule(fast_server, "describe", "weekly").stdout)
    assert (described["cron"], described["timezone"], described["misfire"]) == (
        "0 3 * * 1",
        "Europe/Berlin",
        "run-once",
    )
    assert json.loads(schedule(fast_server, "disable", "weekly").stdout)["enabled"] is False
    assert json.loads(schedule(fast_server, "enable", "weekly").stdout)["enabled"] is True
    names = [s["name"] for s in json.loads(schedule(fast_server, "list").stdout)["schedules"]]
    assert "weekly" in names
    assert schedule(fast_server, "delete", "weekly").returncode == 0
    gone = schedule(fast_server, "describe", "weekly")
    assert gone.returncode == 1 and "ResourceNotFoundException: Schedule weekly does not exist" in gone.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cron", "61 * * * *"), "InvalidRequestException: cron expression '61 * * * *' is not valid"),
        (("--cron", "0 * * * *", "--timezone", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_schedules_are_a_clear_400(fast_server, args, message):
    arn = (
        fast_server.iot().create_thing(thingName="cron-dev-3")["thingArn"]
        if False
        else "arn:aws:iot:us-east-1:123456789012:thing/x"
    )
    result = schedule(fast_server, "create", "bad", *args, "--targets", arn, "--document", "{}")
    assert result.returncode == 1
    assert message in result.stderr


def test_an_unknown_template_is_named(fast_server):
    arn = "arn:aws:iot:us-east-1:123456789012:thing/x"
    result = schedule(
        fast_server, "create", "tpl", "--cron", "0 * * * *", "--targets", arn, "--template", "nope"
    )
    assert result.returncode == 1 and "job template nope does not exist" in result.stderr


def test_the_document_and_settings_may_come_from_files(fast_server, tmp_path):
    arn = fast_server.iot().create_thing(thingName="cron-dev-4")["thingArn"]
    document = '{"operation": "from-a-file"}'
    (tmp_path / "document.json").write_text(document)
    (tmp_path / "settings.json").write_text('{"timeoutConfig": {"inProgressTimeoutInMinutes": 7}}')
    options = ["--cron", "0 4 * * *", "--targets", arn]
    created = schedule(
        fast_server,
        *("create", "from-files", *options),
        *("--document", f"@{tmp_path}/document.json", "--settings", f"file://{tmp_path}/settings.json"),
    )
    assert created.returncode == 0, created.stderr
    described = json.loads(schedule(fast_server, "describe", "from-files").stdout)
    assert described["document"] == document
    assert described["settings"] == {"timeoutConfig": {"inProgressTimeoutInMinutes": 7}}


def test_a_document_file_that_is_missing_is_named(fast_server, tmp_path):
    arn = "arn:aws:iot:us-east-1:123456789012:thing/x"
    missing = tmp_path / "missing.json"
    result = schedule(
        fast_server, "create", "nofile", "--cron", "0 * * * *", "--targets", arn, "--document", f"@{missing}"
    )
    assert result.returncode == 2
    assert f"iotjobs schedule: --document: cannot read {missing}: No such file or directory" in result.stderr


def test_without_a_key_the_path_looked_at_is_named(fast_server, tmp_path):
    result = schedule(fast_server, "list", "--data-dir", str(tmp_path), credentials=False)
    assert result.returncode == 2
    assert f"({tmp_path}/admin-credentials.json does not exist)" in result.stderr
