"""Cancel, delete, associate and membership changes in the engine (fake clock, real SQLite)."""

import pytest

from iot_jobs_bridge.jobs_service.engine import NewJob
from iot_jobs_bridge.jobs_service.errors import (
    InvalidQuery,
    InvalidRequest,
    InvalidStateTransition,
    LimitExceeded,
    ResourceAlreadyExists,
    VersionConflict,
)
from iot_jobs_bridge.jobs_service.models import ExecutionStatus, JobStatus, TargetSelection

from .rendering import told


@pytest.fixture
def things(engine):
    for name in ("a", "b", "c"):
        engine.membership.create_thing(name)
    return ["a", "b", "c"]


def _job(engine, arns, job_id="j", targets=("a", "b"), selection=TargetSelection.SNAPSHOT, group=None):
    arn_list = [arns.thing(t) for t in targets] + ([arns.thing_group(group)] if group else [])
    return engine.jobs.create_job(
        NewJob(job_id=job_id, targets=arn_list, document="{}", target_selection=selection)
    )


def _status(engine, job_id, thing):
    return engine.get_execution(job_id, thing, None).status


def test_cancel_job_leaves_running_executions_unless_forced(engine, arns, things):
    _job(engine, arns)
    engine.device.start_next("a", None)
    outcome = engine.jobs.cancel_job("j", force=False, reason_code="OPS", comment="stop")
    assert (_status(engine, "j", "a"), _status(engine, "j", "b")) == (
        ExecutionStatus.IN_PROGRESS,
        ExecutionStatus.CANCELED,
    )
    assert [m.topic for m in told(outcome.events)] == [
        "$aws/things/b/jobs/notify",
        "$aws/things/b/jobs/notify-next",
        "$aws/events/jobExecution/j/canceled",
        "$aws/events/job/j/cancellation_in_progress",
        "$aws/events/job/j/canceled",
    ]
    assert told(outcome.events)[-1].payload["comment"] == "stop"
    job = engine.get_job("j")
    assert (job.status, job.force_canceled, job.reason_code, job.comment) == (
        JobStatus.CANCELED,
        False,
        "OPS",
        "stop",
    )
    with pytest.raises(InvalidRequest, match="already canceled"):
        engine.jobs.cancel_job("j", force=False, reason_code=None, comment=None)
    engine.jobs.cancel_job("j", force=True, reason_code=None, comment=None)
    running = engine.get_execution("j", "a", None)
    assert (running.status, running.force_canceled, running.version_number) == (
        ExecutionStatus.CANCELED,
        True,
        3,
    )
    assert engine.get_job("j").force_canceled is True
    with pytest.raises(InvalidRequest, match="already canceled"):
        engine.jobs.cancel_job("j", force=True, reason_code=None, comment=None)


def test_cancel_completed_job_is_refused(engine, arns, things):
    _job(engine, arns, targets=("a",))
    engine.device.update(
        "a",
        "j",
        status=ExecutionStatus.SUCCEEDED,
        status_details=None,
        expected_version=None,
        execution_number=None,
    )
    with pytest.raises(InvalidRequest, match="Job j is COMPLETED; it cannot be canceled"):
        engine.jobs.cancel_job("j", force=True, reason_code=None, comment=None)


def test_delete_job_needs_force_while_in_progress_then_frees_the_id(engine, arns, things):
    _job(engine, arns)
    with pytest.raises(InvalidStateTransition, match="Job j is IN_PROGRESS; delete it with force=true"):
        engine.jobs.delete_job("j", force=False)
    outcome = engine.jobs.delete_job("j", force=True)
    assert engine.get_job("j").status is JobStatus.DELETION_IN_PROGRESS
    assert engine.device.pending("a") == []
    topics = [m.topic for m in told(outcome.events)]
    assert "$aws/things/a/jobs/notify-next" in topics
    assert topics.count("$aws/events/jobExecution/j/deleted") == 2
    assert topics[-1] == "$aws/events/job/j/deletion_in_progress"
    with pytest.raises(ResourceAlreadyExists):
        _job(engine, arns)
    with pytest.raises(InvalidRequest, match="Job j is being deleted"):
        engine.jobs.delete_job("j", force=True)
    finished = engine.jobs.finish_deletions()
    assert finished.value == ["j"]
    assert [(m.topic, m.payload["status"]) for m in told(finished.events)] == [
        ("$aws/events/job/j/deleted", "DELETED")
    ]
    _job(engine, arns)  # the id is free again
    assert engine.get_job("j").status is JobStatus.IN_PROGRESS


