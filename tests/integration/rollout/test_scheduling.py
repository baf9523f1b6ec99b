"""Scheduled starts, end behaviours and maintenance windows (``schedulingConfig``, decisions.md D31, D35).

Schedules are at least 30 service minutes ahead, so the jobs are all created
at the start of the module (the ``plan`` fixture) and the tests wait on one
shared timeline: at ``TIME_SCALE`` 240 a service minute lasts a quarter of a
real second, and the latest event comes about 33 service minutes in.
"""

import datetime as dt
import itertools
import uuid
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from ._support import (
    MINUTE,
    ServiceClock,
    arns,
    busiest_minute,
    minute_string,
    next_job,
    next_minute,
    sdk_device,
    service_clock,
    wait_for,
)

TIME_SCALE = 240
# How late a scheduled change may happen, in service seconds (0.3 real seconds).
LATE = 0.3 * TIME_SCALE
END_REASON = "SCHEDULED_END_REACHED"
ENDS = ("STOP_ROLLOUT", "CANCEL", "FORCE_CANCEL")
WINDOW_EVERY = 10  # minutes between maintenance windows
WINDOW_LENGTH = 2  # minutes


@dataclass
class Plan:
    clock: ServiceClock
    prefix: str
    start_job: str
    start_at: float
    start_devices: list
    end_jobs: dict[str, str]  # endBehavior -> job id
    end_at: dict[str, float]
    end_things: list[str]
    running: dict[str, str]  # endBehavior -> the thing released first, whose execution was started
    window_job: str
    window_first_open: float
    window_things: list[str]


def queued_times(iot, job_id: str) -> dict[str, float]:
    """queuedAt of each thing's first execution."""
    pages = iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id)
    return {
        summary["thingArn"].rsplit("/", 1)[1]: summary["jobExecutionSummary"]["queuedAt"].timestamp()
        for page in pages
        for summary in page["executionSummaries"]
        if summary["jobExecutionSummary"]["executionNumber"] == 1
    }


def wait_status(iot, job_id: str, status: str, timeout: float) -> dict:
    return wait_for(
        lambda: (job := iot.describe_job(jobId=job_id)["job"])["status"] == status and job,
        timeout,
        f"{job_id} to become {status}",
    )


def ahead(clock: ServiceClock, minutes: int) -> float:
    """A whole minute at least ``minutes`` service minutes from now (schedule times are whole minutes)."""
    return next_minute(clock.now()[1] + minutes * MINUTE)


@pytest.fixture(scope="module")
def plan(server):
    iot = server.iot()
    prefix = f"s{uuid.uuid4().hex[:8]}"
    end_things = [f"{prefix}-end-{i:02}" for i in range(40)]
    window_things = [f"{prefix}-win-{i:02}" for i in range(10)]
    start_things = [f"{prefix}-start-{i}" for i in range(2)]
    for name in end_things + window_things + start_things:
        iot.create_thing(thingName=name)
    with ExitStack() as stack:
        start_devices = [stack.enter_context(sdk_device(server, name)) for name in start_things]
        clock = service_clock(iot, TIME_SCALE, f"{prefix}-clock")

        # Windows open every WINDOW_EVERY minutes, the next one 2-3 minutes from now.
        now = clock.now()[1]
        offset = (dt.datetime.fromtimestamp(now, dt.UTC).minute + 3) % WINDOW_EVERY
        window_job = f"{prefix}-window"
        iot.create_job(
            jobId=window_job,
            document="{}",
            targets=arns(window_things),
            jobExecutionsRolloutConfig={"maximumPerMinute": 2},
            schedulingConfig={
                "maintenanceWindows": [
                    {
                        "startTime": f"cron({offset}/{WINDOW_EVERY} * * * ? *)",
                        "durationInMinutes": WINDOW_LENGTH,
                    }
                ]
            },
        )
        first_open = next_minute(now)
        while dt.datetime.fromtimestamp(first_open, dt.UTC).minute % WINDOW_EVERY != offset:
            first_open += MINUTE

        start_job = f"{prefix}-start"
        start_at = ahead(clock, 31)
        iot.create_job(
            jobId=start_job,
            document='{"op": "scheduled"}',
            targets=arns(start_things),
            schedulingConfig={"startTime": minute_string(start_at)},
        )

        end_jobs, end_at = {}, {}
        for behavior in ENDS:
            end_jobs[behavior] = f"{prefix}-{behavior.lower()}"
            end_at[behavior] = ahead(clock, 31)
            iot.create_job(
                jobId=end_jobs[behavior],
                document="{}",
                targets=arns(end_things),
                jobExecutionsRolloutConfig={"maximumPerMinute": 1},
                schedulingConfig={"endTime": minute_string(end_at[behavior]), "endBehavior": behavior},
            )
        # The thing each end job released first starts its execution, so each behaviour
        # meets an IN_PROGRESS execution at the end.
        running = {behavior: next(iter(queued_times(iot, job_id))) for behavior, job_id in end_jobs.items()}
        devices = {thing: stack.enter_context(sdk_device(server, thing)) for thing in set(running.values())}
        for behavior, thing in running.items():
            devices[thing].update(end_jobs[behavior], "IN_PROGRESS").result(10)

        yield Plan(
            clock,
            prefix,
            start_job,
            start_at,
            start_devices,
            end_jobs,
            end_at,
            end_things,
            running,
            window_job,
            first_open,
            window_things,
        )


