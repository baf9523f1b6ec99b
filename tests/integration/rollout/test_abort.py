"""Abort criteria (``abortConfig``): executed things are the things notified (decisions.md D33).

A tripped job is CANCELED with reasonCode ABORT_CONFIG_TRIPPED; QUEUED and
unreleased executions are CANCELED, IN_PROGRESS ones run on and may finish.
"""

import json
import re
from contextlib import ExitStack

from ..device_plane._support import raw_device
from ._support import (
    arns,
    next_job,
    notify_next_monitor,
    sdk_devices,
    timed_create_job,
    wait_for,
    watch_events,
)

TIME_SCALE = 60
REASON = "ABORT_CONFIG_TRIPPED"
# How late a release may reach a device, in service seconds (0.3 real seconds).
LATE = 0.3 * TIME_SCALE


def abort_on(failure_type: str, threshold: float, minimum: int) -> dict:
    return {
        "criteriaList": [
            {
                "failureType": failure_type,
                "action": "CANCEL",
                "thresholdPercentage": threshold,
                "minNumberOfExecutedThings": minimum,
            }
        ]
    }


def status_of(iot, job_id: str, thing: str, number: int | None = None) -> str:
    extra = {} if number is None else {"executionNumber": number}
    return iot.describe_job_execution(jobId=job_id, thingName=thing, **extra)["execution"]["status"]


def test_abort_counts_notified_things_and_spares_running_executions(server, iot, unique):
    names = [f"{unique}-{i}" for i in range(8)]
    job_id = f"{unique}-job"
    with ExitStack() as stack:
        devices = {}
        for name in names:
            iot.create_thing(thingName=name)
            devices[name] = stack.enter_context(raw_device(server, name))
        monitor = stack.enter_context(notify_next_monitor(server, f"{unique}-monitor"))
        events = stack.enter_context(watch_events(server, f"{unique}-events", job_id))
        clock = timed_create_job(
            iot,
            TIME_SCALE,
            job_id,
            document="{}",
            targets=arns(names),
            jobExecutionsRolloutConfig={"maximumPerMinute": 2},
            abortConfig=abort_on("FAILED", 40, 4),
        )

        def released(count: int):
            return devices[monitor.wait_releases(job_id, count)[-1].thing]

        first = released(1)
        first.accepted(f"{job_id}/update", {"status": "FAILED"})
        # 1 failure of 1 notified thing is 100%, but fewer than 4 things have been notified.
        assert iot.describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"
        running = released(2)
        running.accepted("start-next")
        queued = released(3)
        mark = queued.settle()
        tripping = released(4)
        tripping.accepted(f"{job_id}/update", {"status": "FAILED"})  # 2 of 4 notified: 50% >= 40%
        _, tripped = clock.now()

        job = iot.describe_job(jobId=job_id)["job"]
        assert (job["status"], job["reasonCode"], job["isConcurrent"]) == ("CANCELED", REASON, False)
        assert job["forceCanceled"] is False
        comment = job["comment"]
        assert all(re.search(rf"\b{n}\b", comment) for n in ("2", "4", "40")), comment
        notified = [release.thing for release in monitor.releases(job_id)]
        details = job["jobProcessDetails"]
        # The QUEUED thing and every thing never released are counted as canceled.
        assert (details["numberOfFailedThings"], details["numberOfInProgressThings"]) == (2, 1)
        assert (details["numberOfCanceledThings"], details["numberOfQueuedThings"]) == (5, 0)
        assert status_of(iot, job_id, queued.thing) == "CANCELED"
        unreleased = [name for name in names if name not in notified]
        assert unreleased, "the abort came after the whole rollout"
        for name in unreleased:
            assert status_of(iot, job_id, name) == "CANCELED"
            assert devices[name].pending() == ([], [])

        for operation in ("cancellation_in_progress", "canceled"):
            topic = f"$aws/events/job/{job_id}/{operation}"
            _, payload = events.wait_for(lambda item, topic=topic: item[0] == topic)
            assert json.loads(payload)["jobId"] == job_id

        # The running execution carries on and may still finish.
        running.accepted(f"{job_id}/update", {"status": "SUCCEEDED"})
        details = iot.describe_job(jobId=job_id)["job"]["jobProcessDetails"]
        assert (details["numberOfSucceededThings"], details["numberOfInProgressThings"]) == (1, 0)
        assert iot.describe_job(jobId=job_id)["job"]["status"] == "CANCELED"

        # Nothing is released after the abort, though the rollout had more slots to come.
        clock.sleep_until(tripped + 2 * 30 + LATE)
        assert [release.thing for release in monitor.releases(job_id)] == notified

        # The device whose QUEUED execution was canceled has been told (long since, by now).
        told = [payload["jobs"] for payload in queued.notifications(mark, "notify")]
        told_next = [payload.get("execution") for payload in queued.notifications(mark, "notify-next")]
        assert (told, told_next) == ([{}], [None]), "notify and notify-next after the abort"


