"""Recurring schedules end to end: the CLI, the HTTP routes, fires on a scaled clock, a real device."""

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from iot_jobs_bridge.device_sdk.testing import FakeDevice, Succeed

from .conftest import ACCESS_KEY_ID, SECRET, start_server
from .control_plane._support import signed_request
from .device_sdk.helpers import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fast_server(tmp_path_factory):
    # At time scale 60 a one-minute cron fires every real second.
    server = start_server(tmp_path_factory.mktemp("schedules"), extra_env={"IOTJOBS_TIME_SCALE": "60"})
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def real_time_server(tmp_path_factory):
    # Time scale 1: a seconds-field cron fires in real seconds, and an idle scheduler
    # looks again only after a real minute, so a schedule that does not wake it waits that long.
    server = start_server(tmp_path_factory.mktemp("schedules-real-time"))
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


def fires(server, name):
    """A schedule's history, newest first."""
    answer = signed_request(server, "GET", f"/schedules/{name}/history")
    assert answer.status_code == 200, answer.text
    return answer.json()["fires"]


def fires_after(server, name, moment, count=1):
    """The fires after ``moment`` (epoch seconds), once there are ``count`` of them."""
    later = [f for f in fires(server, name) if f["fireTime"] > moment]
    return later if len(later) >= count else None


def call(server, method, path, body):
    answer = signed_request(server, method, path, json.dumps(body).encode())
    return answer.status_code, answer.headers.get("x-amzn-ErrorType"), answer.json()


def test_a_per_second_schedule_on_an_idle_server_fires_at_once_and_never_misfires(real_time_server):
    server = real_time_server
    arn = server.iot().create_thing(thingName="every-second-dev")["thingArn"]
    created = schedule(server, "create", "every-second", "--cron", "* * * * * *", "--targets", arn,
                       "--document", "{}", "--overlap", "allow")  # fmt: skip
    assert created.returncode == 0, created.stderr
    first = json.loads(created.stdout)["nextFireTime"]
    # Nothing else is due on this server: only the creation can have woken the scheduler.
    wait_until(lambda: fires(server, "every-second"), timeout=3, what="the first fire")
    found = wait_until(lambda: fires_after(server, "every-second", 0, count=4), timeout=10)
    assert {f["outcome"] for f in found} == {"created"}, "no fire is a misfire while the server is up"
    times = sorted(f["fireTime"] for f in found)
    assert times == [first + n for n in range(len(times))], "every second fired"
    assert all(f["jobId"] and "reason" not in f for f in found)
    assert call(server, "PATCH", "/schedules/every-second", {"enabled": False})[0] == 200


def test_changing_or_enabling_a_schedule_wakes_the_scheduler(real_time_server):
    server = real_time_server
    arn = server.iot().create_thing(thingName="woken-dev")["thingArn"]
    body = {"cron": "0 0 1 1 *", "targets": [arn], "document": "{}", "overlap": "allow"}
    assert call(server, "POST", "/schedules/woken", body)[0] == 200  # next due in months
    changed_at = time.time()
    assert call(server, "PATCH", "/schedules/woken", {"cron": "* * * * * *"})[0] == 200
    wait_until(lambda: fires_after(server, "woken", changed_at), timeout=3, what="a fire after the change")
    assert call(server, "PATCH", "/schedules/woken", {"enabled": False})[0] == 200
    enabled_at = time.time()
    assert call(server, "PATCH", "/schedules/woken", {"enabled": True})[0] == 200
    wait_until(lambda: fires_after(server, "woken", enabled_at), timeout=4, what="a fire after enabling")
    assert {f["outcome"] for f in fires(server, "woken")} == {"created"}
    assert call(server, "PATCH", "/schedules/woken", {"enabled": False})[0] == 200