def test_maintenance_windows_are_listed_and_the_job_waits_for_the_first(iot, plan):
    job = iot.describe_job(jobId=plan.window_job)["job"]
    starts = [plan.window_first_open + k * WINDOW_EVERY * MINUTE for k in range(7)]
    assert job["scheduledJobRollouts"] == [{"startTime": minute_string(start)} for start in starts]
    if plan.clock.now()[1] < plan.window_first_open:
        assert job["status"] == "SCHEDULED"
        assert iot.list_job_executions_for_job(jobId=plan.window_job)["executionSummaries"] == []
    wait_status(iot, plan.window_job, "IN_PROGRESS", 10)


def test_rollout_happens_only_inside_windows(iot, plan):
    second_open = plan.window_first_open + WINDOW_EVERY * MINUTE
    plan.clock.sleep_until(second_open + WINDOW_LENGTH * MINUTE + LATE)
    queued = sorted(queued_times(iot, plan.window_job).values())
    opens = (plan.window_first_open, second_open)
    # The service's own clock stamps each release, so none may fall outside a window.
    inside = [[at for at in queued if start <= at < start + WINDOW_LENGTH * MINUTE] for start in opens]
    offsets = [round(at - opens[0]) for at in queued]
    assert sum(map(len, inside)) == len(queued), offsets
    # At 2 per minute, 4 fit in a 2-minute window (3 if the last slot was missed by a hair).
    assert 3 <= len(inside[0]) <= 4 and len(inside[1]) >= 2, offsets
    assert iot.describe_job(jobId=plan.window_job)["job"]["isConcurrent"] is True


def test_no_minute_sees_more_than_the_rate_when_a_window_reopens(iot, plan):
    """maximumPerMinute is a hard cap (spec §7.2, D32), also when a window opens after a pause."""
    plan.clock.sleep_until(plan.window_first_open + (WINDOW_EVERY + WINDOW_LENGTH) * MINUTE + LATE)
    queued = sorted(queued_times(iot, plan.window_job).values())
    offsets = [round(at - plan.window_first_open) for at in queued]
    assert busiest_minute(queued, slack=0.1 * TIME_SCALE) <= 2, offsets


def test_a_scheduled_job_waits_for_its_start_time(iot, plan):
    assert plan.clock.now()[1] < plan.start_at - MINUTE, "the tests of this module run in file order"
    job = iot.describe_job(jobId=plan.start_job)["job"]
    assert job["status"] == "SCHEDULED"
    assert set(job["jobProcessDetails"].values()) == {0}
    assert iot.list_job_executions_for_job(jobId=plan.start_job)["executionSummaries"] == []
    for device in plan.start_devices:
        pending = device.get_pending()
        assert (pending.in_progress_jobs, pending.queued_jobs) == ([], [])
        with pytest.raises(iot.exceptions.ResourceNotFoundException):
            iot.describe_job_execution(jobId=plan.start_job, thingName=device.thing)

    job = wait_status(iot, plan.start_job, "IN_PROGRESS", 15)
    for device in plan.start_devices:
        mono, execution = next_job(device, plan.start_job)
        assert plan.clock.latest(mono) >= plan.start_at
        assert execution.job_document == {"op": "scheduled"}
    queued = list(queued_times(iot, plan.start_job).values())
    assert len(queued) == 2
    assert all(plan.start_at <= at <= plan.start_at + LATE for at in queued), queued


def ended(iot, plan, behavior: str) -> dict:
    """The end job once its end has been applied (its lastUpdatedAt moves to the end)."""
    job_id, end = plan.end_jobs[behavior], plan.end_at[behavior]
    plan.clock.sleep_until(end)
    job = wait_for(
        lambda: (job := iot.describe_job(jobId=job_id)["job"])["lastUpdatedAt"].timestamp() >= end and job,
        5,
        f"the end of {job_id}",
    )
    assert job["lastUpdatedAt"].timestamp() <= end + LATE
    return job


