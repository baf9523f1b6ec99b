"""The console's reads: jobs by text, progress of many jobs at once, release pace, fleet names."""

from iot_jobs_bridge.jobs_service.engine import NewJob
from iot_jobs_bridge.jobs_service.models import ExecutionStatus, JobStatus


def _create(engine, arns, job_id, things, description=None):
    engine.jobs.create_job(
        NewJob(
            job_id=job_id,
            targets=[arns.thing(t) for t in things],
            document="{}",
            description=description,
        )
    )


def test_jobs_page_finds_text_in_id_or_description_any_case_and_wildcards_literally(engine, arns, clock):
    engine.membership.create_thing("t1")
    _create(engine, arns, "firmware-1", ["t1"])
    clock.advance(1)
    _create(engine, arns, "reboot", ["t1"], description="After the Firmware update")
    clock.advance(1)
    _create(engine, arns, "fix_50%", ["t1"])
    _create(engine, arns, "fixa50", ["t1"])
    overview = engine.store.overview
    found = overview.jobs_page(status=None, text="FIRMWARE", after=None, limit=10)
    assert [job.job_id for job in found] == ["reboot", "firmware-1"]
    for literal in ("_50%", "x_5"):
        assert [j.job_id for j in overview.jobs_page(status=None, text=literal, after=None, limit=9)] == [
            "fix_50%"
        ]
    first = overview.jobs_page(status=None, text=None, after=None, limit=2)
    assert [job.job_id for job in first] == ["fixa50", "fix_50%"]
    rest = overview.jobs_page(status=None, text=None, after=(first[-1].created_at, first[-1].job_id), limit=2)
    assert [job.job_id for job in rest] == ["reboot", "firmware-1"]
    assert overview.jobs_page(status=JobStatus.CANCELED, text=None, after=None, limit=10) == []


def test_counts_of_jobs_count_each_things_latest_execution(engine, arns):
    for name in ("t1", "t2"):
        engine.membership.create_thing(name)
    _create(engine, arns, "a", ["t1", "t2"])
    _create(engine, arns, "b", ["t2"])
    engine.device.start_next("t1", None, None)
    engine.device.update(
        "t1",
        "a",
        status=ExecutionStatus.FAILED,
        status_details=None,
        expected_version=None,
        execution_number=None,
        step_timeout_minutes=None,
    )
    counts = engine.store.overview.counts_of_jobs(["a", "b", "none"])
    assert counts == {
        "a": {ExecutionStatus.FAILED: 1, ExecutionStatus.QUEUED: 1},
        "b": {ExecutionStatus.QUEUED: 1},
        "none": {},
    }
    assert engine.store.overview.counts_of_jobs([]) == {}


def test_queued_per_minute_buckets_releases_by_service_minute(engine, arns, clock):
    start = clock.now()
    for name in ("t1", "t2", "t3"):
        engine.membership.create_thing(name)
    _create(engine, arns, "a", ["t1", "t2"])
    clock.advance(61)
    _create(engine, arns, "b", ["t3"])
    per_minute = engine.store.overview.queued_per_minute("a", since=start - 60)
    assert per_minute == [(int(start) // 60, 2)]
    later = engine.store.overview.queued_per_minute("b", since=start)
    assert later == [(int(start + 61) // 60, 1)]
    assert engine.store.overview.queued_per_minute("a", since=start + 61) == []


def test_thing_and_group_names_filter_by_text_and_page(engine, registry):
    for name in ("Pump-1", "pump-2", "valve"):
        engine.membership.create_thing(name)
    registry.create_group("pumps")
    registry.create_group("valves")
    overview = engine.store.overview
    assert overview.thing_names(text="PUMP", after=None, limit=10) == ["Pump-1", "pump-2"]
    assert overview.thing_names(text=None, after="Pump-1", limit=1) == ["pump-2"]
    assert overview.group_names(text="valve", after=None, limit=10) == ["valves"]
