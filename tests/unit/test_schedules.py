"""Recurring schedules on the fake clock: one job per fire, never twice, policies after downtime."""

import json
import logging
from dataclasses import replace

import pytest

from iot_jobs_bridge.jobs_service.engine import JobsEngine
from iot_jobs_bridge.jobs_service.errors import (
    InvalidRequest,
    LimitExceeded,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from iot_jobs_bridge.jobs_service.models import ExecutionStatus, JobStatus
from iot_jobs_bridge.jobs_service.schedules import RETRY_AFTER, NewSchedule, Schedules
from iot_jobs_bridge.jobs_service.store import Store
from iot_jobs_bridge.jobs_service.templates import Templates

from .rendering import told

HOUR = 3600.0


@pytest.fixture
def schedules(store, engine, clock, arns):
    engine.membership.create_thing("t1")
    return Schedules(store, engine, Templates(store, clock, arns), clock)


def hourly(arns, name="nightly", **changes):
    base = dict(name=name, cron="0 * * * *", targets=[arns.thing("t1")], document=json.dumps({"op": "clean"}))
    return NewSchedule(**{**base, **changes})


def to_next_hour(clock):
    clock.advance(HOUR - clock.now() % HOUR)


def every_two_seconds(arns, name="often", **changes):
    return hourly(arns, name=name, cron="*/2 * * * * *", overlap="allow", **changes)


def outcomes(schedules, name, start):
    """(seconds after ``start``, outcome) of each fire, oldest first."""
    return [(h["fireTime"] - start, h["outcome"]) for h in reversed(schedules.history(name))]


def test_each_fire_creates_one_job_with_a_deterministic_id(schedules, arns, clock, store, engine):
    schedules.create(hourly(arns))
    to_next_hour(clock)
    messages = told(schedules.fire_due())
    (job,) = [store.jobs.get_job(f["jobId"]) for f in schedules.history("nightly")]
    assert job.job_id.startswith("nightly-") and job.job_id.endswith("0000Z")
    assert any(m.topic == "$aws/things/t1/jobs/notify-next" for m in messages)
    assert schedules.fire_due() == [], "a fire runs once"
    engine.device.update("t1", job.job_id, status=ExecutionStatus.SUCCEEDED, status_details=None,
                  expected_version=None, execution_number=None)  # fmt: skip
    assert store.jobs.get_job(job.job_id).status is JobStatus.COMPLETED
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
        schedule = again.schedules.get_schedule("nightly")
        # Pretend the crash came after the fire's commit but before the schedule moved on.
        again.schedules.put_schedule(
            schedule.__class__(**{**schedule.__dict__, "handled_until": clock.now() - 10})
        )
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
        engine.device.update("t1", job_id, status=ExecutionStatus.IN_PROGRESS, status_details=None,
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


def test_fires_late_only_because_the_scheduler_was_busy_all_run(schedules, arns, clock):
    start = clock.now()  # an even second: the fires are 2, 4 and 6 seconds later
    schedules.create(every_two_seconds(arns))
    clock.advance(7)  # the scheduler looks only now (busy); the service never went down
    schedules.fire_due()
    assert outcomes(schedules, "often", start) == [(2, "created"), (4, "created"), (6, "created")]


def test_only_fires_due_while_the_service_was_down_are_misfires(schedules, arns, clock, store, engine):
    start = clock.now()
    schedules.create(every_two_seconds(arns))
    clock.advance(2)
    schedules.fire_due()
    clock.advance(11)  # down from here...
    restarted = Schedules(store, engine, Templates(store, clock, arns), clock)  # ...up again at +13
    clock.advance(4)
    restarted.fire_due()
    assert outcomes(restarted, "often", start) == [
        (2, "created"),
        *[(t, "skipped-misfire") for t in (4, 6, 8, 10, 12)],
        (14, "created"),
        (16, "created"),
    ]


def test_a_fire_whose_target_group_was_deleted_fails_with_the_reason_and_others_fire(
    schedules, arns, clock, engine, registry
):
    registry.create_group("kiosks")
    schedules.create(hourly(arns, name="kiosks-nightly", targets=[arns.thing_group("kiosks")]))
    schedules.create(hourly(arns, overlap="allow"))
    engine.membership.delete_group("kiosks", expected_version=None)
    to_next_hour(clock)
    messages = told(schedules.fire_due())
    assert [(h["outcome"], h["jobId"], h["reason"]) for h in schedules.history("kiosks-nightly")] == [
        ("failed", None, "Thing group kiosks does not exist")
    ]
    assert [h["outcome"] for h in schedules.history("nightly")] == ["created"]
    assert any(m.topic == "$aws/things/t1/jobs/notify-next" for m in messages)
    # The failed fire is not tried again: the schedule waits for its next fire.
    assert schedules.fire_due() == [] and len(schedules.history("kiosks-nightly")) == 1
    assert schedules.describe("kiosks-nightly").next_fire_at == clock.now() + HOUR
    clock.advance(HOUR)
    schedules.fire_due()
    assert [h["outcome"] for h in schedules.history("kiosks-nightly")] == ["failed", "failed"]
    assert [h["outcome"] for h in schedules.history("nightly")] == ["created", "created"]


def test_a_fire_whose_template_was_deleted_fails_with_the_reason(schedules, arns, clock):
    schedules.templates.create(
        "cleanup",
        description="d",
        document='{"op": "clean"}',
        document_source=None,
        job_arn=None,
        settings={},
    )
    schedules.create(hourly(arns, document=None, template_arn=arns.job_template("cleanup")))
    schedules.templates.delete("cleanup")
    to_next_hour(clock)
    assert schedules.fire_due() == []
    assert [(h["outcome"], h["reason"]) for h in schedules.history("nightly")] == [
        ("failed", "Job template cleanup does not exist")
    ]


def test_a_schedule_that_cannot_be_handled_at_all_stops_no_other_and_waits_to_be_retried(
    schedules, arns, clock, store, caplog
):
    schedules.create(hourly(arns, name="broken"))
    schedules.create(hourly(arns))
    # As if a tzdata update had dropped the schedule's zone.
    store.schedules.put_schedule(replace(store.schedules.get_schedule("broken"), timezone="Gone/Zone"))
    to_next_hour(clock)
    with caplog.at_level(logging.ERROR):
        schedules.fire_due()
    assert [h["outcome"] for h in schedules.history("nightly")] == ["created"]
    assert "Schedule broken could not be handled; trying again in 60 s" in caplog.messages
    assert schedules.describe("broken").next_fire_at == clock.now() + RETRY_AFTER
    assert schedules.fire_due() == [], "not retried at once"


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        (
            {"targets": ["arn:aws:iot:us-east-1:123456789012:thing/nope"]},
            InvalidRequest,
            "A target of schedule nightly does not exist: Thing nope does not exist",
        ),
        (
            {"targets": ["arn:aws:iot:us-east-1:123456789012:thinggroup/gone"]},
            InvalidRequest,
            "A target of schedule nightly does not exist: Thing group gone does not exist",
        ),
        ({"targets": ["t1"]}, InvalidRequest, "Target t1 is not a thing or thing group ARN"),
        (
            {"targets": ["arn:aws:iot:us-east-1:123456789012:thing/t1"] * 101},
            LimitExceeded,
            "A job can have at most 100 targets, not 101",
        ),
        ({"document": "{bad"}, InvalidRequest, "The job document is not valid JSON"),
        ({"document": "[1]"}, InvalidRequest, "The job document must be a JSON object"),
        (
            {"settings": {"timeoutConfig": {"inProgressTimeoutInMinutes": 0}}},
            InvalidRequest,
            "inProgressTimeoutInMinutes must be between 1 and 10080, not 0",
        ),
    ],
)
def test_targets_documents_and_settings_are_checked_as_create_job_checks_them(
    schedules, arns, changes, error, message
):
    with pytest.raises(error, match=message):
        schedules.create(hourly(arns, **changes))
    schedules.create(hourly(arns))
    with pytest.raises(error, match=message):
        schedules.update("nightly", changes)
    assert schedules.describe("nightly").spec["targets"] == [arns.thing("t1")], (
        "a refused update changes nothing"
    )


def test_a_schedule_whose_target_vanished_can_still_be_disabled_and_retargeted(
    schedules, arns, engine, registry
):
    registry.create_group("kiosks")
    schedules.create(hourly(arns, targets=[arns.thing_group("kiosks")]))
    engine.membership.delete_group("kiosks", expected_version=None)
    assert schedules.update("nightly", {"enabled": False}).enabled is False
    assert schedules.update("nightly", {"targets": [arns.thing("t1")]}).spec["targets"] == [arns.thing("t1")]
