"""The engine's lines on ``iotjobs.jobs``: written after the change commits, with their fields."""

import datetime as dt
import logging

import pytest

from iot_jobs_bridge.jobs_service.engine import NewJob
from iot_jobs_bridge.jobs_service.errors import InvalidRequest


@pytest.fixture
def jobs_log(caplog):
    caplog.set_level(logging.DEBUG, logger="iotjobs.jobs")
    return lambda: [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "iotjobs.jobs"]


@pytest.fixture
def things(engine):
    for name in ("a", "b"):
        engine.membership.create_thing(name)


def create(engine, arns, job_id, targets=("a",), **settings):
    return engine.jobs.create_job(
        NewJob(job_id=job_id, targets=[arns.thing(t) for t in targets], document="{}", settings=settings)
    )


def test_a_job_with_no_things_is_created_and_completed(engine, arns, jobs_log):
    create(engine, arns, "j0", targets=())
    assert jobs_log() == [
        ("INFO", "job j0 created for 0 things (SNAPSHOT)"),
        ("INFO", "job j0 completed: it had no things"),
    ]


def test_each_timer_says_which_it_was(engine, arns, clock, things, jobs_log):
    create(engine, arns, "slow", targets=("a",), timeoutConfig={"inProgressTimeoutInMinutes": 10})
    create(engine, arns, "stepped", targets=("b",))
    engine.device.start_next("a", None)
    engine.device.start_next("b", None, step_timeout_minutes=1)
    clock.advance(61)
    engine.lifecycle.time_out_due(clock.now())
    clock.advance(600)
    engine.lifecycle.time_out_due(clock.now())
    warnings = [message for level, message in jobs_log() if level == "WARNING"]
    assert warnings == [
        "execution of job stepped on b timed out: its step timer (stepTimeoutInMinutes) ran out",
        "execution of job slow on a timed out: its timer (inProgressTimeoutInMinutes) ran out",
    ]


def test_a_scheduled_job_says_when_it_starts_and_then_that_it_started(engine, arns, clock, things, jobs_log):
    start = clock.now() + 3600
    create(engine, arns, "later", schedulingConfig={"startTime": _iso(start)})
    clock.advance(3600)
    engine.rollout.tick(clock.now())
    assert jobs_log()[:2] == [
        ("INFO", f"job later created for 1 thing (SNAPSHOT); it starts at {_iso(start)}Z"),
        ("INFO", "job later started with 1 thing (SNAPSHOT)"),
    ]


def test_a_refused_change_logs_nothing(engine, arns, things, jobs_log):
    create(engine, arns, "done")
    engine.jobs.cancel_job("done", force=False, reason_code=None, comment=None)
    before = jobs_log()
    with pytest.raises(InvalidRequest):
        engine.jobs.cancel_job("done", force=False, reason_code=None, comment=None)
    assert jobs_log() == before


def test_a_forced_cancel_and_a_deletion_say_so(engine, arns, things, jobs_log):
    create(engine, arns, "j", targets=("a", "b"))
    engine.device.start_next("a", None)
    engine.jobs.cancel_job("j", force=True, reason_code=None, comment=None)
    engine.jobs.delete_job("j", force=False)
    engine.jobs.finish_deletions()
    assert jobs_log()[1:] == [
        ("INFO", "job j canceled with force"),
        ("INFO", "job j deleted: it was CANCELED, with 2 executions"),
        ("DEBUG", "job j dropped; its id is free"),
    ]


def _iso(seconds):
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