def test_rejected_criterion_ignores_other_failures_and_drops_queued_retries(server, iot, unique):
    names = [f"{unique}-{i}" for i in range(4)]
    job_id = f"{unique}-job"
    with sdk_devices(server, iot, names) as (failing, rejecting, tripping, idle):
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns(names),
            abortConfig=abort_on("REJECTED", 50, 2),
            jobExecutionsRetryConfig={"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1}]},
        )
        failing.update(job_id, "FAILED").result(10)
        next_job(failing, job_id, number=2)  # its retry, queued at once
        assert status_of(iot, job_id, failing.thing) == "QUEUED"
        rejecting.update(job_id, "REJECTED").result(10)  # 1 of 4 notified: 25%
        assert iot.describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"
        tripping.update(job_id, "REJECTED").result(10)  # 2 of 4: 50%

        job = iot.describe_job(jobId=job_id)["job"]
        assert (job["status"], job["reasonCode"]) == ("CANCELED", REASON)
        assert status_of(iot, job_id, idle.thing) == "CANCELED"
        # The queued retry is dropped; the failed attempt stays as it was.
        assert status_of(iot, job_id, failing.thing, 1) == "FAILED"
        assert status_of(iot, job_id, failing.thing, 2) == "CANCELED"
        for device in (failing, idle):
            assert device.start_next().result(10).execution is None
        # Both devices whose QUEUED executions were canceled are told so.
        for device in (failing, idle):
            device.next_events.wait_for(lambda item: item[1].execution is None, timeout=2)


def test_timed_out_criterion_counts_only_timeouts(server, iot, unique):
    names = [f"{unique}-{i}" for i in range(4)]
    job_id = f"{unique}-job"
    with sdk_devices(server, iot, names) as (failing, rejecting, slow, idle):
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns(names),
            timeoutConfig={"inProgressTimeoutInMinutes": 1},
            abortConfig=abort_on("TIMED_OUT", 25, 4),
        )
        failing.update(job_id, "FAILED").result(10)
        rejecting.update(job_id, "REJECTED").result(10)
        assert iot.describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"
        slow.start_next().result(10)  # 1 of 4 once it times out: 25%
        job = wait_for(
            lambda: (job := iot.describe_job(jobId=job_id)["job"])["status"] == "CANCELED" and job,
            5,
            "the abort",
        )
    assert job["reasonCode"] == REASON
    details = job["jobProcessDetails"]
    assert (details["numberOfTimedOutThings"], details["numberOfFailedThings"]) == (1, 1)
    assert (details["numberOfRejectedThings"], details["numberOfCanceledThings"]) == (1, 1)
    assert status_of(iot, job_id, idle.thing) == "CANCELED"


def test_all_criterion_adds_up_every_failure_type(server, iot, unique):
    names = [f"{unique}-{i}" for i in range(4)]
    job_id = f"{unique}-job"
    with sdk_devices(server, iot, names) as (failing, rejecting, slow, idle):
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns(names),
            timeoutConfig={"inProgressTimeoutInMinutes": 1},
            abortConfig=abort_on("ALL", 75, 1),
        )
        failing.update(job_id, "FAILED").result(10)  # 25%
        rejecting.update(job_id, "REJECTED").result(10)  # 50%
        assert iot.describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"
        slow.start_next().result(10)  # 75% once it times out
        job = wait_for(
            lambda: (job := iot.describe_job(jobId=job_id)["job"])["status"] == "CANCELED" and job,
            5,
            "the abort",
        )
    assert job["reasonCode"] == REASON
    assert status_of(iot, job_id, slow.thing) == "TIMED_OUT"
    assert status_of(iot, job_id, idle.thing) == "CANCELED"
