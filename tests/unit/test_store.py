import pytest

from iot_jobs_bridge.jobs_service.errors import InternalError
from iot_jobs_bridge.jobs_service.models import ExecutionStatus, Job, JobExecution, JobStatus, Thing
from iot_jobs_bridge.jobs_service.store import Store
from iot_jobs_bridge.jobs_service.store.migrations import MIGRATIONS


def _job(job_id="j1"):
    return Job(
        job_id=job_id,
        status=JobStatus.IN_PROGRESS,
        targets=[],
        document="{}",
        created_at=1.0,
        last_updated_at=1.0,
    )


def _execution(job_id, thing, number=1, status=ExecutionStatus.QUEUED, queued_at=1.0):
    return JobExecution(
        job_id=job_id,
        thing_name=thing,
        execution_number=number,
        status=status,
        queued_at=queued_at,
        last_updated_at=queued_at,
    )


def test_reopening_keeps_data_and_does_not_migrate_twice(tmp_path):
    path = tmp_path / "db.sqlite3"
    first = Store(path)
    first.registry.insert_thing(Thing(name="t1", thing_id="id-1", created_at=1.0))
    first.close()
    first.close()  # idempotent
    second = Store(path)
    assert second.schema_version == len(MIGRATIONS)
    assert second.registry.get_thing("t1").thing_id == "id-1"
    second.close()


def test_atomic_rolls_back_every_row_on_error(store):
    with pytest.raises(RuntimeError), store.atomic():
        store.jobs.insert_job(_job("j1"))
        store.jobs.insert_execution(_execution("j1", "t1"))
        raise RuntimeError("boom")
    assert store.jobs.get_job("j1") is None
    assert store.jobs.get_execution("j1", "t1") is None


def test_nested_atomic_joins_the_outer_transaction(store):
    with pytest.raises(RuntimeError), store.atomic():
        store.jobs.insert_job(_job("j1"))
        with store.atomic():
            store.jobs.insert_execution(_execution("j1", "t1"))
        raise RuntimeError("boom")
    assert store.jobs.get_execution("j1", "t1") is None


def test_a_failing_nested_block_is_undone_alone(store):
    with store.atomic():
        store.jobs.insert_job(_job("j1"))
        with pytest.raises(RuntimeError), store.atomic():
            store.jobs.insert_execution(_execution("j1", "t1"))
            raise RuntimeError("boom")
        store.jobs.insert_execution(_execution("j1", "t2"))
    assert store.jobs.get_job("j1") is not None
    assert store.jobs.get_execution("j1", "t1") is None
    assert store.jobs.get_execution("j1", "t2") is not None


def test_watchers_hear_of_each_thing_before_its_executions_change(store):
    store.jobs.insert_job(_job("j1"))
    store.jobs.insert_execution(_execution("j1", "t1"))
    heard = []

    def watcher(name):
        # Called before the change: the old row is still there to read.
        heard.append((name, store.jobs.get_execution("j1", name)))

    with store.atomic() as work:
        with work.watching(watcher):
            first = store.jobs.get_execution("j1", "t1")
            store.jobs.save_execution(first.model_copy(update={"status": ExecutionStatus.IN_PROGRESS}))
            with store.atomic():  # a nested block shares the unit of work
                store.jobs.insert_execution(_execution("j1", "t2"))
        store.jobs.delete_execution(store.jobs.get_execution("j1", "t2"))  # after the block: not heard
    assert heard == [("t1", first), ("t2", None)]


def test_after_commit_actions_wait_for_the_commit_and_leave_with_a_rolled_back_block(store):
    done = []
    with store.atomic() as work:
        work.after_commit(lambda: done.append("outer"))
        with pytest.raises(RuntimeError), store.atomic():
            work.after_commit(lambda: done.append("undone"))
            raise RuntimeError("boom")
        with store.atomic():
            work.after_commit(lambda: done.append("kept"))
        assert done == []  # not committed yet
    assert done == ["outer", "kept"]
    with pytest.raises(RuntimeError), store.atomic() as work:
        work.after_commit(lambda: done.append("never"))
        raise RuntimeError("boom")
    assert done == ["outer", "kept"]


def test_store_errors_are_translated(store):
    store.jobs.insert_job(_job("j1"))
    with pytest.raises(InternalError, match="The store could not complete the request"):
        store.jobs.insert_job(_job("j1"))


def test_pending_executions_in_next_order(store):
    for job_id in ("a", "b", "c"):
        store.jobs.insert_job(_job(job_id))
    store.jobs.insert_execution(_execution("a", "t1", queued_at=1.0))
    store.jobs.insert_execution(_execution("b", "t1", queued_at=2.0, status=ExecutionStatus.IN_PROGRESS))
    store.jobs.insert_execution(_execution("c", "t1", queued_at=0.5, status=ExecutionStatus.SUCCEEDED))
    assert [e.job_id for e in store.jobs.pending_executions("t1")] == ["b", "a"]


def test_counts_use_each_things_latest_execution(store):
    store.jobs.insert_job(_job("j1"))
    store.jobs.insert_execution(_execution("j1", "t1", number=1, status=ExecutionStatus.FAILED))
    store.jobs.insert_execution(_execution("j1", "t1", number=2, status=ExecutionStatus.QUEUED))
    store.jobs.insert_execution(_execution("j1", "t2", number=1, status=ExecutionStatus.SUCCEEDED))
    assert store.jobs.execution_counts("j1") == {ExecutionStatus.QUEUED: 1, ExecutionStatus.SUCCEEDED: 1}
    assert store.jobs.get_execution("j1", "t1").execution_number == 2
    assert store.jobs.get_execution("j1", "t1", 1).status is ExecutionStatus.FAILED


def test_group_tree_queries(store):
    from iot_jobs_bridge.jobs_service.models import ThingGroup

    for name, parent in (("root", None), ("child", "root"), ("leaf", "child"), ("other", None)):
        store.registry.insert_group(
            ThingGroup(name=name, group_id=f"id-{name}", parent_name=parent, created_at=1.0)
        )
    for thing in ("t1", "t2"):
        store.registry.insert_thing(Thing(name=thing, thing_id=f"id-{thing}", created_at=1.0))
    assert store.registry.add_member("leaf", "t1") is True
    assert store.registry.add_member("leaf", "t1") is False
    store.registry.add_member("other", "t2")
    assert store.registry.descendant_groups("root") == ["child", "leaf", "root"]
    assert store.registry.ancestor_groups("leaf") == ["leaf", "child", "root"]
    assert store.registry.group_things(store.registry.descendant_groups("root")) == ["t1"]
