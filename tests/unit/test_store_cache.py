"""What a transaction remembers (jobs, pending lists) always equals what SQLite holds."""

import contextlib
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iot_jobs_bridge.jobs_service.models import ExecutionStatus, Job, JobExecution, JobStatus
from iot_jobs_bridge.jobs_service.store import Store
from iot_jobs_bridge.jobs_service.store.jobs import _execution

THINGS = ("t1", "t2")
JOBS = ("j1", "j2", "j3")
STATUSES = tuple(ExecutionStatus)


def fresh_pending(store: Store, thing: str) -> list[JobExecution]:
    """The pending list read straight from the connection, past any cache."""
    rows = store.db.rows(
        "SELECT * FROM job_executions WHERE thing_name = ? AND status IN ('IN_PROGRESS', 'QUEUED')"
        " ORDER BY status = 'QUEUED', queued_at, seq",
        (thing,),
    )
    return [_execution(row) for row in rows]


def job(job_id: str, description: str = "") -> Job:
    return Job(
        job_id=job_id,
        status=JobStatus.IN_PROGRESS,
        targets=[],
        document="{}",
        description=description,
        created_at=1.0,
        last_updated_at=1.0,
    )


# One step: (operation, thing, job, status, queued_at, limit read afterwards, fail in a savepoint).
steps = st.lists(
    st.tuples(
        st.sampled_from(("insert", "save", "delete", "read")),
        st.sampled_from(THINGS),
        st.sampled_from(JOBS),
        st.sampled_from(STATUSES),
        st.sampled_from((1.0, 2.0, 3.0)),  # ties in queued_at: the order falls back to seq
        st.sampled_from((None, 1, 2, 10)),
        st.booleans(),
    ),
    max_size=40,
)


@pytest.fixture
def store(tmp_path):
    opened = Store(tmp_path / "jobs.sqlite3")
    for job_id in JOBS:
        opened.jobs.insert_job(job(job_id))
    yield opened
    opened.close()


@settings(max_examples=150)
@given(steps=steps)
def test_pending_lists_read_in_a_transaction_match_sqlite_after_every_write(tmp_path_factory, steps):
    store = Store(tmp_path_factory.mktemp("cache") / "jobs.sqlite3")
    try:
        for job_id in JOBS:
            store.jobs.insert_job(job(job_id))
        with store.atomic():
            for operation, thing, job_id, status, queued_at, limit, fail in steps:
                with contextlib.suppress(RuntimeError), store.atomic():
                    existing = [e for e in fresh_pending(store, thing) if e.job_id == job_id]
                    if operation == "insert":
                        latest = store.jobs.get_execution(job_id, thing)
                        number = latest.execution_number + 1 if latest else 1
                        store.jobs.insert_execution(
                            JobExecution(
                                job_id=job_id,
                                thing_name=thing,
                                execution_number=number,
                                status=ExecutionStatus.QUEUED,
                                queued_at=queued_at,
                                last_updated_at=queued_at,
                            )
                        )
                    elif operation == "save" and existing:
                        changed = existing[0].model_copy(
                            update={"status": status, "version_number": existing[0].version_number + 1}
                        )
                        store.jobs.save_execution(changed)
                    elif operation == "delete" and existing:
                        store.jobs.delete_execution(existing[0])
                    if fail:
                        raise RuntimeError("undo this step")
                for name in THINGS:
                    expected = fresh_pending(store, name)
                    assert store.jobs.pending_executions(name, limit) == expected[:limit]
                    assert store.jobs.pending_view(name, 2) == (
                        (len(expected), sum(e.seq for e in expected)),
                        expected[:2],
                    )
    finally:
        store.close()


def test_a_job_read_in_a_transaction_follows_its_writes_and_its_rollbacks(store):
    with store.atomic():
        assert store.jobs.get_job("j1").description == ""
        store.jobs.save_job(job("j1", "changed"))
        assert store.jobs.get_job("j1").description == "changed"
        with pytest.raises(RuntimeError), store.atomic():
            store.jobs.save_job(job("j1", "undone"))
            assert store.jobs.get_job("j1").description == "undone"
            raise RuntimeError("roll back")
        assert store.jobs.get_job("j1").description == "changed"
        store.jobs.delete_job("j2")
        assert store.jobs.get_job("j2") is None
        assert store.jobs.get_documents(["j1", "j2"]) == {"j1": "{}"}
    assert store.jobs.get_job("j1").description == "changed"


def test_another_connection_sees_nothing_of_a_transaction_until_it_commits(store):
    with contextlib.closing(sqlite3.connect(store.path)) as other, store.atomic():
        store.jobs.save_job(job("j1", "pending commit"))
        assert store.jobs.get_job("j1").description == "pending commit"
        (seen,) = other.execute("SELECT description FROM jobs WHERE job_id = 'j1'").fetchone()
        assert seen == ""
