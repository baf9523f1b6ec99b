"""Live job views: committed changes wake the streams of the jobs they touch, and nothing else."""

import asyncio
import json
import threading

import pytest

from iot_jobs_bridge.jobs_service.console.live import LiveJobs
from iot_jobs_bridge.jobs_service.domain_events import Activity, ExecutionWritten
from iot_jobs_bridge.jobs_service.engine import NewJob
from iot_jobs_bridge.jobs_service.errors import ResourceNotFound
from iot_jobs_bridge.jobs_service.models import ExecutionStatus


def _written(job_id: str) -> Activity:
    return Activity(
        (), (ExecutionWritten(job_id, "t1", ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS),)
    )


def test_a_stream_sends_at_once_then_after_changes_of_its_job_only():
    async def scenario() -> list[str]:
        live = LiveJobs(asyncio.get_running_loop())
        reads = iter(range(100))
        sent: asyncio.Queue[str] = asyncio.Queue()

        async def read() -> str:
            return json.dumps(next(reads))

        async def follow() -> None:
            async for event in live.stream("j1", read):
                sent.put_nowait(event)

        task = asyncio.create_task(follow())
        first = await asyncio.wait_for(sent.get(), 5)
        # Observers are told on the committing thread, not the loop's.
        other = threading.Thread(target=live.observe, args=(_written("j2"),))
        other.start()
        other.join()
        burst = [threading.Thread(target=live.observe, args=(_written("j1"),)) for _ in range(5)]
        for thread in burst:
            thread.start()
        for thread in burst:
            thread.join()
        second = await asyncio.wait_for(sent.get(), 5)
        live.close()
        await asyncio.wait_for(task, 5)
        return [first, second, *[sent.get_nowait() for _ in range(sent.qsize())]]

    sent = asyncio.run(scenario())
    # The first read at once; the burst of five changes is one read; j2's change none.
    assert sent == ["event: job\ndata: 0\n\n", "event: job\ndata: 1\n\n"]


def test_nobody_watching_costs_no_call_onto_the_loop():
    class Loop:
        calls = 0

        def call_soon_threadsafe(self, *args):
            Loop.calls += 1

    live = LiveJobs(Loop())  # type: ignore[arg-type]
    live.observe(_written("j1"))
    assert Loop.calls == 0


def test_the_engine_tells_observers_each_committed_write(engine, arns):
    seen: list[Activity] = []
    engine.core.observe(seen.append)
    engine.membership.create_thing("t1")
    engine.jobs.create_job(NewJob(job_id="j1", targets=[arns.thing("t1")], document="{}"))
    engine.device.start_next("t1", None, None)
    engine.device.update(
        "t1",
        "j1",
        status=ExecutionStatus.IN_PROGRESS,
        status_details={"p": "1"},
        expected_version=None,
        execution_number=None,
    )
    writes = [(w.job_id, w.previous, w.status, w.transition) for a in seen for w in a.writes]
    assert writes == [
        ("j1", None, ExecutionStatus.QUEUED, True),
        ("j1", ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS, True),
        ("j1", ExecutionStatus.IN_PROGRESS, ExecutionStatus.IN_PROGRESS, False),
    ]
    assert all(a.job_ids == {"j1"} for a in seen if a.writes)


def test_a_failed_change_tells_observers_nothing(engine, arns):
    seen: list[Activity] = []
    engine.core.observe(seen.append)
    engine.membership.create_thing("t1")
    with pytest.raises(ResourceNotFound):
        engine.jobs.create_job(NewJob(job_id="j1", targets=[arns.thing("nope")], document="{}"))
    assert [w for a in seen for w in a.writes] == []


def test_with_a_refresh_a_stream_reads_again_without_being_woken():
    async def scenario() -> list[str]:
        live = LiveJobs(asyncio.get_running_loop(), refresh=0.01)
        values = iter(["a", None, "b"])  # None: nothing new since the last read
        sent: asyncio.Queue[str] = asyncio.Queue()

        async def read() -> str | None:
            return next(values, None)

        async def follow() -> None:
            async for event in live.stream("j1", read):
                sent.put_nowait(event)

        task = asyncio.create_task(follow())
        events = [await asyncio.wait_for(sent.get(), 5) for _ in range(3)]
        live.close()
        await asyncio.wait_for(task, 5)
        return events

    # Nobody woke the stream: it read on its own, kept the connection alive, then sent the news.
    assert asyncio.run(scenario()) == [
        "event: job\ndata: a\n\n",
        ": still here\n\n",
        "event: job\ndata: b\n\n",
    ]
