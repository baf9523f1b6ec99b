"""A job's counts, kept by the schema's triggers, always equal counting its executions."""

import contextlib
import sqlite3

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iot_jobs_bridge.jobs_service.models import ExecutionStatus, Job, JobExecution, JobStatus
from iot_jobs_bridge.jobs_service.store import Store
from iot_jobs_bridge.jobs_service.store.jobs import _execution
from iot_jobs_bridge.jobs_service.store.migrations import MIGRATIONS

from ..stores import store_location

THINGS = ("t1", "t2", "t3")
JOBS = ("j1", "j2")


def counted(store: Store, job_id: str) -> dict[ExecutionStatus, int]:
    """Things per status of each thing's latest execution, counted from the executions."""
    rows = store.db.rows(
        "SELECT status, COUNT(*) AS n FROM job_executions AS e WHERE job_id = ? AND execution_number ="
        " (SELECT MAX(execution_number) FROM job_executions"
        "  WHERE job_id = e.job_id AND thing_name = e.thing_name) GROUP BY status",
        (job_id,),
    )
    return {ExecutionStatus(row["status"]): int(row["n"]) for row in rows}


def counted_outcomes(store: Store, job_id: str) -> dict[ExecutionStatus, int]:
    """Things per status of each thing's latest finished execution, counted from the executions."""
    rows = store.db.rows(
        "SELECT status, COUNT(*) AS n FROM job_executions AS e WHERE job_id = ?"
        " AND status NOT IN ('QUEUED', 'IN_PROGRESS') AND seq = (SELECT MAX(seq) FROM job_executions"
        "  WHERE job_id = e.job_id AND thing_name = e.thing_name AND status NOT IN ('QUEUED', 'IN_PROGRESS'))"
        " GROUP BY status",
        (job_id,),
    )
    return {ExecutionStatus(row["status"]): int(row["n"]) for row in rows}


def counted_things(store: Store, job_id: str) -> int:
    row = store.db.row(
        "SELECT COUNT(DISTINCT thing_name) AS n FROM job_executions WHERE job_id = ?", (job_id,)
    )
    return int(row["n"])


def job(job_id: str) -> Job:
    return Job(
        job_id=job_id,
        status=JobStatus.IN_PROGRESS,
        targets=[],
        document="{}",
        created_at=1,
        last_updated_at=1,
    )


def executions_of(store: Store, job_id: str, thing: str) -> list[JobExecution]:
    rows = store.db.rows(
        "SELECT * FROM job_executions WHERE job_id = ? AND thing_name = ? ORDER BY execution_number",
        (job_id, thing),
    )
    return [_execution(row) for row in rows]


# One step: (operation, job, thing, status, which of the thing's executions, undo it in a savepoint).
steps = st.lists(
    st.tuples(
        st.sampled_from(("insert", "insert", "save", "delete", "delete-job")),
        st.sampled_from(JOBS),
        st.sampled_from(THINGS),
        st.sampled_from(tuple(ExecutionStatus)),
        st.integers(min_value=0, max_value=3),
        st.booleans(),
    ),
    max_size=30,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_the_counts_follow_every_insert_save_and_delete_and_every_rollback(tmp_path_factory, steps):
    store = Store(store_location(tmp_path_factory.mktemp("counts")))
    try:
        for job_id in JOBS:
            store.jobs.insert_job(job(job_id))
        for operation, job_id, thing, status, which, undo in steps:
            with contextlib.suppress(RuntimeError), store.atomic():
                existing = executions_of(store, job_id, thing)
                if store.jobs.get_job(job_id) is None:
                    store.jobs.insert_job(job(job_id))
                if operation == "insert":
                    number = existing[-1].execution_number + 1 if existing else 1
                    store.jobs.insert_execution(
                        JobExecution(
                            job_id=job_id,
                            thing_name=thing,
                            execution_number=number,
                            status=status,
                            queued_at=1.0,
                            last_updated_at=1.0,
                        )
                    )
                elif operation == "save" and existing:
                    chosen = existing[which % len(existing)]  # not always the latest
                    store.jobs.save_execution(chosen.model_copy(update={"status": status}))
                elif operation == "delete" and existing:
                    store.jobs.delete_execution(existing[which % len(existing)])
                elif operation == "delete-job":
                    store.jobs.delete_job(job_id)
                if undo:
                    raise RuntimeError("undo this step")
            for name in JOBS:
                assert store.jobs.execution_counts(name) == counted(store, name)
                assert store.jobs.latest_outcomes(name) == counted_outcomes(store, name)
                assert store.jobs.executed_things(name) == counted_things(store, name)
            assert store.overview.counts_of_jobs(JOBS) == {name: counted(store, name) for name in JOBS}
    finally:
        store.close()


def test_a_store_from_before_the_counts_starts_with_them_counted(tmp_path):
    """Opening a store of schema 11 fills the counts from the executions already there."""
    path = tmp_path / "jobs.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as old:
        old.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for version, step in enumerate(MIGRATIONS[:11], start=1):
            step(old)
            old.execute("INSERT INTO schema_migrations VALUES (?, datetime('now'))", (version,))
        old.execute(
            "INSERT INTO jobs (job_id, status, target_selection, targets, document,"
            " created_at, last_updated_at) VALUES ('j', 'IN_PROGRESS', 'SNAPSHOT', '[]', '{}', 1, 1)"
        )
        old.executemany(
            "INSERT INTO job_executions (job_id, thing_name, execution_number, status,"
            " queued_at, last_updated_at) VALUES ('j', ?, ?, ?, 1, 1)",
            [
                ("a", 1, "FAILED"),
                ("a", 2, "QUEUED"),
                ("b", 1, "SUCCEEDED"),
                ("c", 1, "TIMED_OUT"),
                ("c", 2, "SUCCEEDED"),
            ],
        )
        old.commit()
    store = Store(path)
    try:
        assert store.schema_version == len(MIGRATIONS)
        assert store.jobs.execution_counts("j") == {ExecutionStatus.QUEUED: 1, ExecutionStatus.SUCCEEDED: 2}
        assert store.jobs.latest_outcomes("j") == {ExecutionStatus.FAILED: 1, ExecutionStatus.SUCCEEDED: 2}
        assert store.jobs.executed_things("j") == 3
    finally:
        store.close()
