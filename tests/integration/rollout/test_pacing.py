"""Paced rollouts (``jobExecutionsRolloutConfig``), observed by official-SDK devices and an admin monitor.

At ``TIME_SCALE`` 60 a service minute lasts one real second, so ``maximumPerMinute: 1``
releases one thing per real second. A release is checked against the time its
thing saw the notify-next, mapped onto the service clock: never before it is due,
and at most ``LATE`` service seconds after.
"""

import pytest

from ..device_plane._support import group_arn, modeled_error
from ._support import (
    MINUTE,
    ServiceClock,
    arns,
    next_job,
    notify_next_monitor,
    sdk_devices,
    timed_create_job,
    wait_for,
)

TIME_SCALE = 60
# How long after its due time a release may reach a device, in service seconds (0.3 real seconds).
LATE = 0.3 * TIME_SCALE
# A release planned from an earlier, observed one inherits that one's lateness (scheduler delay,
# milliseconds in practice); this much of it is allowed (0.1 real seconds).
ANCHOR_SLACK = 0.1 * TIME_SCALE


def due_times(start: float, gaps: list[float]) -> list[float]:
    """Release times: the first at ``start``, each next one ``gap`` service seconds later."""
    times = [start]
    for gap in gaps:
        times.append(times[-1] + gap)
    return times


def assert_seen_on_time(clock: ServiceClock, seen: list[float], due: list[float], early: float = 0.0) -> None:
    """Each arrival (monotonic) is no earlier than its due service time (less ``early``)
    and at most ``LATE`` after it."""
    assert len(seen) == len(due)
    report = []
    for mono, at in zip(sorted(seen), due, strict=True):
        earliest, latest = clock.earliest(mono) - at, clock.latest(mono) - at
        report.append(f"due {at - due[0]:6.1f}: seen {earliest:+6.1f}..{latest:+6.1f}")
        if latest < -early or earliest > LATE:
            raise AssertionError("releases off their pace (service seconds):\n" + "\n".join(report))


def queued_times(iot, job_id: str) -> list[float]:
    """``queuedAt`` of the job's executions (service time), in order."""
    executions = iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]
    return sorted(e["jobExecutionSummary"]["queuedAt"].timestamp() for e in executions)


def assert_queued_on_time(iot, job_id: str, due: list[float], early: float = 0.0) -> None:
    """The service's own ``queuedAt`` of each execution: not before its due time
    (less ``early``), at most ``LATE`` after."""
    queued = queued_times(iot, job_id)
    offsets = [round(q - d, 2) for q, d in zip(queued, due, strict=True)]
    assert all(-early - 0.01 <= offset <= LATE for offset in offsets), offsets


def job_ids(iot) -> set[str]:
    return {job["jobId"] for page in iot.get_paginator("list_jobs").paginate() for job in page["jobs"]}


def run_to_success(device, job_id: str) -> None:
    started = device.start_next().result(10).execution
    assert (started.job_id, started.status) == (job_id, "IN_PROGRESS")
    device.update(job_id, "SUCCEEDED").result(10)


def test_maximum_per_minute_releases_one_thing_at_a_time(server, iot, unique):
    names = [f"{unique}-{i}" for i in range(4)]
    job_id = f"{unique}-job"
    with (
        sdk_devices(server, iot, names) as devices,
        notify_next_monitor(server, f"{unique}-monitor") as monitor,
    ):
        clock = timed_create_job(
            iot,
            TIME_SCALE,
            job_id,
            document='{"op": "paced"}',
            targets=arns(names),
            jobExecutionsRolloutConfig={"maximumPerMinute": 1},
        )
        (first,) = monitor.wait_releases(job_id, 1)

        waiting = next(d for d in devices if d.thing != first.thing)
        pending = waiting.get_pending()
        assert (pending.in_progress_jobs, pending.queued_jobs) == ([], [])
        assert modeled_error(waiting.describe(job_id)).code == "ResourceNotFound"
        with pytest.raises(iot.exceptions.ResourceNotFoundException):
            iot.describe_job_execution(jobId=job_id, thingName=waiting.thing)
        assert waiting.next_events.count(lambda item: item[1].execution is not None) == 0

        releases = monitor.wait_releases(job_id, 4, timeout=10)
        due = due_times(clock.at, [MINUTE] * 3)
        assert_seen_on_time(clock, [r.mono for r in releases], due)
        assert_seen_on_time(clock, [next_job(d, job_id)[0] for d in devices], due)
        assert_queued_on_time(iot, job_id, due)

        for device in devices:
            run_to_success(device, job_id)
        job = iot.describe_job(jobId=job_id)["job"]
        assert (job["status"], job["jobProcessDetails"]["numberOfSucceededThings"]) == ("COMPLETED", 4)


