"""``GET /metrics`` on the real ``iotjobs serve``: paho devices and boto3 move what a scrape reads.

The module's server runs on a scaled clock (one service minute is half a real
second, so timeouts and cron fires come quickly) and asks for a bearer token.
Counters are shared by every test of the module: each test compares a scrape
taken before it acted with one taken after.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import start_server
from .control_plane._support import signed_request
from .device_plane._support import create_job, raw_device, thing_arn

pytestmark = pytest.mark.integration

TOKEN = "metrics-integration-token"
TIME_SCALE = 120
STATUSES = ["QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "REMOVED", "CANCELED"]
DEVICE_OPERATIONS = ("get", "start-next", "describe", "update", "invalid")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """This module's server (it replaces the session's): a scaled clock and a metrics token."""
    running = start_server(
        tmp_path_factory.mktemp("metrics-data"),
        extra_env={"IOTJOBS_TIME_SCALE": str(TIME_SCALE), "IOTJOBS_METRICS_TOKEN": TOKEN},
    )
    yield running
    assert running.stop() == 0, "\n".join(running.lines)


@dataclass(frozen=True)
class Scrape:
    """One scrape's samples, by name and labels."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(samples)

    def get(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def value(self, name: str, **labels: str) -> float:
        """A series' value; 0 when it is not there."""
        return self.get(name, **labels) or 0.0

    def labelled(self, name: str, **match: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every series of ``name`` whose labels include ``match``."""
        wanted = set(match.items())
        return {
            labels: v for (found, labels), v in self.samples.items() if found == name and wanted <= labels
        }

    def executions(self, job_id: str) -> dict[str, float]:
        """``iotjobs_job_executions`` of one job, by status (empty when the job has no series)."""
        return {
            dict(labels)["status"]: v
            for labels, v in self.labelled("iotjobs_job_executions", job_id=job_id).items()
        }

    def device_requests(self, operation: str, outcome: str) -> float:
        return self.value("iotjobs_device_requests_total", operation=operation, outcome=outcome)

    def transitions(self, before: str, after: str) -> float:
        return self.value("iotjobs_execution_transitions_total", **{"from": before, "to": after})

    def control_plane(self, operation: str, code: int) -> float:
        return self.value("iotjobs_control_plane_requests_total", operation=operation, code=str(code))


def scrape(server, token: str = TOKEN) -> Scrape:
    response = httpx.get(f"{server.http_url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape.parse(response.text)


def scrape_until(server, check: Callable[[Scrape], bool], what: str, timeout: float = 10.0) -> Scrape:
    """Scrape until ``check`` holds (what the service records after it answered); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = scrape(server)
        if check(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not show within {timeout}s")
        time.sleep(0.05)


def wait_for(check: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.05)


def test_a_job_run_by_two_devices_moves_the_gauges_and_the_counters(server, iot, unique):
    a, b, job_id = f"{unique}-a", f"{unique}-b", f"{unique}-job"
    before = scrape(server)
    connected = before.value("iotjobs_connected_devices")
    for name in (a, b):
        iot.create_thing(thingName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job(jobId=f"{unique}-missing")
    with raw_device(server, a) as first, raw_device(server, b) as second:
        scrape_until(server, lambda s: s.value("iotjobs_connected_devices") == connected + 2, "two devices")
        create_job(iot, job_id, [a, b])
        queued = scrape(server)
        assert list(queued.executions(job_id)) == STATUSES  # one series per status, zeros included
        assert queued.executions(job_id) == {status: 2 if status == "QUEUED" else 0 for status in STATUSES}
        assert (
            queued.value("iotjobs_jobs", status="IN_PROGRESS")
            == before.value("iotjobs_jobs", status="IN_PROGRESS") + 1
        )

        first.accepted("get")
        first.accepted("start-next")
        first.accepted(f"{job_id}/get")
        first.rejected(f"{job_id}/update", {"status": "SUCCEEDED", "expectedVersion": 99})  # VersionMismatch
        first.rejected(f"{job_id}/no/such/request")  # InvalidTopic
        running = scrape(server)
        assert {s: n for s, n in running.executions(job_id).items() if n} == {"QUEUED": 1, "IN_PROGRESS": 1}

        first.accepted(f"{job_id}/update", {"status": "SUCCEEDED"})
        second.accepted("start-next")
        second.accepted(f"{job_id}/update", {"status": "FAILED"})
        assert iot.describe_job(jobId=job_id)["job"]["status"] == "COMPLETED"
        after = scrape(server)
    # The job is finished: its series are gone.
    assert after.executions(job_id) == {}
    assert (
        after.value("iotjobs_jobs", status="COMPLETED")
        == before.value("iotjobs_jobs", status="COMPLETED") + 1
    )
    assert after.value("iotjobs_jobs", status="IN_PROGRESS") == before.value(
        "iotjobs_jobs", status="IN_PROGRESS"
    )

    counted = {
        (operation, outcome): after.device_requests(operation, outcome)
        - before.device_requests(operation, outcome)
        for operation in DEVICE_OPERATIONS
        for outcome in ("accepted", "rejected")
    }
    assert {key: n for key, n in counted.items() if n} == {
        ("get", "accepted"): 1,
        ("start-next", "accepted"): 2,
        ("describe", "accepted"): 1,
        ("update", "rejected"): 1,
        ("invalid", "rejected"): 1,
        ("update", "accepted"): 2,
    }
    histogram = "iotjobs_device_request_duration_seconds_count"
    assert after.value(histogram) - before.value(histogram) == sum(counted.values())
    assert after.value(f"{histogram[:-6]}_bucket", le="+Inf") == after.value(histogram)

    assert after.transitions("NONE", "QUEUED") - before.transitions("NONE", "QUEUED") == 2
    assert after.transitions("QUEUED", "IN_PROGRESS") - before.transitions("QUEUED", "IN_PROGRESS") == 2
    assert after.transitions("IN_PROGRESS", "SUCCEEDED") - before.transitions("IN_PROGRESS", "SUCCEEDED") == 1
    assert after.transitions("IN_PROGRESS", "FAILED") - before.transitions("IN_PROGRESS", "FAILED") == 1
    commits = "iotjobs_store_commit_seconds_count"
    assert after.value(commits) > before.value(commits)
    assert after.value("process_cpu_seconds_total") >= before.value("process_cpu_seconds_total") > 0

    # The gateway counts a request once it has answered it: the last ones may still be on their way.
    def control_plane_counted(s: Scrape) -> bool:
        return (
            s.control_plane("CreateThing", 200) - before.control_plane("CreateThing", 200) == 2
            and s.control_plane("CreateJob", 200) - before.control_plane("CreateJob", 200) == 1
            and s.control_plane("DescribeJob", 404) - before.control_plane("DescribeJob", 404) == 1
            and s.control_plane("DescribeJob", 200) - before.control_plane("DescribeJob", 200) == 1
        )

    scrape_until(server, control_plane_counted, "the control-plane requests")
    scrape_until(server, lambda s: s.value("iotjobs_connected_devices") == connected, "the devices leaving")


def test_an_execution_that_times_out_is_counted(server, iot, unique):
    thing, job_id = f"{unique}-slow", f"{unique}-job"
    iot.create_thing(thingName=thing)
    before = scrape(server)
    with raw_device(server, thing) as device:
        create_job(iot, job_id, [thing], timeoutConfig={"inProgressTimeoutInMinutes": 1})
        device.accepted("start-next")
        assert scrape(server).executions(job_id)["IN_PROGRESS"] == 1
        after = scrape_until(
            server,
            lambda s: (
                s.value("iotjobs_execution_timeouts_total") > before.value("iotjobs_execution_timeouts_total")
            ),
            "the timeout",
        )
    assert (
        after.value("iotjobs_execution_timeouts_total") - before.value("iotjobs_execution_timeouts_total")
        == 1
    )
    assert after.transitions("IN_PROGRESS", "TIMED_OUT") - before.transitions("IN_PROGRESS", "TIMED_OUT") == 1
    execution = iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
    assert execution["status"] == "TIMED_OUT"
    assert after.executions(job_id) == {}  # its only execution ended: the job completed


def test_an_aborted_job_is_counted(server, iot, unique):
    things = [f"{unique}-{n}" for n in range(2)]
    job_id = f"{unique}-job"
    for name in things:
        iot.create_thing(thingName=name)
    before = scrape(server)
    abort = {
        "criteriaList": [
            {
                "failureType": "FAILED",
                "action": "CANCEL",
                "thresholdPercentage": 50,
                "minNumberOfExecutedThings": 1,
            }
        ]
    }
    create_job(iot, job_id, things, abortConfig=abort)
    with raw_device(server, things[0]) as device:
        device.accepted(f"{job_id}/update", {"status": "FAILED"})  # 1 of 2 things: 50%, the threshold
    job = iot.describe_job(jobId=job_id)["job"]
    assert (job["status"], job["reasonCode"]) == ("CANCELED", "ABORT_CONFIG_TRIPPED")
    after = scrape(server)
    assert after.value("iotjobs_job_aborts_total") - before.value("iotjobs_job_aborts_total") == 1
    assert after.transitions("QUEUED", "FAILED") - before.transitions("QUEUED", "FAILED") == 1
    assert after.transitions("QUEUED", "CANCELED") - before.transitions("QUEUED", "CANCELED") == 1
    assert (
        after.value("iotjobs_jobs", status="CANCELED") - before.value("iotjobs_jobs", status="CANCELED") == 1
    )
    assert after.executions(job_id) == {}


def test_schedule_fires_are_counted_as_the_history_records_them(server, iot, unique):
    thing, name = f"{unique}-cron", f"{unique}-every-minute"
    iot.create_thing(thingName=thing)
    before = scrape(server)

    def fires(s: Scrape, outcome: str) -> float:
        return s.value("iotjobs_schedule_fires_total", outcome=outcome) - before.value(
            "iotjobs_schedule_fires_total", outcome=outcome
        )

    # Nothing runs the job a fire creates, so the fires after it are skipped: it is still running.
    body = {"cron": "* * * * *", "targets": [thing_arn(thing)], "document": "{}", "overlap": "skip"}
    created = signed_request(server, "POST", f"/schedules/{name}", json.dumps(body).encode())
    assert created.status_code == 200, created.text
    scrape_until(
        server,
        lambda s: fires(s, "created") >= 1 and fires(s, "skipped-overlap") >= 1,
        "a fire and a skipped one",
    )
    paused = signed_request(server, "PATCH", f"/schedules/{name}", json.dumps({"enabled": False}).encode())
    assert paused.status_code == 200, paused.text
    after = scrape(server)
    history = signed_request(server, "GET", f"/schedules/{name}/history").json()["fires"]
    outcomes = [fire["outcome"] for fire in history]
    assert outcomes.count("created") == fires(after, "created") == 1
    assert outcomes.count("skipped-overlap") == fires(after, "skipped-overlap")
    assert fires(after, "failed") == fires(after, "skipped-misfire") == 0
    (job_id,) = [fire["jobId"] for fire in history if fire.get("jobId")]
    assert after.executions(job_id) == {status: 1 if status == "QUEUED" else 0 for status in STATUSES}
    iot.cancel_job(jobId=job_id, force=True)
    scrape_until(
        server,
        lambda s: s.control_plane("Schedules", 200) - before.control_plane("Schedules", 200) >= 3,
        "/schedules",
    )


def test_every_scrape_must_send_the_token(server):
    url = f"{server.http_url}/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"] == 'Bearer realm="iotjobs metrics"'
        assert "Authorization: Bearer" in refused.text
        assert "iotjobs_" not in refused.text
    assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert httpx.head(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_without_a_token_only_this_machine_may_scrape(tmp_path):
    server = start_server(tmp_path / "open", extra_args=["--host", "0.0.0.0"])
    try:
        warnings = [line for line in server.lines if "/metrics on 0.0.0.0:" in line]
        assert len(warnings) == 1 and "WARNING" in warnings[0] and "--metrics-token" in warnings[0]
        url = f"{server.http_url}/metrics"
        assert httpx.get(url).status_code == 200
        # A reverse proxy on this machine names the client it forwards: that client is not local.
        refused = httpx.get(url, headers={"X-Forwarded-For": "203.0.113.9"})
        assert refused.status_code == 403
        assert "203.0.113.9 is not one" in refused.text and "--metrics-token" in refused.text
        assert "iotjobs_" not in refused.text
    finally:
        assert server.stop() == 0, "\n".join(server.lines)
