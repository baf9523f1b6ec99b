"""Live job views: committed changes wake the console pages watching the jobs they touched.

The engine tells :meth:`LiveJobs.observe` what each transaction changed, on the
thread that committed it. Only jobs someone watches cost anything: the check is
a set lookup, and a wake-up is one call onto the event loop. A page's stream
then reads the job again, at most once per :data:`COALESCE` seconds however
many changes arrive, so a rollout of thousands of devices costs each open page
a few reads a second, never one per device.

Workers sharing a PostgreSQL store do not see each other's commits: there, a
stream also reads the job every ``refresh`` seconds while it is open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from ..domain_events import Activity

__all__ = ["COALESCE", "HEARTBEAT", "LiveJobs"]

#: Seconds a stream waits after a change before it reads, to take a burst of changes in one read.
COALESCE = 0.3
#: Seconds of silence after which a stream sends a comment, so proxies and browsers keep it open.
HEARTBEAT = 15.0


class LiveJobs:
    def __init__(self, loop: asyncio.AbstractEventLoop, *, refresh: float | None = None) -> None:
        self._loop = loop
        self._refresh = refresh
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._closed = asyncio.Event()

    def observe(self, activity: Activity) -> None:
        """An engine observer: called on any thread after a commit."""
        watched = self._watchers  # read without a lock: a stale view only costs a late wake-up
        if not watched:
            return
        touched = [job_id for job_id in activity.job_ids if job_id in watched]
        if touched:
            self._loop.call_soon_threadsafe(self._wake, touched)

    def _wake(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            for changed in self._watchers.get(job_id, ()):
                changed.set()

    @contextlib.contextmanager
    def _watching(self, job_id: str) -> Iterator[asyncio.Event]:
        changed = asyncio.Event()
        self._watchers.setdefault(job_id, set()).add(changed)
        try:
            yield changed
        finally:
            watchers = self._watchers[job_id]
            watchers.discard(changed)
            if not watchers:
                del self._watchers[job_id]

    async def stream(self, job_id: str, read: Callable[[], Awaitable[str | None]]) -> AsyncIterator[str]:
        """Server-sent events for one page: ``read()`` at once, then after each change of the job.

        ``read`` returns the event's data (one line of JSON), or None when
        nothing is to be sent (e.g. unchanged since the last read).
        """
        with self._watching(job_id) as changed:
            first = await read()
            if first is not None:
                yield f"event: job\ndata: {first}\n\n"
            while not self._closed.is_set():
                woken = await self._wait(changed)
                if self._closed.is_set():
                    break
                if not woken and self._refresh is None:
                    yield ": still here\n\n"
                    continue
                if woken:
                    await asyncio.sleep(COALESCE)  # let the rest of a burst arrive; read once
                    changed.clear()
                data = await read()
                if data is not None:
                    yield f"event: job\ndata: {data}\n\n"
                elif not woken:
                    yield ": still here\n\n"

    async def _wait(self, changed: asyncio.Event) -> bool:
        """True when woken by a change; False after a quiet heartbeat (or refresh) interval."""
        closing = asyncio.ensure_future(self._closed.wait())
        waking = asyncio.ensure_future(changed.wait())
        try:
            done, _ = await asyncio.wait(
                {closing, waking},
                timeout=self._refresh or HEARTBEAT,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            closing.cancel()
            waking.cancel()
        return waking in done

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self._closed.set()