def test_describe_job_while_things_wait(server, iot, unique):
    names = [f"{unique}-{i}" for i in range(3)]
    for name in names:
        iot.create_thing(thingName=name)
    job_id = f"{unique}-job"
    with notify_next_monitor(server, f"{unique}-monitor") as monitor:
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns(names),
            jobExecutionsRolloutConfig={"maximumPerMinute": 2},
        )
        # The first release is part of creating the job; the next is half a service minute away.
        job = iot.describe_job(jobId=job_id)["job"]
        rolling = (job["status"], job["isConcurrent"], job["jobProcessDetails"]["numberOfQueuedThings"])
        assert rolling == ("IN_PROGRESS", True, 1)
        processing = job["jobProcessDetails"].get("processingTargets")

        monitor.wait_releases(job_id, 2)
        job = iot.describe_job(jobId=job_id)["job"]
        assert (job["isConcurrent"], job["jobProcessDetails"]["numberOfQueuedThings"]) == (True, 2)

        monitor.wait_releases(job_id, 3)
        job = wait_for(
            lambda: (job := iot.describe_job(jobId=job_id)["job"])["isConcurrent"] is False and job,
            2,
            "the end of the rollout",
        )
        assert (job["status"], job["jobProcessDetails"]["numberOfQueuedThings"]) == ("IN_PROGRESS", 3)
        assert "processingTargets" not in job["jobProcessDetails"]
        # Checked last, so the rest is checked even while the field is missing.
        assert processing == arns(names), "jobProcessDetails.processingTargets while things wait"


def test_exponential_rate_grows_with_notified_things_up_to_the_maximum(server, iot, unique):
    names = [f"{unique}-{i}" for i in range(8)]
    for name in names:
        iot.create_thing(thingName=name)
    job_id = f"{unique}-job"
    rollout = {
        "maximumPerMinute": 3,
        "exponentialRate": {
            "baseRatePerMinute": 1,
            "incrementFactor": 2.0,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 2},
        },
    }
    with notify_next_monitor(server, f"{unique}-monitor") as monitor:
        clock = timed_create_job(
            iot, TIME_SCALE, job_id, document="{}", targets=arns(names), jobExecutionsRolloutConfig=rollout
        )
        releases = monitor.wait_releases(job_id, 8, timeout=15)
    # 1/min until 2 things are notified, 2/min until 4 are, then 4/min capped at 3/min.
    due = due_times(clock.at, [60, 30, 30, 20, 20, 20, 20])
    assert_seen_on_time(clock, [r.mono for r in releases], due)
    assert_queued_on_time(iot, job_id, due)


