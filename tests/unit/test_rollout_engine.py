"""Rollout pacing, scheduling, timeouts, retries and abort on the fake clock."""

import datetime as dt
import itertools

import pytest

from iot_jobs_bridge.jobs_service.engine import JobsEngine, NewJob
from iot_jobs_bridge.jobs_service.engine import rollout as rollout_ops
from iot_jobs_bridge.jobs_service.errors import InvalidStateTransition
from iot_jobs_bridge.jobs_service.models import ExecutionStatus as S
from iot_jobs_bridge.jobs_service.models import JobStatus, TargetSelection
from iot_jobs_bridge.jobs_service.store import Store

from .rendering import told

MINUTE = 60.0


@pytest.fixture
def fleet(engine):
    names = [f"d{i:02}" for i in range(10)]
    for name in names:
        engine.membership.create_thing(name)
    return names


def _job(engine, arns, things, job_id="j", **settings):
    selection = settings.pop("target_selection", TargetSelection.SNAPSHOT)
    return engine.jobs.create_job(
        NewJob(
            job_id=job_id,
            targets=[arns.thing(t) for t in things],
            document="{}",
            settings=settings,
            target_selection=selection,
        )
    )


def _released(engine, job_id="j"):
    return engine.store.jobs.executed_things(job_id)


def _finish(engine, thing, job_id="j", status=S.SUCCEEDED):
    return engine.device.update(
        thing, job_id, status=status, status_details=None, expected_version=None, execution_number=None
    )


def _iso(timestamp):
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M")


# -- pacing -------------------------------------------------------------------
def test_maximum_per_minute_releases_at_the_pace(engine, arns, clock, fleet):
    _job(engine, arns, fleet, jobExecutionsRolloutConfig={"maximumPerMinute": 4})
    assert _released(engine) == 1  # the first release is part of creating the job
    assert engine.rollout.next_due() == pytest.approx(clock.now() + 15)
    clock.advance(14.9)
    engine.rollout.tick()
    assert _released(engine) == 1
    clock.advance(0.1)
    outcome = engine.rollout.tick()
    assert _released(engine) == 2
    assert any(m.topic.endswith("/notify-next") for m in told(outcome.events))
    clock.advance(45)
    engine.rollout.tick()
    assert _released(engine) == 5
    assert engine.store.jobs.execution_counts("j") == {S.QUEUED: 5}


def test_unreleased_things_see_nothing(engine, arns, clock, fleet, device):
    _job(engine, arns, fleet, jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    waiting = [name for name in fleet if engine.device.pending(name) == []]
    assert len(waiting) == 9
    reply = device.handle(f"$aws/things/{waiting[0]}/jobs/start-next", b"{}")[0]
    assert "execution" not in reply.payload


def test_exponential_rate_grows_with_notified_things(engine, arns, clock, fleet):
    rollout = {
        "exponentialRate": {
            "baseRatePerMinute": 1,
            "incrementFactor": 2.0,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 2},
        }
    }
    _job(engine, arns, fleet, jobExecutionsRolloutConfig=rollout)
    times = [clock.now()]
    while _released(engine) < 6:
        due = engine.rollout.next_due()
        clock.advance(due - clock.now())
        before = _released(engine)
        engine.rollout.tick()
        times += [clock.now()] * (_released(engine) - before)
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    # 1/min for the first two, then 2/min, then 4/min.
    assert gaps == [60.0, 30.0, 30.0, 15.0, 15.0]


def test_a_release_creates_at_most_its_share_and_the_rest_follow_at_once(
    engine, arns, clock, fleet, monkeypatch
):
    monkeypatch.setattr(rollout_ops, "MOST_RELEASED_AT_ONCE", 3)
    soaring = {
        "exponentialRate": {
            "baseRatePerMinute": 1000,
            "incrementFactor": 5.0,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 1},
        }
    }
    _job(engine, arns, fleet, jobExecutionsRolloutConfig=soaring)
    clock.advance(1)  # by now the rate allows thousands
    released = []
    for _ in range(3):
        engine.rollout.tick()
        released.append(_released(engine))
        assert engine.rollout.next_due() is None or engine.rollout.next_due() <= clock.now()
    assert released == [4, 7, 10]
    assert engine.get_job("j").status is JobStatus.IN_PROGRESS
    assert engine.rollout.next_due() is None  # all released