def test_end_with_stop_rollout(iot, plan):
    job_id = plan.end_jobs["STOP_ROLLOUT"]
    job = ended(iot, plan, "STOP_ROLLOUT")
    assert (job["status"], job["isConcurrent"]) == ("IN_PROGRESS", False)
    released = queued_times(iot, job_id)
    end = plan.end_at["STOP_ROLLOUT"]
    assert all(at <= end for at in released.values())
    assert 31 <= len(released) < len(plan.end_things)
    unreleased = sorted(set(plan.end_things) - set(released))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job_execution(jobId=job_id, thingName=unreleased[0])

    plan.clock.sleep_until(end + 2 * MINUTE + LATE)  # two more slots at 1/min
    assert queued_times(iot, job_id).keys() == released.keys()
    # What was released carries on, and the job completes once it has all ended.
    running = plan.running["STOP_ROLLOUT"]
    assert iot.describe_job_execution(jobId=job_id, thingName=running)["execution"]["status"] == "IN_PROGRESS"
    for thing in released:
        iot.cancel_job_execution(jobId=job_id, thingName=thing, force=thing == running)
    job = iot.describe_job(jobId=job_id)["job"]
    assert (job["status"], job["jobProcessDetails"]["numberOfCanceledThings"]) == ("COMPLETED", len(released))


@pytest.mark.parametrize("behavior", ["CANCEL", "FORCE_CANCEL"])
def test_end_with_cancel(iot, plan, behavior):
    job_id = plan.end_jobs[behavior]
    job = ended(iot, plan, behavior)
    force = behavior == "FORCE_CANCEL"
    assert (job["status"], job["reasonCode"], job["forceCanceled"]) == ("CANCELED", END_REASON, force)
    details = job["jobProcessDetails"]
    # Unreleased things count as canceled too; the running execution only stops with force.
    things = len(plan.end_things)
    assert details["numberOfCanceledThings"] == (things if force else things - 1)
    assert details["numberOfInProgressThings"] == (0 if force else 1)
    running = iot.describe_job_execution(jobId=job_id, thingName=plan.running[behavior])["execution"]
    assert (running["status"], running["forceCanceled"]) == (
        ("CANCELED", True) if force else ("IN_PROGRESS", False)
    )
    executions = queued_times(iot, job_id)
    assert executions.keys() == set(plan.end_things)


def test_bad_maintenance_windows_are_refused(iot, plan):
    for expression in (
        "cron(61 * * * ? *)",
        "cron(0 12 * * ?)",
        "cron(0 12 * * ? 20x6)",
        "every day at noon",
        "0 25 * * *",
    ):
        with pytest.raises(iot.exceptions.InvalidRequestException):
            iot.create_job(
                jobId=f"{plan.prefix}-bad",
                document="{}",
                targets=arns(plan.window_things[:1]),
                schedulingConfig={"maintenanceWindows": [{"startTime": expression, "durationInMinutes": 30}]},
            )


def test_five_field_cron_and_deleting_a_scheduled_job(iot, plan):
    job_id = f"{plan.prefix}-five"
    iot.create_job(
        jobId=job_id,
        document="{}",
        targets=arns(plan.window_things[:1]),
        schedulingConfig={
            "startTime": minute_string(ahead(plan.clock, 31)),
            "maintenanceWindows": [{"startTime": "30 */2 * * *", "durationInMinutes": 60}],
        },
    )
    job = iot.describe_job(jobId=job_id)["job"]
    assert job["status"] == "SCHEDULED"
    starts = [dt.datetime.fromisoformat(s["startTime"]) for s in job["scheduledJobRollouts"]]
    assert len(starts) == 7
    assert all((s.minute, s.hour % 2) == (30, 0) for s in starts), starts
    assert all(b - a == dt.timedelta(hours=2) for a, b in itertools.pairwise(starts)), starts

    # A SCHEDULED job is deleted only with force (D21).
    with pytest.raises(iot.exceptions.InvalidStateTransitionException):
        iot.delete_job(jobId=job_id)
    iot.delete_job(jobId=job_id, force=True)
    wait_for(lambda: not job_exists(iot, job_id), 5, f"{job_id} to be deleted")


def job_exists(iot, job_id: str) -> bool:
    try:
        iot.describe_job(jobId=job_id)
    except iot.exceptions.ResourceNotFoundException:
        return False
    return True