def test_exponential_rate_grows_with_succeeded_things(server, iot, unique):
    names = [f"{unique}-{i}" for i in range(5)]
    job_id = f"{unique}-job"
    rollout = {
        "maximumPerMinute": 2,
        "exponentialRate": {
            "baseRatePerMinute": 1,
            "incrementFactor": 2.0,
            "rateIncreaseCriteria": {"numberOfSucceededThings": 1},
        },
    }
    with (
        sdk_devices(server, iot, names) as devices,
        notify_next_monitor(server, f"{unique}-monitor") as monitor,
    ):
        by_thing = {device.thing: device for device in devices}
        clock = timed_create_job(
            iot, TIME_SCALE, job_id, document="{}", targets=arns(names), jobExecutionsRolloutConfig=rollout
        )
        # The first thing released stays QUEUED for now: notified things do not count, so the
        # rate stays 1/min until the second one succeeds.
        for count in range(2, 6):
            release = monitor.wait_releases(job_id, count, timeout=10)[-1]
            by_thing[release.thing].update(job_id, "SUCCEEDED").result(10)
        first = monitor.releases(job_id)[0]
        by_thing[first.thing].update(job_id, "SUCCEEDED").result(10)
        releases = monitor.releases(job_id)

    queued = queued_times(iot, job_id)
    # The release due once the second thing succeeded may keep the slot planned at 1/min
    # or move up to the new rate; every release after it is 2/min.
    third = queued[2]
    assert clock.at + 60 + 30 - 0.01 <= third <= clock.at + 120 + LATE, third - clock.at
    due = [*due_times(clock.at, [60]), *due_times(third, [30, 30])]
    assert_seen_on_time(clock, [r.mono for r in releases], due, early=ANCHOR_SLACK)
    assert_queued_on_time(iot, job_id, due, early=ANCHOR_SLACK)
    job = iot.describe_job(jobId=job_id)["job"]
    assert (job["status"], job["jobProcessDetails"]["numberOfSucceededThings"]) == ("COMPLETED", 5)


def test_continuous_job_releases_later_joiners_at_once(server, iot, unique):
    group = f"{unique}-group"
    iot.create_thing_group(thingGroupName=group)
    members = [f"{unique}-{i}" for i in range(3)]
    joiners = [f"{unique}-late-{i}" for i in range(2)]
    for name in members + joiners:
        iot.create_thing(thingName=name)
    for name in members:
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
    job_id = f"{unique}-job"
    with notify_next_monitor(server, f"{unique}-monitor") as monitor:
        clock = timed_create_job(
            iot,
            TIME_SCALE,
            job_id,
            document="{}",
            targets=[group_arn(group)],
            targetSelection="CONTINUOUS",
            jobExecutionsRolloutConfig={"maximumPerMinute": 2},
        )
        (first,) = monitor.wait_releases(job_id, 1)
        staying, leaving = [name for name in members if name != first.thing]
        for name in joiners:
            iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
        # A thing that stops being a target before its turn is dropped from the rollout.
        iot.remove_thing_from_thing_group(thingGroupName=group, thingName=leaving)
        joined = monitor.wait_releases(job_id, 3)[1:]
        assert {release.thing for release in joined} == set(joiners)
        # Joiners are not paced: both arrive before the next paced slot.
        assert all(clock.earliest(release.mono) < clock.at + 30 for release in joined)

        # Whoever stayed is released at the pace, as if nobody had joined.
        releases = monitor.wait_releases(job_id, 4)
        assert releases[-1].thing == staying
        assert_seen_on_time(clock, [first.mono, releases[-1].mono], due_times(clock.at, [30]))
        clock.sleep_until(clock.at + 2 * 30 + LATE)
        assert [release.thing for release in monitor.releases(job_id)].count(leaving) == 0
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job_execution(jobId=job_id, thingName=leaving)
    job = iot.describe_job(jobId=job_id)["job"]
    assert (job["status"], job["isConcurrent"]) == ("IN_PROGRESS", False)
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 4
    iot.cancel_job(jobId=job_id)