def test_a_schedule_whose_target_vanished_records_failed_fires_and_stops_no_other(real_time_server):
    server = real_time_server
    iot = server.iot()
    group = iot.create_thing_group(thingGroupName="vanishing")["thingGroupArn"]
    healthy = iot.create_thing(thingName="healthy-dev")["thingArn"]
    start = len(server.lines)
    for name, target in (("doomed", group), ("healthy", healthy)):
        body = {"cron": "* * * * * *", "targets": [target], "document": "{}", "overlap": "allow"}
        assert call(server, "POST", f"/schedules/{name}", body)[0] == 200
    iot.delete_thing_group(thingGroupName="vanishing")

    def failed():
        found = [f for f in fires(server, "doomed") if f["outcome"] == "failed"]
        return found if len(found) >= 3 else None

    found = wait_until(failed, timeout=8, what="three failed fires")
    # Nulls are left out of answers: a failed fire has no job, only the reason.
    assert [sorted(f) for f in found] == [["fireTime", "outcome", "reason"]] * len(found)
    assert {f["reason"] for f in found} == {"Thing group vanishing does not exist"}
    # The healthy schedule fires every second beside it, before and after the failures.
    last_failure = max(f["fireTime"] for f in found)
    wait_until(lambda: fires_after(server, "healthy", last_failure, count=2), timeout=5, what="healthy fires")
    assert {f["outcome"] for f in fires(server, "healthy")} == {"created"}
    for name in ("doomed", "healthy"):
        assert call(server, "PATCH", f"/schedules/{name}", {"enabled": False})[0] == 200
    lines = server.lines[start:]
    said = [line for line in lines if "Schedule doomed" in line]
    assert len(said) == 1 and said[0].endswith("created no job: Thing group vanishing does not exist"), said
    assert not [line for line in lines if "Traceback" in line or "ERROR" in line]


P = "settings."
BAD_JOB_FIELDS = [
    ({"document": "{bad"}, "The job document is not valid JSON: its brackets do not balance"),
    ({"document": "[1]"}, "The job document must be a JSON object"),
    (
        {"document": '{"a": "' + "x" * 32768 + '"}'},
        "1 validation error detected: Value '{\"a\": \"" + "x" * 32768 + "\"}' at 'document' failed to"
        " satisfy constraint: Member must have length less than or equal to 32768",
    ),
    ({"targets": "arn:aws:iot:us-east-1:123456789012:thing/x"},
     "Value 'arn:aws:iot:us-east-1:123456789012:thing/x' at 'targets' is not a valid list"),
    ({"targets": ["kiosk-17"]}, "Target kiosk-17 is not a thing or thing group ARN"),
    (
        {"targets": ["arn:aws:iot:eu-west-1:123456789012:thing/x"]},
        "Target arn:aws:iot:eu-west-1:123456789012:thing/x is in region eu-west-1 account 123456789012;"
        " this server serves region us-east-1 account 123456789012",
    ),
    (
        {"settings": {"jobExecutionsRolloutConfig": {"maximumPerMinute": 0}}},
        "1 validation error detected: Value '0' at '{P}jobExecutionsRolloutConfig.maximumPerMinute' failed to"
        " satisfy constraint: Member must have value greater than or equal to 1",
    ),
    ({"settings": {"timeoutConfig": "soon"}}, "Value 'soon' at '{P}timeoutConfig' is not a valid structure"),
    (
        {"settings": {"timeoutConfig": {"inProgressTimeoutInMinutes": 0}}},
        "inProgressTimeoutInMinutes must be between 1 and 10080, not 0",
    ),
    (
        {"settings": {"abortConfig": {"criteriaList": [{"failureType": "BROKEN", "action": "CANCEL",
                                                         "thresholdPercentage": 10,
                                                         "minNumberOfExecutedThings": 1}]}}},
        "1 validation error detected: Value 'BROKEN' at '{P}abortConfig.criteriaList.1.member.failureType'"
        " failed to satisfy constraint: Member must satisfy enum value set:"
        " [FAILED, REJECTED, TIMED_OUT, ALL]",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "message"), BAD_JOB_FIELDS)
