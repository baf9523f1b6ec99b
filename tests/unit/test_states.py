import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge.jobs_service.models import ExecutionStatus, Job, JobExecution, JobStatus
from iot_jobs_bridge.jobs_service.states import (
    DEVICE_STATUSES,
    JOB_TRANSITIONS,
    TERMINAL_STATUSES,
    Actor,
    IllegalTransition,
    Verdict,
    device_update_verdict,
    job_moved,
    moved,
    pending_order,
)

statuses = st.sampled_from(list(ExecutionStatus))
actors = st.sampled_from(list(Actor))


def _execution(job_id, status, queued_at, seq):
    return JobExecution(
        job_id=job_id,
        thing_name="t",
        execution_number=1,
        status=status,
        queued_at=queued_at,
        last_updated_at=queued_at,
        seq=seq,
    )


def test_device_may_move_queued_or_in_progress_to_device_statuses():
    for current in (ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS):
        for target in DEVICE_STATUSES:
            assert device_update_verdict(current, target) is Verdict.ALLOWED


def test_service_statuses_are_not_device_statuses():
    for target in (
        ExecutionStatus.QUEUED,
        ExecutionStatus.CANCELED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.REMOVED,
    ):
        assert device_update_verdict(ExecutionStatus.IN_PROGRESS, target) is Verdict.NOT_A_DEVICE_STATUS


@given(st.lists(statuses, min_size=1, max_size=12))
def test_no_path_leaves_a_terminal_state(path):
    current = ExecutionStatus.QUEUED
    reached_terminal = False
    for target in path:
        verdict = device_update_verdict(current, target)
        if reached_terminal:
            assert verdict is not Verdict.ALLOWED
        if verdict is Verdict.ALLOWED:
            current = target
            reached_terminal = current in TERMINAL_STATUSES


def test_pending_order_puts_in_progress_first_then_oldest():
    q_old = _execution("a", ExecutionStatus.QUEUED, 10, 1)
    q_new = _execution("b", ExecutionStatus.QUEUED, 20, 2)
    started = _execution("c", ExecutionStatus.IN_PROGRESS, 30, 3)
    done = _execution("d", ExecutionStatus.SUCCEEDED, 5, 4)
    assert [e.job_id for e in pending_order([q_new, done, started, q_old])] == ["c", "a", "b"]


def test_pending_order_breaks_queue_time_ties_by_creation():
    first = _execution("z", ExecutionStatus.QUEUED, 10, 1)
    second = _execution("a", ExecutionStatus.QUEUED, 10, 2)
    assert [e.job_id for e in pending_order([second, first])] == ["z", "a"]


@given(st.lists(st.tuples(statuses, actors), min_size=1, max_size=12))
def test_moved_never_leaves_a_terminal_state_and_counts_every_change(path):
    execution = _execution("j", ExecutionStatus.QUEUED, 0, 1).model_copy(
        update={"timeout_at": 100.0, "step_timeout_at": 50.0}
    )
    changes = 0
    for now, (target, actor) in enumerate(path, start=1):
        try:
            after = moved(execution, target, actor, float(now))
        except IllegalTransition:
            continue
        assert execution.status not in TERMINAL_STATUSES
        changes += 1
        assert (after.status, after.version_number, after.last_updated_at) == (target, 1 + changes, now)
        if target in TERMINAL_STATUSES:
            assert (after.timeout_at, after.step_timeout_at) == (None, None)
        execution = after


@pytest.mark.parametrize(
    ("before", "after", "by"),
    [
        (ExecutionStatus.QUEUED, ExecutionStatus.TIMED_OUT, Actor.SERVICE),  # never started, never timed
        (ExecutionStatus.IN_PROGRESS, ExecutionStatus.SUCCEEDED, Actor.SERVICE),  # only a device succeeds
        (ExecutionStatus.IN_PROGRESS, ExecutionStatus.CANCELED, Actor.DEVICE),  # only the service cancels
        (ExecutionStatus.IN_PROGRESS, ExecutionStatus.QUEUED, Actor.DEVICE),
        (ExecutionStatus.SUCCEEDED, ExecutionStatus.IN_PROGRESS, Actor.DEVICE),
        (ExecutionStatus.CANCELED, ExecutionStatus.REMOVED, Actor.SERVICE),
    ],
)
def test_moves_outside_the_table_are_refused(before, after, by):
    with pytest.raises(IllegalTransition) as refused:
        moved(_execution("j", before, 0, 1), after, by, 1.0)
    assert str(refused.value) == f"execution of j on t: {before.value} -> {after.value} by the {by.value}"


def test_a_service_move_keeps_what_it_is_not_told_to_change():
    running = _execution("j", ExecutionStatus.IN_PROGRESS, 0, 1).model_copy(
        update={"status_details": {"step": "2"}, "started_at": 5.0, "timeout_at": 70.0}
    )
    ended = moved(running, ExecutionStatus.CANCELED, Actor.SERVICE, 9.0, force_canceled=True)
    assert ended.model_dump() == {
        **running.model_dump(),
        "status": ExecutionStatus.CANCELED,
        "version_number": 2,
        "last_updated_at": 9.0,
        "force_canceled": True,
        "timeout_at": None,
    }


def _job(status):
    return Job(job_id="j", status=status, targets=[], document="{}", created_at=0, last_updated_at=0)


@pytest.mark.parametrize("before", list(JobStatus))
@pytest.mark.parametrize("after", list(JobStatus))
def test_a_job_moves_only_as_its_table_says(before, after):
    if (before, after) in JOB_TRANSITIONS:
        assert job_moved(_job(before), after, 7.0, comment="c").model_dump() == {
            **_job(before).model_dump(),
            "status": after,
            "last_updated_at": 7.0,
            "comment": "c",
        }
    else:
        with pytest.raises(IllegalTransition, match=f"job j: {before.value} -> {after.value}"):
            job_moved(_job(before), after, 7.0)


def test_finished_jobs_stay_finished_but_may_be_deleted():
    assert {after for before, after in JOB_TRANSITIONS if before is JobStatus.COMPLETED} == {
        JobStatus.DELETION_IN_PROGRESS
    }
    assert not {after for before, after in JOB_TRANSITIONS if before is JobStatus.DELETION_IN_PROGRESS}
