from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge.jobs_service.models import ExecutionStatus, JobExecution
from iot_jobs_bridge.jobs_service.states import (
    DEVICE_STATUSES,
    TERMINAL_STATUSES,
    Verdict,
    device_update_verdict,
    pending_order,
)

statuses = st.sampled_from(list(ExecutionStatus))


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
