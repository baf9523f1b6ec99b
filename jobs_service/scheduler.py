"""The task that runs the engine's timers: it sleeps until the next thing is due, then ticks.

Anything that may change what is due (a new job, a started execution, a new,
changed or enabled schedule, a restart) calls :meth:`Scheduler.wake`, so the
task never sleeps past a new deadline. All waiting goes through the injected clock, so
``IOTJOBS_TIME_SCALE`` speeds it up with everything else.

Among workers sharing a store, only the leader (:mod:`.leadership`) runs the
timers; on the others :meth:`Scheduler.wake` nudges the leader instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from .clock import Clock
from .domain_events import DomainEvent
from .engine import JobsEngine
from .leadership import Leadership, SoleLeader
from .schedules import Schedules

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)

# Look again at least this often (virtual seconds) even when nothing seems due.
IDLE_RECHECK = 60.0


class Scheduler:
    def __init__(
        self,
        engine: JobsEngine,
        clock: Clock,
        announce: Callable[[list[DomainEvent]], None],
        schedules: Schedules | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        self._engine = engine
        self._leadership: Leadership = leadership or SoleLeader()
        self._schedules = schedules
        self._clock = clock
        self._announce = announce
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="scheduler")
        self._leadership.start(self._look_again, self._look_again)

    @property
    def leading(self) -> bool:
        """Whether this process runs the timers."""
        return self._leadership.leading

    def wake(self) -> None:
        """Something may be due sooner: look at the timers again now (or have the leader
        look); safe to call from any thread."""
        if self._leadership.leading:
            self._look_again()
        else:
            self._leadership.nudge()

    def _look_again(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._leadership.close)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            # A worker that does not lead waits to be woken by gaining the lead.
            due = self._step() if self._leadership.leading else None
            wait = IDLE_RECHECK if due is None else max(0.0, due - self._clock.now())
            sleeper = asyncio.create_task(self._clock.sleep(wait))
            waker = asyncio.create_task(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waker):
                    task.cancel()
                await asyncio.gather(sleeper, waker, return_exceptions=True)

    def _step(self) -> float | None:
        """Run what is due; returns when to look again (None: nothing is waiting).

        The engine's timers and the schedules fail apart: a bug or a store error
        in one is logged and looked at again after ``IDLE_RECHECK``, never in a
        tight loop, while the other keeps its own deadlines.
        """
        dues: list[float | None] = []
        try:
            outcome = self._engine.rollout.tick()
            self._announce(outcome.events)
            dues.append(self._engine.rollout.next_due())
        except Exception:
            log.exception("The engine's timers failed; looking again in %.0f s", IDLE_RECHECK)
            dues.append(self._clock.now() + IDLE_RECHECK)
        if self._schedules is not None:
            try:
                self._announce(self._schedules.fire_due())
                dues.append(self._schedules.next_due())
            except Exception:
                log.exception("The schedules could not be fired; looking again in %.0f s", IDLE_RECHECK)
                dues.append(self._clock.now() + IDLE_RECHECK)
        return min((due for due in dues if due is not None), default=None)
