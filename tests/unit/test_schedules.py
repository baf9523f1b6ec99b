"""Recurring schedules on the fake clock: one job per fire, never twice, policies after downtime."""

import json

import pytest

from iot_jobs_bridge.jobs_service.engine import JobsEngine
from iot_jobs_bridge.jobs_service.errors import InvalidRequest, ResourceAlreadyExists, ResourceNotFound
from iot_jobs_bridge.jobs_service.models import ExecutionStatus, JobStatus
from iot_jobs_bridge.jobs_service.schedules import NewSchedule, Schedules
from iot_jobs_bridge.jobs_service.store import Store
from iot_jobs_bridge.jobs_service.templates import Templates

HOUR = 3600.0


@pytest.fixture
def schedules(store, engine, clock, arns):
    engine.create_thing("t1")
    return Schedules(store, engine, Templates(store, clock, arns), clock)


def hourly(arns, name="nightly", **changes):
    base = dict(name=name, cron="0 * * * *", targets=[arns.thing("t1")], document=json.dumps({"op": "clean"}))
    return NewSchedule(**{**base, **changes})


def to_next_hour(clock):
    clock.advance(HOUR - clock.now() % HOUR)


def test_each_fire_creates_one_job_with_a_deterministic_id(schedules, arns, clock, store, engine):
    schedules.create(hourly(arns))
    to_next_hour(clock)
    messages = schedules.fire_due()
    (job,) = [store.get_job(f["jobId"]) for f in schedules.history("nightly")]
    assert job.job_id.startswith("nightly-") and job.job_id.endswith("0000Z")
    assert any(m.topic == "$aws/things/t1/jobs/notify-next" for m in messages)
    assert schedules.fire_due() == [], "a fire runs once"
    engine.update("t1", job.job_id, status=ExecutionStatus.SUCCEEDED, status_details=None,
                  expected_version=None, execution_number=None)  # fmt: skip
    assert store.get_job(job.job_id).status is JobStatus.COMPLETED
    clock.advance(HOUR)
    schedules.fire_due()
    assert [h["outcome"] for h in schedules.history("nightly")] == ["created", "created"]


def test_a_fire_recorded_before_a_crash_is_not_created_again(schedules, arns, clock, store, engine, tmp_path):
    schedules.create(hourly(arns, overlap="allow"))  # only the fire record can stop a second job
    to_next_hour(clock)
    schedules.fire_due()
    # A restart: a new store and service on the same database, the clock where it was.
    again = Store(store.path)
    try:
        engine2 = JobsEngine(again, clock, arns)
        restarted = Schedules(again, engine2, Templates(again, clock, arns), clock)
        schedule = again.get_schedule("nightly")
        # Pretend the crash came after the fire's commit but before the schedule moved on.
        again.put_schedule(schedule.__class__(**{**schedule.__dict__, "handled_until": clock.now() - 10}))
        assert restarted.fire_due() == []
        assert len(restarted.history("nightly")) == 1
    finally:
        again.close()


def test_after_downtime_skip_runs_nothing_and_records_the_skipped_fires(schedules, arns, clock):
    schedules.create(hourly(arns))
    clock.advance(5 * HOUR + 1800)
    assert schedules.fire_due() == []
    history = schedules.history("nightly")
    assert [h["outcome"] for h in history] == ["skipped-misfire"] * 5


def test_after_downtime_run_once_runs_a_single_catch_up(schedules, arns, clock):
    schedules.create(hourly(arns, misfire="run-once"))
    clock.advance(5 * HOUR + 1800)
    schedules.fire_due()
    outcomes = [h["outcome"] for h in schedules.history("nightly")]
    assert outcomes.count("created") == 1 and outcomes.count("skipped-misfire") == 4


def test_a_fire_while_the_previous_run_is_in_progress_is_skipped_unless_overlap_is_allowed(
    schedules, arns, clock, engine
):
    schedules.create(hourly(arns))
    schedules.create(hourly(arns, name="overlapping", overlap="allow"))
    to_next_hour(clock)
    schedules.fire_due()
    for name in ("nightly", "overlapping"):
        job_id = schedules.history(name)[0]["jobId"]
        engine.update("t1", job_id, status=ExecutionStatus.IN_PROGRESS, status_details=None,
                      expected_version=None, execution_number=None)  # fmt: skip
    clock.advance(HOUR)
    schedules.fire_due()
    assert [h["outcome"] for h in schedules.history("nightly")] == ["skipped-overlap", "created"]
    assert [h["outcome"] for h in schedules.history("overlapping")] == ["created", "created"]
    assert schedules.history("overlapping")[1]["jobStatus"] == JobStatus.IN_PROGRESS.value


def test_disabled_schedules_do_not_fire_and_enabling_starts_from_now(schedules, arns, clock):
    schedules.create(hourly(arns))
    schedules.set_enabled("nightly", False)
    clock.advance(3 * HOUR)
    assert schedules.fire_due() == []
    schedules.set_enabled("nightly", True)
    assert schedules.fire_due() == [] and schedules.history("nightly") == []
    to_next_hour(clock)
    schedules.fire_due()
    assert [h["outcome"] for h in schedules.history("nightly")] == ["created"]


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"cron": "61 * * * *"}, InvalidRequest, "cron expression '61 * * * *' is not valid"),
        ({"timezone": "Mars/Olympus"}, InvalidRequest, "unknown time zone 'Mars/Olympus'"),
        ({"name": "no spaces"}, InvalidRequest, "must be 1-40 letters, digits"),
        ({"misfire": "always"}, InvalidRequest, "misfire must be skip or run-once"),
        ({"targets": []}, InvalidRequest, "needs at least one target"),
        ({"settings": {"presignedUrlConfig": {}}}, InvalidRequest, "Schedules take only"),
        ({"document": None}, InvalidRequest, "A job needs a document or a jobTemplateArn"),
    ],
)
def test_bad_schedules_are_refused_with_a_named_problem(schedules, arns, changes, error, message):
    with pytest.raises(error, match=message.replace("*", r"\*")):
        schedules.create(hourly(arns, **changes))


def test_names_are_unique_and_unknown_names_are_not_found(schedules, arns):
    schedules.create(hourly(arns))
    with pytest.raises(ResourceAlreadyExists):
        schedules.create(hourly(arns))
    with pytest.raises(ResourceNotFound):
        schedules.describe("missing")
    schedules.delete("nightly")
    assert schedules.list_schedules() == []


def test_update_changes_settings_and_a_new_cron_counts_from_now(schedules, arns, clock):
    schedules.create(hourly(arns))
    clock.advance(10)
    changed = schedules.update("nightly", {"cron": "30 * * * *", "overlap": "allow"})
    assert changed.cron == "30 * * * *" and changed.overlap == "allow"
    assert changed.handled_until == clock.now()
    assert changed.next_fire_at == schedules.describe("nightly").next_fire_at
    assert changed.next_fire_at % HOUR == 1800
    with pytest.raises(InvalidRequest, match="not valid"):
        schedules.update("nightly", {"cron": "99 * * * *"})
    assert schedules.describe("nightly").cron == "30 * * * *", "a refused update changes nothing"


def test_an_unknown_template_is_a_bad_request_naming_it(schedules, arns):
    template_arn = "arn:aws:iot:us-east-1:123456789012:jobtemplate/missing-template"
    with pytest.raises(InvalidRequest, match=r"names a job template that does not exist.*missing-template"):
        schedules.create(hourly(arns, document=None, template_arn=template_arn))
