"""``device_sdk.testing.FakeDevice`` against the real server: each scripted step as the service sees it."""

import asyncio
import threading

import pytest

from iot_jobs_bridge.device_sdk import JobReport
from iot_jobs_bridge.device_sdk.testing import (
    Disconnect,
    Fail,
    FakeDevice,
    Hang,
    Progress,
    Reboot,
    Reject,
    Sleep,
    StaleVersion,
    Succeed,
)

from ..clients import Inbox
from .helpers import create_job, details, endpoint, execution, make_thing, status_is, wait_until_async


@pytest.fixture
def thing(iot, unique):
    name = f"{unique}-dev"
    return name, make_thing(iot, name)


def test_progress_then_sleep_then_succeed(server, iot, thing, unique):
    name, arn = thing
    job_id = create_job(iot, f"{unique}-job", arn)
    script = [Progress({"percent": "50"}), Sleep(1.0), Succeed({"done": "yes"})]

    async def scenario():
        async with FakeDevice(name, endpoint(server), script) as device:

            def halfway():
                record = execution(iot, job_id, name)
                return record["status"] == "IN_PROGRESS" and details(record) == {"percent": "50"}

            await wait_until_async(halfway, timeout=5, what="progress 50 while the device sleeps")
            assert device.reports == []  # still sleeping
            return await device.wait_for_reports(1)

    reports = asyncio.run(scenario())

    assert reports == [JobReport(job_id, 1, "SUCCEEDED", {"done": "yes"})]
    record = execution(iot, job_id, name)
    assert record["status"] == "SUCCEEDED"
    assert details(record) == {"done": "yes"}


def test_fail_ends_the_job_failed(server, iot, thing, unique):
    name, arn = thing
    job_id = create_job(iot, f"{unique}-job", arn)

    async def scenario():
        async with FakeDevice(name, endpoint(server), [Fail({"reason": "disk full"})]) as device:
            return await device.wait_for_reports(1)

    reports = asyncio.run(scenario())

    assert reports == [JobReport(job_id, 1, "FAILED", {"reason": "disk full"})]
    record = execution(iot, job_id, name)
    assert record["status"] == "FAILED"
    assert details(record) == {"reason": "disk full"}


def test_reject_ends_the_job_rejected_with_the_reason(server, iot, thing, unique):
    name, arn = thing
    job_id = create_job(iot, f"{unique}-job", arn)

    async def scenario():
        async with FakeDevice(name, endpoint(server), [Reject("no space")]) as device:
            return await device.wait_for_reports(1)

    reports = asyncio.run(scenario())

    assert [(r.job_id, r.status, r.reported) for r in reports] == [(job_id, "REJECTED", True)]
    assert reports[0].details["reason"] == "no space"
    record = execution(iot, job_id, name)
    assert record["status"] == "REJECTED"
    assert details(record)["reason"] == "no space"


def test_a_hanging_job_ends_when_the_service_cancels_it(server, iot, thing, unique):
    name, arn = thing
    job_id = create_job(iot, f"{unique}-job", arn)

    async def scenario():
        async with FakeDevice(name, endpoint(server), [Hang()]) as device:
            await wait_until_async(status_is(iot, job_id, name, "IN_PROGRESS"), timeout=5)
            await asyncio.to_thread(iot.cancel_job, jobId=job_id, force=True)
            return await device.wait_for_reports(1)

    reports = asyncio.run(scenario())

    assert len(reports) == 1
    report = reports[0]
    assert report.job_id == job_id
    assert report.reported is False
    assert report.status in ("CANCELED", "ENDED")
    assert execution(iot, job_id, name)["status"] == "CANCELED"


def test_a_dropped_connection_midway_still_reports_once(server, iot, thing, unique):
    name, arn = thing
    job_id = create_job(iot, f"{unique}-job", arn)
    script = [Progress({"percent": "10"}), Disconnect(offline_for=1.0), Succeed({"after": "reconnect"})]
    links = Inbox()

    async def scenario():
        device = FakeDevice(name, endpoint(server), script)
        device.client.on_connection_change(links.put)
        async with device:
            reports = await device.wait_for_reports(1, timeout=12)
            # One more round trip on the same connection: a duplicate report would be in by now.
            await device.client.get_pending()
            return reports, device.reports

    first, later = asyncio.run(scenario())

    assert first == [JobReport(job_id, 1, "SUCCEEDED", {"after": "reconnect"})]
    assert [r.job_id for r in later] == [job_id]
    # Up, cut by the Disconnect step, up again (and down once more at close).
    assert links.items[:3] == [True, False, True]
    record = execution(iot, job_id, name)
    assert record["status"] == "SUCCEEDED"
    assert details(record) == {"after": "reconnect"}


