"""The scheduler runs the timers only while its process leads; elsewhere a wake nudges the leader."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from iot_jobs_bridge.jobs_service.engine import NewJob
from iot_jobs_bridge.jobs_service.scheduler import Scheduler


class SwitchedLead:
    """A `Leadership` the test hands the lead to, as an election would."""

    def __init__(self) -> None:
        self.leading = False
        self.nudges = 0
        self.closed = False
        self._changed: Callable[[], None] = lambda: None

    def start(self, changed: Callable[[], None], due: Callable[[], None]) -> None:
        self._changed = changed

    def nudge(self) -> None:
        self.nudges += 1

    def close(self) -> None:
        self.closed = True

    def win(self) -> None:
        self.leading = True
        self._changed()


def test_a_worker_runs_no_timer_until_it_leads(engine, arns, clock):
    for name in ("d1", "d2", "d3"):
        engine.membership.create_thing(name)
    engine.jobs.create_job(
        NewJob(
            job_id="paced",
            targets=[arns.thing(name) for name in ("d1", "d2", "d3")],
            document="{}",
            settings={"jobExecutionsRolloutConfig": {"maximumPerMinute": 1}},
        )
    )

    def released() -> int:
        return engine.store.jobs.executed_things("paced")

    assert released() == 1  # the first release is part of creating the job
    lead = SwitchedLead()

    async def scenario() -> tuple[int, int, int]:
        stepped = asyncio.Event()
        scheduler = Scheduler(engine, clock, lambda events: stepped.set(), leadership=lead)
        scheduler.start()
        try:
            clock.advance(61)  # the second release is due
            scheduler.wake()
            for _ in range(20):
                await asyncio.sleep(0)
            before = released()
            lead.win()
            await asyncio.wait_for(stepped.wait(), 10)
            return before, released(), lead.nudges
        finally:
            await scheduler.close()

    before, after, nudges = asyncio.run(scenario())
    assert before == 1  # due, but not this worker's to release
    assert nudges == 1  # its wake went to the leader instead
    assert after == 2
    assert lead.closed
