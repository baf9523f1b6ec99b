"""SIGKILL in the middle of a paced rollout with running timers, then a restart on the same data dir.

The ``crash`` fixture plays the whole story once, at ``TIME_SCALE`` 60:

1. 30 things, ``maximumPerMinute`` 6 (a release every 10 service seconds);
   the first three released things start their executions: one with a
   2-minute step timer, one with a 3-minute step timer, one with only the
   job's 30-minute in-progress timer; the others are left QUEUED;
2. once ten things have been released, SIGKILL;
3. wait, in real time, past both step deadlines and a dozen release slots;
4. start a new server on the same data dir and watch it until the rollout is
   done.

The tests then check what the second server made of it (decisions.md D32, D36).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest

from ..device_plane._support import raw_device
from ._support import (
    MINUTE,
    ServiceClock,
    arns,
    busiest_minute,
    kill,
    notify_next_monitor,
    sdk_device,
    service_clock,
    start_scaled_server,
    timed_create_job,
)

TIME_SCALE = 60
RATE = 6  # releases per service minute
GAP = MINUTE / RATE
THINGS = 30
RELEASED_BEFORE_CRASH = 10
# A timer that came due while the service was down fires at the first look after the
# restart; a paced rollout that fell behind resumes at once. Real seconds after "ready".
PROMPT = 0.5
# How late a release may be stamped after its slot, in service seconds (0.3 real seconds).
LATE = 0.3 * TIME_SCALE
# How much of an earlier release's lateness a later one may seem to make up (0.1 real seconds).
SLACK = 0.1 * TIME_SCALE
COUNTERS = {
    "QUEUED": "numberOfQueuedThings",
    "IN_PROGRESS": "numberOfInProgressThings",
    "SUCCEEDED": "numberOfSucceededThings",
    "FAILED": "numberOfFailedThings",
    "REJECTED": "numberOfRejectedThings",
    "CANCELED": "numberOfCanceledThings",
    "TIMED_OUT": "numberOfTimedOutThings",
    "REMOVED": "numberOfRemovedThings",
}


@dataclass
class Crash:
    server: object  # the second server, still running while the tests look
    job_id: str
    things: list[str]
    clock: ServiceClock  # the first server's clock, anchored on the job's creation
    order: list[str]  # the first releases, as the first server announced them
    deadlines: dict[str, float]  # service time each step timer was due
    last_stamp: float  # the latest timestamp the first server reported
    restarted: float  # monotonic time the second server was ready
    probe_created: float  # createdAt of a job created right after the restart
    timed_out_seen: dict[str, float] = field(default_factory=dict)  # monotonic
    first_release_after: float | None = None  # monotonic

    @property
    def running(self) -> str:
        return self.order[2]

    @property
    def queued(self) -> str:
        return self.order[3]


def executions(iot, job_id: str) -> list[dict]:
    pages = iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id)
    return [
        {"thing": s["thingArn"].rsplit("/", 1)[1], **s["jobExecutionSummary"]}
        for page in pages
        for s in page["executionSummaries"]
    ]


def stamps(listing: list[dict]) -> list[float]:
    return [
        e[key].timestamp() for e in listing for key in ("queuedAt", "lastUpdatedAt", "startedAt") if key in e
    ]


def watch_restart(iot, crash: Crash, before: int, timeout: float) -> None:
    """Poll the second server until both step timers fired and every thing was released."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        listing = executions(iot, crash.job_id)
        if len(listing) > before and crash.first_release_after is None:
            crash.first_release_after = now
        for e in listing:
            if e["thing"] in crash.deadlines and e["status"] == "TIMED_OUT":
                crash.timed_out_seen.setdefault(e["thing"], now)
        if len(crash.timed_out_seen) == len(crash.deadlines) and len(listing) == THINGS:
            return
        time.sleep(0.02)