def test_at_most_ten_deletions_at_once(engine, arns, things):
    for i in range(11):
        _job(engine, arns, job_id=f"j{i}", targets=("a",))
    for i in range(10):
        engine.jobs.delete_job(f"j{i}", force=True)
    with pytest.raises(LimitExceeded, match="10 jobs are already being deleted"):
        engine.jobs.delete_job("j10", force=True)


def test_cancel_execution_rules(engine, arns, things):
    _job(engine, arns)
    with pytest.raises(VersionConflict, match="Job execution j on a is at version 1, not 4"):
        engine.jobs.cancel_execution("j", "a", force=False, expected_version=4, status_details=None)
    engine.jobs.cancel_execution("j", "a", force=False, expected_version=1, status_details={"why": "ops"})
    canceled = engine.get_execution("j", "a", None)
    assert (canceled.status, canceled.version_number, canceled.status_details) == (
        ExecutionStatus.CANCELED,
        2,
        {"why": "ops"},
    )
    with pytest.raises(InvalidStateTransition, match="is CANCELED; it cannot be canceled"):
        engine.jobs.cancel_execution("j", "a", force=True, expected_version=None, status_details=None)
    engine.device.start_next("b", None)
    with pytest.raises(InvalidStateTransition, match="is IN_PROGRESS; cancel it with force=true"):
        engine.jobs.cancel_execution("j", "b", force=False, expected_version=None, status_details=None)
    engine.jobs.cancel_execution("j", "b", force=True, expected_version=None, status_details=None)
    assert engine.get_job("j").status is JobStatus.COMPLETED


def test_delete_execution_rules(engine, arns, things):
    _job(engine, arns)
    engine.device.start_next("a", None)
    with pytest.raises(InvalidStateTransition, match="is IN_PROGRESS; delete it with force=true"):
        engine.jobs.delete_execution("j", "a", 1, force=False)
    engine.jobs.delete_execution("j", "b", 1, force=False)
    engine.jobs.delete_execution("j", "a", 1, force=True)
    assert engine.get_job("j").status is JobStatus.COMPLETED


def test_associate_targets_only_for_continuous_in_progress_jobs(engine, arns, things):
    _job(engine, arns, targets=("a",))
    with pytest.raises(InvalidRequest, match="snapshot job"):
        engine.jobs.associate_targets("j", [arns.thing("b")])
    _job(engine, arns, job_id="c", targets=("a",), selection=TargetSelection.CONTINUOUS)
    outcome = engine.jobs.associate_targets("c", [arns.thing("a"), arns.thing("b")])
    assert outcome.value.targets == [arns.thing("a"), arns.thing("b")]
    assert [e.job_id for e in engine.device.pending("b")] == ["c"]
    assert [
        e.execution_number
        for e in engine.store.jobs.executions_for_job("c", status=None, after=None, limit=9)
    ] == [1, 1]
    with pytest.raises(LimitExceeded):
        engine.jobs.associate_targets("c", [arns.thing(f"x{i}") for i in range(99)])