def test_cancel_job_stops_a_paced_rollout(server, iot, unique):
    names = [f"{unique}-{i}" for i in range(4)]
    job_id = f"{unique}-job"
    with (
        sdk_devices(server, iot, names) as devices,
        notify_next_monitor(server, f"{unique}-monitor") as monitor,
    ):
        clock = timed_create_job(
            iot,
            TIME_SCALE,
            job_id,
            document="{}",
            targets=arns(names),
            jobExecutionsRolloutConfig={"maximumPerMinute": 2},
        )
        (first,) = monitor.wait_releases(job_id, 1)
        iot.cancel_job(jobId=job_id, comment="stop the rollout")

        job = iot.describe_job(jobId=job_id)["job"]
        assert (job["status"], job["isConcurrent"], job["comment"]) == ("CANCELED", False, "stop the rollout")
        # The released thing and the three that were waiting.
        assert job["jobProcessDetails"]["numberOfCanceledThings"] == 4
        assert job["jobProcessDetails"]["numberOfQueuedThings"] == 0
        released = next(d for d in devices if d.thing == first.thing)
        released.next_events.wait_for(lambda item: item[1].execution is None)

        clock.sleep_until(clock.at + 2 * 30 + LATE)  # two more slots at the old pace
        assert [release.thing for release in monitor.releases(job_id)] == [first.thing]
        for device in devices:
            assert device.start_next().result(10).execution is None
            execution = iot.describe_job_execution(jobId=job_id, thingName=device.thing)["execution"]
            assert execution["status"] == "CANCELED"


def test_delete_job_stops_a_paced_rollout_and_frees_the_id(server, iot, unique):
    old = [f"{unique}-old-{i}" for i in range(3)]
    new = [f"{unique}-new-{i}" for i in range(2)]
    for name in old + new:
        iot.create_thing(thingName=name)
    job_id = f"{unique}-job"
    paced = {"maximumPerMinute": 2}
    with notify_next_monitor(server, f"{unique}-monitor") as monitor:
        iot.create_job(jobId=job_id, document="{}", targets=arns(old), jobExecutionsRolloutConfig=paced)
        (first,) = monitor.wait_releases(job_id, 1)
        iot.delete_job(jobId=job_id, force=True)
        monitor.inbox.wait_for(lambda item: item[1] == first.thing and "execution" not in item[2])
        wait_for(lambda: job_id not in job_ids(iot), 5, "the deletion to finish")

        clock = timed_create_job(
            iot, TIME_SCALE, job_id, document="{}", targets=arns(new), jobExecutionsRolloutConfig=paced
        )
        monitor.wait_releases(job_id, 3)
        clock.sleep_until(clock.at + 2 * 30 + LATE)
        releases = monitor.releases(job_id)
    assert releases[0].thing == first.thing
    assert sorted(r.thing for r in releases[1:]) == new  # nothing of the deleted job's rollout
    assert_seen_on_time(clock, [r.mono for r in releases[1:]], due_times(clock.at, [30]))
    executions = iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]
    assert sorted(e["thingArn"] for e in executions) == arns(new)
    assert {e["jobExecutionSummary"]["executionNumber"] for e in executions} == {1}


def test_update_job_changes_the_rate_mid_rollout(server, iot, unique):
    names = [f"{unique}-{i}" for i in range(6)]
    for name in names:
        iot.create_thing(thingName=name)
    job_id = f"{unique}-job"
    with notify_next_monitor(server, f"{unique}-monitor") as monitor:
        clock = timed_create_job(
            iot,
            TIME_SCALE,
            job_id,
            document="{}",
            targets=arns(names),
            jobExecutionsRolloutConfig={"maximumPerMinute": 2},
        )
        monitor.wait_releases(job_id, 2)
        iot.update_job(jobId=job_id, jobExecutionsRolloutConfig={"maximumPerMinute": 6})
        releases = monitor.wait_releases(job_id, 6, timeout=10)

    assert iot.describe_job(jobId=job_id)["job"]["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 6}
    queued = queued_times(iot, job_id)
    # The slot already planned at 2/min may be kept or moved up; after it, 6/min.
    third = queued[2]
    assert clock.at + 30 + 10 - 0.01 <= third <= clock.at + 60 + LATE, third - clock.at
    due = [*due_times(clock.at, [30]), *due_times(third, [10, 10, 10])]
    assert_seen_on_time(clock, [r.mono for r in releases], due, early=ANCHOR_SLACK)
    assert_queued_on_time(iot, job_id, due, early=ANCHOR_SLACK)