@pytest.fixture(scope="module")
def crash(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("crash-data")
    job_id = "crash-rollout"
    things = [f"crash-{i:02}" for i in range(THINGS)]
    first = start_scaled_server(data_dir, TIME_SCALE)
    try:
        iot = first.iot()
        for name in things:
            iot.create_thing(thingName=name)
        with ExitStack() as stack:
            monitor = stack.enter_context(notify_next_monitor(first, "crash-monitor"))
            clock = timed_create_job(
                iot,
                TIME_SCALE,
                job_id,
                document='{"op": "survive"}',
                targets=arns(things),
                jobExecutionsRolloutConfig={"maximumPerMinute": RATE},
                timeoutConfig={"inProgressTimeoutInMinutes": 30},
            )
            deadlines = {}
            for index, step in enumerate((2, 3, None)):
                thing = monitor.wait_releases(job_id, index + 1)[index].thing
                with raw_device(first, thing) as device:
                    body = {} if step is None else {"stepTimeoutInMinutes": step}
                    started = device.accepted("start-next", body)["execution"]
                    assert started["status"] == "IN_PROGRESS"
                if step is not None:
                    described = iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
                    deadlines[thing] = described["startedAt"].timestamp() + step * MINUTE
            monitor.wait_releases(job_id, RELEASED_BEFORE_CRASH)
            listing = executions(iot, job_id)
            kill(first)
            order = [release.thing for release in monitor.releases(job_id)]
    except BaseException:
        kill(first)
        raise

    # Down past both step deadlines, and many release slots.
    clock.sleep_until(max(deadlines.values()) + 0.5 * TIME_SCALE)
    second = start_scaled_server(data_dir, TIME_SCALE)
    try:
        restarted = time.monotonic()
        iot = second.iot()
        probe = service_clock(iot, TIME_SCALE, "crash-probe")
        crash = Crash(
            second,
            job_id,
            things,
            clock,
            order,
            deadlines,
            max(stamps(listing)),
            restarted,
            probe.at,
        )
        watch_restart(iot, crash, len(listing), timeout=20)
        yield crash
    finally:
        assert second.stop() == 0, "\n".join(second.lines)


def test_every_thing_gets_exactly_one_execution(crash):
    listing = executions(crash.server.iot(), crash.job_id)
    per_thing = Counter(e["thing"] for e in listing)
    assert sorted(per_thing) == crash.things  # no thing lost
    assert set(per_thing.values()) == {1}  # none released twice
    assert {e["executionNumber"] for e in listing} == {1}


def test_the_service_clock_does_not_go_back_across_the_restart(crash):
    assert crash.probe_created >= crash.last_stamp, (
        f"a job created after the restart is stamped {crash.last_stamp - crash.probe_created:.0f}"
        " service seconds before the last time the first server reported"
    )


def test_timers_that_came_due_while_down_fire_promptly(crash):
    iot = crash.server.iot()
    assert crash.timed_out_seen.keys() == crash.deadlines.keys()
    for thing, deadline in crash.deadlines.items():
        execution = iot.describe_job_execution(jobId=crash.job_id, thingName=thing)["execution"]
        assert (execution["status"], execution["versionNumber"]) == ("TIMED_OUT", 3)
        assert execution["lastUpdatedAt"].timestamp() >= deadline
    delays = {thing: round(seen - crash.restarted, 2) for thing, seen in crash.timed_out_seen.items()}
    assert all(delay <= PROMPT for delay in delays.values()), f"real seconds after the restart: {delays}"


def test_the_rollout_resumes_promptly(crash):
    assert crash.first_release_after is not None
    delay = crash.first_release_after - crash.restarted
    assert delay <= PROMPT, f"the first release after the restart came {delay:.2f} real seconds after it"


def test_the_rollout_resumes_at_its_pace_without_a_burst(crash):
    queued = sorted(e["queuedAt"].timestamp() for e in executions(crash.server.iot(), crash.job_id))
    # Releases stamped together: the catch-up after downtime is at most one minute's worth.
    bursts, size = [], 1
    for before, after in itertools.pairwise(queued):
        size = size + 1 if after - before < 1.0 else 1
        bursts.append(size)
    assert max(bursts) <= RATE, [round(at - queued[0]) for at in queued]
    # After the last burst the catch-up has used up that minute (D32): the next
    # release comes a minute later, then one per GAP until the end.
    last = max(i for i, size in enumerate(bursts) if size > 1) + 1 if max(bursts) > 1 else 0
    pause = 60.0 - GAP if last else 0.0
    offsets = [
        round(at - queued[last] - k * GAP - (pause if k else 0.0), 2) for k, at in enumerate(queued[last:])
    ]
    assert all(-SLACK <= offset <= LATE for offset in offsets), offsets


def test_no_minute_sees_more_than_the_rate(crash):
    """D32: after downtime, no service minute sees more than maximumPerMinute releases."""
    queued = sorted(e["queuedAt"].timestamp() for e in executions(crash.server.iot(), crash.job_id))
    assert busiest_minute(queued, slack=SLACK) <= RATE, [round(at - queued[0]) for at in queued]


def test_devices_finish_their_executions_on_the_new_server(crash):
    iot = crash.server.iot()
    with sdk_device(crash.server, crash.running) as running, sdk_device(crash.server, crash.queued) as queued:
        # Started before the crash; its 30-minute timer still runs.
        assert running.describe(crash.job_id).result(10).execution.status == "IN_PROGRESS"
        running.update(crash.job_id, "SUCCEEDED").result(10)
        # Released before the crash and still QUEUED: it starts now.
        started = queued.start_next().result(10).execution
        assert (started.job_id, started.status, started.job_document) == (
            crash.job_id,
            "IN_PROGRESS",
            {"op": "survive"},
        )
        queued.update(crash.job_id, "SUCCEEDED").result(10)
        running.next_events.wait_for(lambda item: item[1].execution is None)
    for thing in (crash.running, crash.queued):
        execution = iot.describe_job_execution(jobId=crash.job_id, thingName=thing)["execution"]
        assert execution["status"] == "SUCCEEDED"


def test_counters_add_up(crash):
    iot = crash.server.iot()
    job = iot.describe_job(jobId=crash.job_id)["job"]
    statuses = Counter(e["status"] for e in executions(iot, crash.job_id))
    assert job["jobProcessDetails"] == {COUNTERS[s]: statuses.get(s, 0) for s in COUNTERS}
    assert sum(job["jobProcessDetails"].values()) == THINGS
    assert (job["status"], job["isConcurrent"]) == ("IN_PROGRESS", False)
    assert statuses["TIMED_OUT"] == len(crash.deadlines)
