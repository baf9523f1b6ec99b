"""A scripted fake device, for tests and the fleet simulator.

It is a real device as far as the service can tell: a real
:class:`AsyncJobsClient` and :class:`JobRunner` on a real MQTT connection. Only
the work is scripted: each job follows a list of steps such as
``[Progress({"percent": "50"}), Sleep(0.1), Succeed()]``::

    async with FakeDevice("thing-1", "mqtt://127.0.0.1:1883", [Fail({"reason": "disk full"})]) as device:
        await device.wait_for_reports(1)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .async_client import AsyncJobsClient
from .connection import Backoff, Endpoint
from .job import Job, JobRejected, Outcome
from .runner import JobReport, JobRunner

__all__ = [
    "Accept",
    "Disconnect",
    "Fail",
    "FakeDevice",
    "Hang",
    "Progress",
    "Reject",
    "Script",
    "Sleep",
    "Step",
    "Succeed",
    "run_script",
]


@dataclass(frozen=True)
class Accept:
    """Marks the start of the work; the runner has already moved the job to IN_PROGRESS."""


@dataclass(frozen=True)
class Progress:
    """Report progress: these details become the execution's statusDetails."""

    details: dict[str, str]


@dataclass(frozen=True)
class Sleep:
    """Work for a while (cut short if the service cancels the job)."""

    seconds: float


@dataclass(frozen=True)
class Succeed:
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fail:
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reject:
    reason: str = "rejected by the fake device"


@dataclass(frozen=True)
class Hang:
    """Never finish: only a cancel or a timeout from the service ends the job."""


@dataclass(frozen=True)
class Disconnect:
    """Drop the connection as a network failure would, stay offline, then carry on."""

    offline_for: float = 1.0


Step = Accept | Progress | Sleep | Succeed | Fail | Reject | Hang | Disconnect
Script = Sequence[Step] | Callable[[Job], Sequence[Step]]


async def run_script(job: Job, steps: Sequence[Step], client: AsyncJobsClient) -> Outcome:
    """Play ``steps`` for ``job``; a script that ends without a verdict succeeds."""
    for step in steps:
        if isinstance(step, Progress):
            job.progress(step.details)
        elif isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Succeed):
            return Outcome("SUCCEEDED", dict(step.details))
        elif isinstance(step, Fail):
            return Outcome("FAILED", dict(step.details))
        elif isinstance(step, Reject):
            raise JobRejected(step.reason)
        elif isinstance(step, Hang):
            await asyncio.Event().wait()
        elif isinstance(step, Disconnect):
            await client.drop_connection(step.offline_for)
    return Outcome("SUCCEEDED")


class FakeDevice:
    """A virtual device that runs every job by ``script`` (a list of steps, or a function of the job)."""

    def __init__(
        self,
        thing_name: str,
        endpoint: str | Endpoint,
        script: Script = (Succeed(),),
        *,
        request_timeout: float = 10.0,
        backoff: Backoff | None = None,
        recheck_interval: float = 60.0,
        **client_options: Any,
    ) -> None:
        self.client = AsyncJobsClient(
            thing_name, endpoint, request_timeout=request_timeout, backoff=backoff, **client_options
        )
        self.script = script
        self._report_arrived = asyncio.Event()
        self.runner = JobRunner(
            self.client,
            default_handler=self._play,
            recheck_interval=recheck_interval,
            on_report=lambda _report: self._report_arrived.set(),
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def reports(self) -> list[JobReport]:
        return list(self.runner.reports)

    async def __aenter__(self) -> FakeDevice:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        self.client.start()
        self._task = asyncio.ensure_future(self.runner.run())

    async def close(self) -> None:
        """Stop at once (a job in hand stays IN_PROGRESS) and disconnect."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.client.close()

    async def wait_for_reports(self, count: int, timeout: float = 10.0) -> list[JobReport]:  # noqa: ASYNC109
        """Wait until at least ``count`` jobs have ended on this device; returns the reports."""
        async with asyncio.timeout(timeout):
            while len(self.runner.reports) < count:
                self._report_arrived.clear()
                await self._report_arrived.wait()
        return self.reports

    async def _play(self, job: Job) -> Outcome:
        steps = self.script(job) if callable(self.script) else self.script
        return await run_script(job, steps, self.client)
