"""In-progress and step timers (spec §3.4, decisions.md D36), driven by official-SDK devices.

At ``TIME_SCALE`` 120 a service minute lasts half a real second. The SDK's V2
models drop ``approximateSecondsBeforeTimedOut``, so it is read from raw paho
replies and from boto3.
"""

import json
import math
import time

from ..device_plane._support import modeled_error, raw_device
from ._support import (
    MINUTE,
    ServiceClock,
    arns,
    next_job,
    sdk_devices,
    service_clock,
    wait_for,
    watch_events,
)

TIME_SCALE = 120
# How late a timer may fire, in service seconds (0.3 real seconds).
LATE = 0.3 * TIME_SCALE


def execution(iot, job_id: str, thing: str) -> dict:
    return iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]


def wait_timed_out(iot, job_id: str, thing: str, timeout: float = 5.0) -> dict:
    return wait_for(
        lambda: (found := execution(iot, job_id, thing))["status"] == "TIMED_OUT" and found,
        timeout,
        f"{thing} to time out",
    )


def assert_timed_out_after(ended: dict, service_seconds: float, since: str = "startedAt") -> None:
    """TIMED_OUT was recorded ``service_seconds`` after ``since``: never sooner, at most LATE later."""
    elapsed = ended["lastUpdatedAt"].timestamp() - ended[since].timestamp()
    assert service_seconds - 0.01 <= elapsed <= service_seconds + LATE, elapsed


def seconds_left_bounds(clock: ServiceClock, deadline: float, sent: float, received: float) -> range:
    """The values ``approximateSecondsBeforeTimedOut`` may take in a reply to a request sent and
    answered at these monotonic times: the whole seconds left, rounded up."""
    return range(math.ceil(deadline - clock.latest(received)), math.ceil(deadline - clock.earliest(sent)) + 1)


def timed(request):
    """Run ``request``; return its result with the monotonic times it was sent and answered."""
    sent = time.monotonic()
    result = request()
    return result, sent, time.monotonic()


def test_in_progress_timer_starts_when_the_execution_starts(server, iot, unique):
    job_id = f"{unique}-job"
    with (
        sdk_devices(server, iot, [f"{unique}-dev"]) as (device,),
        watch_events(server, f"{unique}-events", job_id) as events,
    ):
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns([device.thing]),
            timeoutConfig={"inProgressTimeoutInMinutes": 2},
        )
        next_job(device, job_id)
        queued = execution(iot, job_id, device.thing)
        assert "approximateSecondsBeforeTimedOut" not in queued  # no timer runs while QUEUED
        clock = service_clock(iot, TIME_SCALE, f"{unique}-clock")
        clock.sleep_until(queued["queuedAt"].timestamp() + MINUTE)  # a QUEUED minute does not count

        started = device.start_next().result(10).execution
        assert (started.status, started.version_number) == ("IN_PROGRESS", 2)
        device.next_events.wait_for(lambda item: item[1].execution is None, timeout=5)
        ended = wait_timed_out(iot, job_id, device.thing)
        assert ended["versionNumber"] == 3
        assert "approximateSecondsBeforeTimedOut" not in ended
        assert_timed_out_after(ended, 2 * MINUTE)
        assert ended["lastUpdatedAt"].timestamp() - ended["queuedAt"].timestamp() >= 3 * MINUTE

        topic = f"$aws/events/jobExecution/{job_id}/timed_out"
        _, payload = events.wait_for(lambda item: item[0] == topic, timeout=5)
        event = json.loads(payload)
        assert (event["status"], event["operation"]) == ("TIMED_OUT", "timed_out")
        assert event["thingArn"] == arns([device.thing])[0]

        error = modeled_error(device.update(job_id, "SUCCEEDED"))
        assert (error.code, error.execution_state.status) == ("InvalidStateTransition", "TIMED_OUT")
        assert error.execution_state.version_number == 3
    job = iot.describe_job(jobId=job_id)["job"]
    assert (job["status"], job["jobProcessDetails"]["numberOfTimedOutThings"]) == ("COMPLETED", 1)


def test_a_step_timeout_on_start_next_ends_the_execution_first(server, iot, unique):
    job_id = f"{unique}-job"
    with sdk_devices(server, iot, [f"{unique}-dev"]) as (device,):
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns([device.thing]),
            timeoutConfig={"inProgressTimeoutInMinutes": 10},
        )
        device.start_next(step_timeout_in_minutes=1).result(10)
        device.next_events.wait_for(lambda item: item[1].execution is None, timeout=5)
    assert_timed_out_after(wait_timed_out(iot, job_id, device.thing), MINUTE)


