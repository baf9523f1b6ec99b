import json

import pytest

from iot_jobs_bridge.jobs_service.engine import NewJob
from iot_jobs_bridge.jobs_service.errors import (
    InvalidRequest,
    InvalidStateTransition,
    LimitExceeded,
    ResourceAlreadyExists,
    ResourceNotFound,
    VersionMismatch,
)
from iot_jobs_bridge.jobs_service.models import ExecutionStatus, JobStatus

from .rendering import told


@pytest.fixture
def fleet(registry, engine):
    for name in ("t1", "t2", "t3"):
        engine.membership.create_thing(name)
    registry.create_group("g")
    registry.create_group("g-child", parent_name="g")
    registry.store.registry.add_member("g-child", "t2")
    registry.store.registry.add_member("g", "t3")
    return registry


def _update(engine, thing, job_id, status, *, details=None, version=None, number=None):
    return engine.device.update(
        thing,
        job_id,
        status=status,
        status_details=details,
        expected_version=version,
        execution_number=number,
    )


def _topics(messages):
    return [m.topic for m in messages]


def _create(engine, arns, job_id="j1", targets=None, document='{"op": "reboot"}'):
    return engine.jobs.create_job(
        NewJob(job_id=job_id, targets=targets or [arns.thing("t1")], document=document)
    )


def test_group_targets_expand_to_descendants_and_dedupe(engine, arns, fleet):
    outcome = _create(engine, arns, targets=[arns.thing("t2"), arns.thing_group("g")])
    executions = engine.store.jobs.executions_for_job("j1", status=None, after=None, limit=10)
    assert sorted(e.thing_name for e in executions) == ["t2", "t3"]
    assert all(e.version_number == 1 and e.execution_number == 1 for e in executions)
    assert sorted(_topics(told(outcome.events))) == sorted(
        f"$aws/things/{t}/jobs/{kind}" for t in ("t2", "t3") for kind in ("notify", "notify-next")
    )


def test_create_job_notifies_new_head_with_document(engine, arns, fleet, clock):
    outcome = _create(engine, arns)
    by_topic = {m.topic: m.payload for m in told(outcome.events)}
    assert by_topic["$aws/things/t1/jobs/notify"] == {
        "timestamp": int(clock.now()),
        "jobs": {
            "QUEUED": [
                {
                    "jobId": "j1",
                    "queuedAt": int(clock.now()),
                    "lastUpdatedAt": int(clock.now()),
                    "versionNumber": 1,
                    "executionNumber": 1,
                }
            ]
        },
    }
    execution = by_topic["$aws/things/t1/jobs/notify-next"]["execution"]
    assert execution["jobDocument"] == {"op": "reboot"}
    assert execution["status"] == "QUEUED"


def test_second_job_notifies_but_keeps_the_head(engine, arns, fleet):
    _create(engine, arns, "j1")
    outcome = _create(engine, arns, "j2")
    assert _topics(told(outcome.events)) == ["$aws/things/t1/jobs/notify"]


def test_create_job_errors_name_the_problem(engine, arns, fleet):
    with pytest.raises(ResourceNotFound, match=r"Thing ghost does not exist$"):
        _create(engine, arns, targets=[arns.thing("ghost")])
    with pytest.raises(ResourceNotFound, match=r"Thing group nope does not exist$"):
        _create(engine, arns, targets=[arns.thing_group("nope")])
    with pytest.raises(InvalidRequest, match="must be a JSON object"):
        _create(engine, arns, document="[1, 2]")
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        _create(engine, arns, document="{nope")
    with pytest.raises(LimitExceeded, match="at most 100 targets, not 101"):
        _create(engine, arns, targets=[arns.thing("t1")] * 101)
    with pytest.raises(InvalidRequest, match="region eu-west-1"):
        _create(engine, arns, targets=["arn:aws:iot:eu-west-1:123456789012:thing/t1"])
    _create(engine, arns)
    with pytest.raises(ResourceAlreadyExists, match=r"Job j1 already exists$") as caught:
        _create(engine, arns)
    assert caught.value.extra["resourceArn"] == arns.job("j1")


def test_start_next_then_succeed_completes_the_job(engine, arns, fleet, clock):
    _create(engine, arns)
    clock.advance(5)
    started = engine.device.start_next("t1", {"step": "1"})
    assert told(started.events) == []  # the head only changed status
    execution = started.value
    assert (execution.status, execution.version_number, execution.status_details) == (
        ExecutionStatus.IN_PROGRESS,
        2,
        {"step": "1"},
    )
    assert execution.started_at == clock.now()
    again = engine.device.start_next("t1", {"ignored": "x"}).value
    assert (again.version_number, again.status_details) == (2, {"step": "1"})

    done = _update(engine, "t1", "j1", ExecutionStatus.SUCCEEDED, details={"result": "ok"}, version=2)
    assert done.value.version_number == 3
    by_topic = {m.topic: m.payload for m in told(done.events)}
    assert by_topic.pop("$aws/things/t1/jobs/notify") == {"timestamp": int(clock.now()), "jobs": {}}
    assert by_topic.pop("$aws/things/t1/jobs/notify-next") == {"timestamp": int(clock.now())}
    succeeded = by_topic.pop("$aws/events/jobExecution/j1/succeeded")
    assert {k: v for k, v in succeeded.items() if k != "eventId"} == {
        "eventType": "JOB_EXECUTION",
        "timestamp": int(clock.now()),
        "operation": "succeeded",
        "jobId": "j1",
        "thingArn": arns.thing("t1"),
        "status": "SUCCEEDED",
        "statusDetails": {"result": "ok"},
    }
    completed = by_topic.pop("$aws/events/job/j1/completed")
    assert (completed["eventType"], completed["status"], completed["completedAt"]) == (
        "JOB",
        "COMPLETED",
        int(clock.now() * 1000),
    )
    assert completed["jobProcessDetails"]["numberOfSucceededThings"] == 1
    assert by_topic == {}
    job = engine.get_job("j1")
    assert job.status is JobStatus.COMPLETED
    assert job.completed_at == clock.now()
    assert engine.store.jobs.execution_counts("j1") == {ExecutionStatus.SUCCEEDED: 1}