def test_continuous_job_follows_static_membership(engine, arns, registry, things):
    registry.create_group("g")
    _job(engine, arns, job_id="c", targets=(), group="g", selection=TargetSelection.CONTINUOUS)
    engine.membership.add_thing_to_group("g", "a")
    assert _status(engine, "c", "a") is ExecutionStatus.QUEUED
    outcome = engine.membership.remove_thing_from_group("g", "a")
    removed = engine.get_execution("c", "a", None)
    assert (removed.status, removed.version_number) == (ExecutionStatus.REMOVED, 2)
    assert {m.topic for m in told(outcome.events)} == {
        "$aws/things/a/jobs/notify",
        "$aws/things/a/jobs/notify-next",
        "$aws/events/jobExecution/c/removed",
    }
    engine.membership.add_thing_to_group("g", "a")
    assert engine.get_execution("c", "a", None).execution_number == 2


def test_group_rules(engine, registry, things):
    registry.create_group("root")
    registry.create_group("child", parent_name="root")
    engine.membership.add_thing_to_group("child", "a")
    with pytest.raises(InvalidRequest, match="only one group of a hierarchy"):
        engine.membership.add_thing_to_group("root", "a")
    for i in range(9):
        registry.create_group(f"g{i}")
        engine.membership.add_thing_to_group(f"g{i}", "a")
    registry.create_group("eleventh")
    with pytest.raises(InvalidRequest, match="already in 10 thing groups"):
        engine.membership.add_thing_to_group("eleventh", "a")
    with pytest.raises(InvalidRequest, match="has child groups"):
        engine.membership.delete_group("root", expected_version=None)
    with pytest.raises(VersionConflict):
        engine.membership.delete_group("child", expected_version=7)
    engine.membership.delete_group("child", expected_version=1)
    assert "child" not in engine.store.registry.groups_of_thing("a")


def test_dynamic_group_tracks_attributes_and_feeds_continuous_jobs(engine, arns, things):
    engine.membership.update_thing(
        "a",
        attributes={"color": "red"},
        merge=False,
        thing_type_name=None,
        remove_thing_type=False,
        expected_version=None,
    )
    engine.membership.create_dynamic_group(
        "reds",
        query_string="attributes.color:red",
        query_version=None,
        index_name=None,
        description=None,
        attributes=None,
    )
    assert engine.store.registry.group_things(["reds"]) == ["a"]
    _job(engine, arns, job_id="c", targets=(), group="reds", selection=TargetSelection.CONTINUOUS)
    assert _status(engine, "c", "a") is ExecutionStatus.QUEUED
    engine.membership.update_thing(
        "b",
        attributes={"color": "red"},
        merge=True,
        thing_type_name=None,
        remove_thing_type=False,
        expected_version=1,
    )
    assert _status(engine, "c", "b") is ExecutionStatus.QUEUED
    engine.membership.update_thing(
        "a",
        attributes={"color": ""},
        merge=True,
        thing_type_name=None,
        remove_thing_type=False,
        expected_version=None,
    )
    assert engine.store.registry.get_thing("a").attributes == {}
    assert _status(engine, "c", "a") is ExecutionStatus.REMOVED
    with pytest.raises(InvalidRequest, match="is dynamic"):
        engine.membership.add_thing_to_group("reds", "c")
    with pytest.raises(InvalidQuery):
        engine.membership.create_dynamic_group(
            "bad",
            query_string="attributes.color:(",
            query_version=None,
            index_name=None,
            description=None,
            attributes=None,
        )


def test_delete_thing_removes_pending_work_and_completes_snapshot_jobs(engine, arns, things):
    _job(engine, arns, targets=("a",))
    engine.membership.delete_thing("a", expected_version=None)
    assert _status(engine, "j", "a") is ExecutionStatus.REMOVED
    assert engine.get_job("j").status is JobStatus.COMPLETED
    assert engine.membership.delete_thing("a", expected_version=None).value is False


def test_attribute_limit(engine):
    with pytest.raises(InvalidRequest, match="at most 3 attributes, not 4"):
        engine.membership.create_thing("t", attributes={str(i): "v" for i in range(4)})