def test_a_step_timer_never_outlasts_the_in_progress_timer(server, iot, unique):
    job_id = f"{unique}-job"
    with sdk_devices(server, iot, [f"{unique}-dev"]) as (device,):
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns([device.thing]),
            timeoutConfig={"inProgressTimeoutInMinutes": 1},
        )
        device.start_next(step_timeout_in_minutes=3).result(10)
        device.next_events.wait_for(lambda item: item[1].execution is None, timeout=5)
    assert_timed_out_after(wait_timed_out(iot, job_id, device.thing), MINUTE)


def test_a_step_timeout_set_by_update(server, iot, unique):
    job_id = f"{unique}-job"
    with sdk_devices(server, iot, [f"{unique}-dev"]) as (device,):
        iot.create_job(jobId=job_id, document="{}", targets=arns([device.thing]))
        next_job(device, job_id)
        device.update(job_id, "IN_PROGRESS", step_timeout_in_minutes=1).result(10)
        device.next_events.wait_for(lambda item: item[1].execution is None, timeout=5)
        ended = wait_timed_out(iot, job_id, device.thing)
        assert_timed_out_after(ended, MINUTE)
        assert ended["versionNumber"] == 3
        error = modeled_error(device.update(job_id, "IN_PROGRESS"))
        assert error.code == "InvalidStateTransition"


def test_step_timers_are_replaced_and_cleared(server, iot, unique):
    """Seconds left, as device replies show them, follow each change of the step timer."""
    thing = f"{unique}-dev"
    job_id = f"{unique}-job"
    iot.create_thing(thingName=thing)
    with raw_device(server, thing) as device:
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns([thing]),
            timeoutConfig={"inProgressTimeoutInMinutes": 4},
        )
        clock = service_clock(iot, TIME_SCALE, f"{unique}-clock")

        def assert_seconds_left(deadline: float) -> None:
            reply, sent, received = timed(lambda: device.accepted(f"{job_id}/get"))
            left = reply["execution"]["approximateSecondsBeforeTimedOut"]
            assert left in seconds_left_bounds(clock, deadline, sent, received), (left, deadline)

        reply, sent, received = timed(lambda: device.accepted("start-next", {"stepTimeoutInMinutes": 2}))
        start = execution(iot, job_id, thing)["startedAt"].timestamp()
        left = reply["execution"]["approximateSecondsBeforeTimedOut"]
        assert left in seconds_left_bounds(clock, start + 2 * MINUTE, sent, received)
        assert_seconds_left(start + 2 * MINUTE)

        # A new step timer replaces the old one; it still ends before the in-progress bound.
        device.accepted(f"{job_id}/update", {"status": "IN_PROGRESS", "stepTimeoutInMinutes": 3})
        updated = execution(iot, job_id, thing)["lastUpdatedAt"].timestamp()
        assert_seconds_left(updated + 3 * MINUTE)

        # -1 clears it: only the in-progress timer is left.
        device.accepted(f"{job_id}/update", {"status": "IN_PROGRESS", "stepTimeoutInMinutes": -1})
        assert_seconds_left(start + 4 * MINUTE)
        ended = wait_timed_out(iot, job_id, thing)
        assert_timed_out_after(ended, 4 * MINUTE)
        assert ended["versionNumber"] == 5


def test_no_seconds_left_without_a_running_timer(server, iot, unique):
    thing = f"{unique}-dev"
    job_id = f"{unique}-job"
    iot.create_thing(thingName=thing)
    with raw_device(server, thing) as device:
        iot.create_job(jobId=job_id, document="{}", targets=arns([thing]))
        assert "approximateSecondsBeforeTimedOut" not in device.accepted(f"{job_id}/get")["execution"]
        started = device.accepted("start-next")["execution"]
        assert started["status"] == "IN_PROGRESS"
        assert "approximateSecondsBeforeTimedOut" not in started
        assert "approximateSecondsBeforeTimedOut" not in device.accepted(f"{job_id}/get")["execution"]
        assert "approximateSecondsBeforeTimedOut" not in execution(iot, job_id, thing)


def test_the_control_plane_reports_seconds_left(server, iot, unique):
    job_id = f"{unique}-job"
    with sdk_devices(server, iot, [f"{unique}-dev"]) as (device,):
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns([device.thing]),
            timeoutConfig={"inProgressTimeoutInMinutes": 2},
        )
        clock = service_clock(iot, TIME_SCALE, f"{unique}-clock")
        device.start_next(step_timeout_in_minutes=1).result(10)
        described, sent, received = timed(lambda: execution(iot, job_id, device.thing))
    deadline = described["startedAt"].timestamp() + MINUTE
    assert described.get("approximateSecondsBeforeTimedOut") in seconds_left_bounds(
        clock, deadline, sent, received
    ), described