def test_update_of_non_head_to_in_progress_takes_the_head(engine, arns, fleet):
    _create(engine, arns, "j1")
    _create(engine, arns, "j2")
    outcome = _update(engine, "t1", "j2", ExecutionStatus.IN_PROGRESS)
    assert _topics(told(outcome.events)) == ["$aws/things/t1/jobs/notify-next"]
    assert told(outcome.events)[0].payload["execution"]["jobId"] == "j2"


def test_update_rules(engine, arns, fleet):
    _create(engine, arns)
    with pytest.raises(VersionMismatch, match=r"Job execution j1 on t1 is at version 1, not 7$") as caught:
        _update(engine, "t1", "j1", ExecutionStatus.IN_PROGRESS, version=7)
    assert (caught.value.execution.status, caught.value.execution.version_number) == (
        ExecutionStatus.QUEUED,
        1,
    )
    with pytest.raises(InvalidRequest, match="cannot set status CANCELED"):
        _update(engine, "t1", "j1", ExecutionStatus.CANCELED)
    with pytest.raises(
        ResourceNotFound, match=r"Job execution j1 on t1 with execution number 9 does not exist$"
    ):
        _update(engine, "t1", "j1", ExecutionStatus.FAILED, number=9)
    _update(engine, "t1", "j1", ExecutionStatus.FAILED)
    with pytest.raises(
        InvalidStateTransition, match=r"Job execution j1 on t1 is FAILED; it cannot move to IN_PROGRESS$"
    ):
        _update(engine, "t1", "j1", ExecutionStatus.IN_PROGRESS)
    assert engine.get_execution("j1", "t1", None).version_number == 2


def test_failed_update_changes_nothing(engine, arns, fleet):
    _create(engine, arns)
    with pytest.raises(VersionMismatch):
        _update(engine, "t1", "j1", ExecutionStatus.SUCCEEDED, details={"a": "b"}, version=5)
    execution = engine.get_execution("j1", "t1", None)
    assert (execution.status, execution.version_number, execution.status_details) == (
        ExecutionStatus.QUEUED,
        1,
        {},
    )


def test_snapshot_job_with_no_things_is_completed(engine, arns, fleet):
    fleet.create_group("empty")
    _create(engine, arns, targets=[arns.thing_group("empty")])
    assert engine.get_job("j1").status is JobStatus.COMPLETED


def test_continuous_job_queues_things_that_join_later(engine, arns, fleet):
    engine.jobs.create_job(
        NewJob(job_id="c1", targets=[arns.thing_group("g")], document="{}", target_selection="CONTINUOUS")
    )
    outcome = engine.membership.add_thing_to_group("g-child", "t1")
    assert sorted(_topics(told(outcome.events))) == [
        "$aws/things/t1/jobs/notify",
        "$aws/things/t1/jobs/notify-next",
    ]
    assert engine.get_execution("c1", "t1", None).status is ExecutionStatus.QUEUED
    assert told(engine.membership.add_thing_to_group("g-child", "t1").events) == []
    _update(engine, "t3", "c1", ExecutionStatus.SUCCEEDED)
    assert engine.get_job("c1").status is JobStatus.IN_PROGRESS  # continuous jobs never complete


def test_document_is_returned_verbatim(engine, arns, fleet):
    document = json.dumps({"x": "y" * 100})
    _create(engine, arns, document=document)
    assert engine.document("j1") == document


def test_membership_changes_beyond_what_notify_shows_still_notify(engine, arns, fleet, clock):
    # The engine reads only the first notify_entries of a pending list, plus a
    # signature of the whole set: a change past that point must still notify.
    cap = engine.limits.notify_entries
    for n in range(cap + 5):
        clock.advance(1)
        _create(engine, arns, f"j{n}")
    outcome = engine.jobs.cancel_execution(
        f"j{cap + 3}", "t1", force=False, expected_version=None, status_details=None
    )
    device_topics = [t for t in _topics(told(outcome.events)) if t.startswith("$aws/things/")]
    assert device_topics == ["$aws/things/t1/jobs/notify"]
    messages = told(outcome.events)
    shown = messages[_topics(messages).index(device_topics[0])].payload["jobs"]["QUEUED"]
    assert [entry["jobId"] for entry in shown] == [f"j{n}" for n in range(cap)]
    clock.advance(1)
    outcome = _create(engine, arns, "late")
    assert _topics(told(outcome.events)) == ["$aws/things/t1/jobs/notify"]


def test_a_start_beyond_what_notify_shows_moves_the_head_without_a_notify(engine, arns, fleet, clock):
    cap = engine.limits.notify_entries
    for n in range(cap + 2):
        clock.advance(1)
        _create(engine, arns, f"j{n}")
    outcome = _update(engine, "t1", f"j{cap + 1}", ExecutionStatus.IN_PROGRESS)
    assert _topics(told(outcome.events)) == ["$aws/things/t1/jobs/notify-next"]