def test_a_bad_document_target_or_setting_is_refused_at_create_and_update_as_create_job_refuses_it(
    server, iot, unique, fields, message
):
    thing = iot.create_thing(thingName=f"{unique}-thing")["thingArn"]
    good = {"targets": [thing], "document": "{}"}
    as_job = {**good, **{k: v for k, v in fields.items() if k != "settings"}, **fields.get("settings", {})}
    refused = (400, "InvalidRequestException", {"message": message.replace("{P}", "")})
    assert call(server, "PUT", f"/jobs/{unique}-job", as_job) == refused
    in_schedule = (400, "InvalidRequestException", {"message": message.replace("{P}", P)})
    assert (
        call(server, "POST", f"/schedules/{unique}", {"cron": "0 3 * * *", **good, **fields}) == in_schedule
    )
    assert signed_request(server, "GET", f"/schedules/{unique}").status_code == 404
    assert call(server, "POST", f"/schedules/{unique}", {"cron": "0 3 * * *", **good})[0] == 200
    assert call(server, "PATCH", f"/schedules/{unique}", fields) == in_schedule
    unchanged = signed_request(server, "GET", f"/schedules/{unique}").json()
    assert (unchanged["targets"], unchanged["document"], unchanged.get("settings")) == ([thing], "{}", None)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"settings": [1]}, "Value [1] at 'settings' is not a valid structure"),
        ({"cron": 5}, "Value 5 at 'cron' is not a valid string"),
        ({"timezone": None}, "Value null at 'timezone' is not a valid string"),
        ({"enabled": "yes"}, "Value 'yes' at 'enabled' is not a valid boolean"),
        ({"settings": {"presignedUrlConfig": {}}}, "Schedules take only jobExecutionsRolloutConfig,"
         " abortConfig, timeoutConfig, jobExecutionsRetryConfig; not presignedUrlConfig"),
        ({"timezone": "Europe/" + "x" * 5000}, "time zone 'Europe/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... is"
         " longer than 64 characters"),
    ],
)  # fmt: skip
def test_schedule_fields_of_the_wrong_type_are_a_400_naming_them(server, iot, unique, fields, message):
    thing = iot.create_thing(thingName=f"{unique}-thing")["thingArn"]
    body = {"cron": "0 3 * * *", "targets": [thing], "document": "{}"}
    refused = (400, "InvalidRequestException", {"message": message})
    assert call(server, "POST", f"/schedules/{unique}", {**body, **fields}) == refused
    assert call(server, "POST", f"/schedules/{unique}", body)[0] == 200
    assert call(server, "PATCH", f"/schedules/{unique}", fields) == refused


def test_a_missing_target_is_a_400_naming_the_schedule_where_create_job_says_404(server, iot, unique):
    missing = f"arn:aws:iot:us-east-1:123456789012:thinggroup/{unique}-gone"
    job = call(server, "PUT", f"/jobs/{unique}-job", {"targets": [missing], "document": "{}"})
    assert job == (404, "ResourceNotFoundException", {"message": f"Thing group {unique}-gone does not exist"})
    body = {"cron": "0 3 * * *", "targets": [missing], "document": "{}"}
    message = f"A target of schedule {unique} does not exist: Thing group {unique}-gone does not exist"
    assert call(server, "POST", f"/schedules/{unique}", body) == (
        400,
        "InvalidRequestException",
        {"message": message},
    )


def test_the_cli_prints_the_refusal_and_exits_non_zero(server, iot, unique):
    thing = iot.create_thing(thingName=f"{unique}-thing")["thingArn"]
    base = ["create", unique, "--cron", "0 3 * * *", "--targets", thing]
    # A document that is not JSON is refused before it is sent; the service refuses it too (above).
    bad_document = schedule(server, *base, "--document", "{bad")
    assert bad_document.returncode == 2
    assert bad_document.stderr.startswith("iotjobs schedule: --document '{bad' is not JSON (")
    refused = schedule(server, *base, "--document", "[1, 2]")  # JSON, but no job document
    assert refused.returncode == 1
    assert refused.stderr == (
        "iotjobs schedule: InvalidRequestException: The job document must be a JSON object\n"
    )
    bad_setting = schedule(server, *base, "--document", "{}", "--settings",
                           '{"jobExecutionsRolloutConfig": {"maximumPerMinute": 0}}')  # fmt: skip
    assert bad_setting.returncode == 1
    assert "at 'settings.jobExecutionsRolloutConfig.maximumPerMinute' failed to satisfy" in bad_setting.stderr
    not_json = schedule(server, *base, "--document", "{}", "--settings", "{bad")
    assert not_json.returncode == 2
    assert not_json.stderr.startswith("iotjobs schedule: --settings '{bad' is not JSON (")
    assert signed_request(server, "GET", f"/schedules/{unique}").status_code == 404


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