def test_a_script_chosen_by_the_job_document(server, iot, thing, unique):
    name, arn = thing
    failing = create_job(iot, f"{unique}-first", arn, {"operation": "demo", "mode": "fail"})
    passing = create_job(iot, f"{unique}-second", arn, {"operation": "demo", "mode": "pass"})

    def script(job):
        if job.document.get("mode") == "fail":
            return [Fail({"reason": "asked to fail"})]
        return [Progress({"mode": job.document["mode"]}), Succeed({"mode": job.document["mode"]})]

    async def scenario():
        async with FakeDevice(name, endpoint(server), script) as device:
            return await device.wait_for_reports(2)

    reports = asyncio.run(scenario())

    assert [(r.job_id, r.status) for r in reports] == [(failing, "FAILED"), (passing, "SUCCEEDED")]
    assert reports[0].details == {"reason": "asked to fail"}
    assert reports[1].details == {"mode": "pass"}
    assert execution(iot, failing, name)["status"] == "FAILED"
    assert execution(iot, passing, name)["status"] == "SUCCEEDED"
    assert details(execution(iot, passing, name)) == {"mode": "pass"}


def test_queued_jobs_run_one_at_a_time_in_creation_order(server, iot, thing, unique):
    name, arn = thing
    job_ids = [create_job(iot, f"{unique}-job-{n}", arn) for n in range(3)]
    samples: list[list[str]] = []
    stop = threading.Event()

    def sample() -> None:
        # What the service holds IN_PROGRESS for this thing, over and over while the device works.
        while not stop.is_set():
            summaries = iot.list_job_executions_for_thing(thingName=name, status="IN_PROGRESS")
            samples.append([s["jobId"] for s in summaries["executionSummaries"]])
            stop.wait(0.03)

    async def scenario():
        async with FakeDevice(name, endpoint(server), [Sleep(0.5), Succeed()]) as device:
            return await device.wait_for_reports(3, timeout=12)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        reports = asyncio.run(scenario())
    finally:
        stop.set()
        sampler.join(5)

    assert [r.job_id for r in reports] == job_ids
    assert all(r.status == "SUCCEEDED" for r in reports)
    assert max(len(s) for s in samples) == 1, samples  # never two at once
    seen = [s[0] for s in samples if s]
    order = [job for i, job in enumerate(seen) if i == 0 or seen[i - 1] != job]
    assert order == job_ids
    for job_id in job_ids:
        assert execution(iot, job_id, name)["status"] == "SUCCEEDED"


def test_reboot_mid_job_runs_the_job_again_and_reports_it_once(server, iot, thing, unique):
    name, arn = thing
    job_id = create_job(iot, f"{unique}-job", arn)
    script = [Progress({"phase": "installing"}), Reboot(offline_for=0.5), Succeed({"after": "reboot"})]

    async def scenario():
        async with FakeDevice(name, endpoint(server), script) as device:
            reports = await device.wait_for_reports(1, timeout=15)
            return reports, device.runs[job_id]

    reports, runs = asyncio.run(scenario())
    assert runs == 2, "the IN_PROGRESS job is run again after the reboot"
    assert [(r.job_id, r.status, r.reported) for r in reports] == [(job_id, "SUCCEEDED", True)]
    record = execution(iot, job_id, name)
    assert record["status"] == "SUCCEEDED" and details(record) == {"after": "reboot"}


def test_a_stale_expected_version_is_recovered_from(server, iot, thing, unique):
    name, arn = thing
    job_id = create_job(iot, f"{unique}-job", arn)
    script = [Progress({"phase": "verifying"}), Sleep(0.3), StaleVersion(), Succeed({"verified": "yes"})]

    async def scenario():
        async with FakeDevice(name, endpoint(server), script) as device:
            return await device.wait_for_reports(1, timeout=15)

    reports = asyncio.run(scenario())
    assert [(r.status, r.reported) for r in reports] == [("SUCCEEDED", True)]
    record = execution(iot, job_id, name)
    assert record["status"] == "SUCCEEDED"
    assert record["versionNumber"] == 4, "queued, started, progress, succeeded: no repeat"