def test_downtime_does_not_cause_a_burst(engine, arns, clock, fleet):
    _job(engine, arns, fleet, jobExecutionsRolloutConfig={"maximumPerMinute": 2})
    clock.advance(10 * MINUTE)  # nobody ticked for ten minutes
    engine.rollout.tick()
    assert _released(engine) == 3  # one minute's worth, not ten
    clock.advance(30)
    engine.rollout.tick()
    assert _released(engine) == 3  # no minute sees more than the rate
    clock.advance(30)
    engine.rollout.tick()
    assert _released(engine) == 4  # the catch-up used up that minute


def test_paced_snapshot_job_completes_after_the_last_release(engine, arns, clock, fleet):
    _job(engine, arns, fleet[:2], jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    _finish(engine, fleet[0])
    assert engine.get_job("j").status is JobStatus.IN_PROGRESS  # d01 not released yet
    clock.advance(MINUTE)
    engine.rollout.tick()
    _finish(engine, fleet[1])
    assert engine.get_job("j").status is JobStatus.COMPLETED


def test_cancel_cancels_unreleased_things(engine, arns, clock, fleet):
    _job(engine, arns, fleet, jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    engine.device.start_next(fleet[0], None)
    engine.jobs.cancel_job("j", force=False, reason_code=None, comment=None)
    assert engine.store.jobs.execution_counts("j") == {S.IN_PROGRESS: 1, S.CANCELED: 9}
    assert not engine.store.jobs.rollout_waits("j")
    clock.advance(10 * MINUTE)
    engine.rollout.tick()
    assert _released(engine) == 10 and engine.device.pending(fleet[1]) == []


def test_restart_resumes_at_the_pace(tmp_path, arns, clock):
    path = tmp_path / "jobs.sqlite3"
    first = JobsEngine(Store(path), clock, arns)
    for name in ("a", "b", "c"):
        first.membership.create_thing(name)
    _job(first, arns, ["a", "b", "c"], jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    first.store.close()
    clock.advance(30)
    second = JobsEngine(Store(path), clock, arns)
    assert second.rollout.next_due() == pytest.approx(clock.now() + 30)
    clock.advance(30)
    second.rollout.tick()
    assert _released(second) == 2
    second.rollout.tick()  # nothing is released twice
    assert second.store.jobs.execution_counts("j") == {S.QUEUED: 2}
    second.store.close()


# -- scheduling -----------------------------------------------------------------
def test_scheduled_job_waits_for_its_start_time(engine, arns, clock, fleet):
    start = clock.now() + 3600
    _job(engine, arns, fleet[:2], schedulingConfig={"startTime": _iso(start)})
    assert engine.get_job("j").status is JobStatus.SCHEDULED
    assert _released(engine) == 0
    assert engine.rollout.next_due() == pytest.approx(start)
    clock.advance(start - clock.now())
    outcome = engine.rollout.tick()
    assert engine.get_job("j").status is JobStatus.IN_PROGRESS
    assert _released(engine) == 2
    assert {m.topic for m in told(outcome.events)} >= {f"$aws/things/{fleet[0]}/jobs/notify-next"}


def test_rollout_happens_only_inside_maintenance_windows(engine, arns, clock, fleet):
    # FakeClock starts at 2023-11-14T22:13:20Z; the window opens at 23:00 for 10 minutes.
    windows = [{"startTime": "0 23 * * *", "durationInMinutes": 10}]
    _job(
        engine,
        arns,
        fleet,
        jobExecutionsRolloutConfig={"maximumPerMinute": 6},
        schedulingConfig={"maintenanceWindows": windows},
    )
    assert engine.get_job("j").status is JobStatus.SCHEDULED
    opens = dt.datetime(2023, 11, 14, 23, 0, tzinfo=dt.UTC).timestamp()
    assert engine.rollout.next_due() == pytest.approx(opens)
    clock.advance(opens - clock.now())
    engine.rollout.tick()
    assert engine.get_job("j").status is JobStatus.IN_PROGRESS
    for _ in range(12):  # two minutes at 6/min
        clock.advance(10)
        engine.rollout.tick()
    assert _released(engine) == 10
    engine.jobs.cancel_job("j", force=True, reason_code=None, comment=None)

    _job(
        engine,
        arns,
        fleet,
        job_id="k",
        jobExecutionsRolloutConfig={"maximumPerMinute": 1},
        schedulingConfig={"maintenanceWindows": windows},
    )
    released_in_window = _released(engine, "k")
    clock.advance(opens + 600 - clock.now())  # the window has just closed
    engine.rollout.tick()
    assert _released(engine, "k") == released_in_window
    assert engine.rollout.next_due() == pytest.approx(opens + 86400)


@pytest.mark.parametrize(
    ("behavior", "job_status", "running_status"),
    [
        ("STOP_ROLLOUT", JobStatus.IN_PROGRESS, S.IN_PROGRESS),
        ("CANCEL", JobStatus.CANCELED, S.IN_PROGRESS),
        ("FORCE_CANCEL", JobStatus.CANCELED, S.CANCELED),
    ],
)
def test_end_behaviors(engine, arns, clock, fleet, behavior, job_status, running_status):
    end = clock.now() + 3600
    _job(
        engine,
        arns,
        fleet[:3],
        jobExecutionsRolloutConfig={"maximumPerMinute": 1},
        schedulingConfig={"endTime": _iso(end), "endBehavior": behavior},
    )
    engine.device.start_next(fleet[0], None)
    clock.advance(MINUTE)
    engine.rollout.tick()  # d01 released and QUEUED; d02 still waits
    clock.advance(end - clock.now())
    engine.rollout.tick()
    job = engine.get_job("j")
    assert job.status is job_status
    assert engine.get_execution("j", fleet[0], None).status is running_status
    assert not engine.store.jobs.rollout_waits("j")
    if behavior == "STOP_ROLLOUT":
        assert engine.get_execution("j", fleet[1], None).status is S.QUEUED
        assert engine.store.jobs.get_execution("j", fleet[2]) is None
    else:
        assert job.reason_code == "SCHEDULED_END_REACHED"


# -- timeouts -------------------------------------------------------------------
def test_in_progress_timeout(engine, arns, clock, fleet):
    _job(engine, arns, fleet[:1], timeoutConfig={"inProgressTimeoutInMinutes": 10})
    clock.advance(100)
    engine.device.start_next(fleet[0], None)
    execution = engine.get_execution("j", fleet[0], None)
    assert execution.timeout_at == clock.now() + 600
    assert engine.lifecycle.seconds_before_timed_out(execution) == 600
    clock.advance(599)
    assert told(engine.rollout.tick().events) == []
    clock.advance(1)
    outcome = engine.rollout.tick()
    timed_out = engine.get_execution("j", fleet[0], None)
    assert (timed_out.status, timed_out.version_number) == (S.TIMED_OUT, 3)
    assert engine.lifecycle.seconds_before_timed_out(timed_out) is None
    topics = [m.topic for m in told(outcome.events)]
    assert "$aws/events/jobExecution/j/timed_out" in topics
    assert f"$aws/things/{fleet[0]}/jobs/notify-next" in topics
    assert engine.get_job("j").status is JobStatus.COMPLETED
    with pytest.raises(InvalidStateTransition):
        _finish(engine, fleet[0])


def test_step_timer_cannot_outlast_the_in_progress_timer(engine, arns, clock, fleet):
    _job(engine, arns, fleet[:1], timeoutConfig={"inProgressTimeoutInMinutes": 5})
    engine.device.start_next(fleet[0], None, step_timeout_minutes=60)
    execution = engine.get_execution("j", fleet[0], None)
    assert execution.deadline() == clock.now() + 300
    clock.advance(60)
    engine.device.update(
        fleet[0],
        "j",
        status=S.IN_PROGRESS,
        status_details=None,
        expected_version=None,
        execution_number=None,
        step_timeout_minutes=1,
    )
    assert engine.get_execution("j", fleet[0], None).deadline() == clock.now() + 60
    engine.device.update(
        fleet[0],
        "j",
        status=S.IN_PROGRESS,
        status_details=None,
        expected_version=None,
        execution_number=None,
        step_timeout_minutes=-1,
    )
    assert engine.get_execution("j", fleet[0], None).deadline() == clock.now() + 240
    clock.advance(240)
    engine.rollout.tick()
    assert engine.get_execution("j", fleet[0], None).status is S.TIMED_OUT


def test_step_timer_alone(engine, arns, clock, fleet):
    _job(engine, arns, fleet[:1])
    engine.device.start_next(fleet[0], None, step_timeout_minutes=2)
    assert engine.rollout.next_due() == clock.now() + 120
    clock.advance(121)
    engine.rollout.tick()
    assert engine.get_execution("j", fleet[0], None).status is S.TIMED_OUT


# -- retries ------------------------------------------------------------------
def test_failed_execution_is_retried_with_a_new_number(engine, arns, clock, fleet):
    _job(
        engine,
        arns,
        fleet[:1],
        jobExecutionsRetryConfig={"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]},
    )
    for attempt in (1, 2, 3):
        engine.device.start_next(fleet[0], None)
        outcome = _finish(engine, fleet[0], status=S.FAILED)
        latest = engine.get_execution("j", fleet[0], None)
        if attempt < 3:
            assert (latest.status, latest.execution_number, latest.retry_attempt) == (
                S.QUEUED,
                attempt + 1,
                attempt,
            )
            assert f"$aws/things/{fleet[0]}/jobs/notify-next" in [m.topic for m in told(outcome.events)]
        else:
            assert (latest.status, latest.execution_number) == (S.FAILED, 3)
    assert engine.get_job("j").status is JobStatus.COMPLETED
    assert engine.get_execution("j", fleet[0], 1).status is S.FAILED


def test_timed_out_execution_is_retried_under_all(engine, arns, clock, fleet):
    _job(
        engine,
        arns,
        fleet[:1],
        timeoutConfig={"inProgressTimeoutInMinutes": 1},
        jobExecutionsRetryConfig={"criteriaList": [{"failureType": "ALL", "numberOfRetries": 1}]},
    )
    engine.device.start_next(fleet[0], None)
    clock.advance(MINUTE)
    engine.rollout.tick()
    retry = engine.get_execution("j", fleet[0], None)
    assert (retry.status, retry.execution_number, retry.retry_attempt) == (S.QUEUED, 2, 1)
    engine.device.start_next(fleet[0], None)
    _finish(engine, fleet[0], status=S.REJECTED)  # never retried
    assert engine.get_job("j").status is JobStatus.COMPLETED


# -- abort ------------------------------------------------------------------
def test_abort_cancels_queued_and_unreleased_but_not_running(engine, arns, clock, fleet):
    abort = {
        "criteriaList": [
            {
                "failureType": "FAILED",
                "action": "CANCEL",
                "thresholdPercentage": 50,
                "minNumberOfExecutedThings": 2,
            }
        ]
    }
    _job(engine, arns, fleet[:6], jobExecutionsRolloutConfig={"maximumPerMinute": 60}, abortConfig=abort)
    clock.advance(3)
    engine.rollout.tick()  # four released: d00..d03
    engine.device.start_next(fleet[0], None)
    engine.device.start_next(fleet[1], None)
    engine.device.start_next(fleet[2], None)
    _finish(engine, fleet[0], status=S.FAILED)  # 1 of 4: not yet
    assert engine.get_job("j").status is JobStatus.IN_PROGRESS
    outcome = _finish(engine, fleet[1], status=S.FAILED)  # 2 of 4: trips
    job = engine.get_job("j")
    assert (job.status, job.reason_code) == (JobStatus.CANCELED, "ABORT_CONFIG_TRIPPED")
    assert job.comment == "Job canceled: 2 of 4 executed things ended FAILED, reaching the 50% threshold"
    assert engine.get_execution("j", fleet[2], None).status is S.IN_PROGRESS
    assert engine.get_execution("j", fleet[3], None).status is S.CANCELED
    assert engine.get_execution("j", fleet[5], None).status is S.CANCELED
    topics = [m.topic for m in told(outcome.events)]
    assert "$aws/events/job/j/canceled" in topics
    # The device whose QUEUED execution the abort canceled is told, though it sent nothing.
    assert f"$aws/things/{fleet[3]}/jobs/notify-next" in topics
    _finish(engine, fleet[2])  # the running execution may still finish


def test_continuous_joiners_are_not_paced(engine, arns, registry, clock, fleet):
    registry.create_group("g")
    engine.jobs.create_job(
        NewJob(
            job_id="c",
            targets=[arns.thing_group("g")],
            document="{}",
            target_selection=TargetSelection.CONTINUOUS,
            settings={"jobExecutionsRolloutConfig": {"maximumPerMinute": 1}},
        )
    )
    for name in fleet[:3]:
        engine.membership.add_thing_to_group("g", name)
    assert _released(engine, "c") == 3
