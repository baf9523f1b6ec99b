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
import time
from collections import Counter
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
    "Reboot",
    "Reject",
    "Script",
    "Sleep",
    "StaleVersion",
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


@dataclass(frozen=True)
class Reboot:
    """Lose power mid-job: no report, connection dropped, back after ``offline_for`` seconds.

    The restarted device finds the job IN_PROGRESS and runs it again; on that
    second run this step is skipped, so the script goes on past it.
    """

    offline_for: float = 1.0


@dataclass(frozen=True)
class StaleVersion:
    """Forget the latest version number, as a device that missed a reply would.

    The next report then carries a stale ``expectedVersion``; the runner must
    recover from the VersionMismatch.
    """


Step = Accept | Progress | Sleep | Succeed | Fail | Reject | Hang | Disconnect | Reboot | StaleVersion
Script = Sequence[Step] | Callable[[Job], Sequence[Step]]


async def run_script(job: Job, steps: Sequence[Step], device: FakeDevice) -> Outcome:
    """Play ``steps`` for ``job`` on ``device``; a script that ends without a verdict succeeds."""
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
            await device.client.drop_connection(step.offline_for)
        elif isinstance(step, StaleVersion):
            job.version_number = max(1, job.version_number - 1)
        elif isinstance(step, Reboot) and device.runs[job.job_id] == 1:
            device.reboot(step.offline_for)
            await asyncio.Event().wait()  # the reboot cancels this handler
    return Outcome("SUCCEEDED")


class FakeDevice:
    """A virtual device that runs every job by ``script`` (a list of steps, or a function of the job).

    ``on_report(device, report)`` is called as each job ends on it.

    Besides the runner's reports it records, per job id, when the device first
    heard of the job (``first_seen``), when its handler last started
    (``started``) and how many times it ran (``runs``), in ``time.time()`` seconds.
    """

    def __init__(
        self,
        thing_name: str,
        endpoint: str | Endpoint,
        script: Script = (Succeed(),),
        *,
        request_timeout: float = 10.0,
        backoff: Backoff | None = None,
        recheck_interval: float = 60.0,
        on_report: Callable[[FakeDevice, JobReport], None] | None = None,
        **client_options: Any,
    ) -> None:
        self._on_report = on_report
        self._client_args: dict[str, Any] = dict(
            thing_name=thing_name,
            endpoint=endpoint,
            request_timeout=request_timeout,
            backoff=backoff,
            **client_options,
        )
        self.script = script
        self.recheck_interval = recheck_interval
        self.reports: list[JobReport] = []
        self.first_seen: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.runs: Counter[str] = Counter()
        self._report_arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rebooting: asyncio.Task[None] | None = None
        self.client, self.runner = self._build()

    def _build(self) -> tuple[AsyncJobsClient, JobRunner]:
        args = dict(self._client_args)
        client = AsyncJobsClient(args.pop("thing_name"), args.pop("endpoint"), **args)
        client.on_next_changed(lambda event: self._seen(event.execution.job_id if event.execution else None))
        client.on_resync(lambda pending: self._seen(*pending.job_ids))
        runner = JobRunner(
            client,
            default_handler=self._play,
            recheck_interval=self.recheck_interval,
            on_report=self._reported,
        )
        return client, runner

    @property
    def thing_name(self) -> str:
        return self.client.thing_name

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
        if self._rebooting is not None:
            self._rebooting.cancel()
            await asyncio.gather(self._rebooting, return_exceptions=True)
        await self._stop()

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.client.close()

    def reboot(self, offline_for: float) -> None:
        """Power-cycle: stop runner and connection at once, start afresh after ``offline_for``."""
        self._rebooting = asyncio.ensure_future(self._reboot(offline_for))

    async def _reboot(self, offline_for: float) -> None:
        await self.client.drop_connection(offline_for)
        await self._stop()
        await asyncio.sleep(offline_for)
        self.client, self.runner = self._build()
        await self.start()

    async def wait_for_reports(self, count: int, timeout: float = 10.0) -> list[JobReport]:  # noqa: ASYNC109
        """Wait until at least ``count`` jobs have ended on this device; returns the reports."""
        async with asyncio.timeout(timeout):
            while len(self.reports) < count:
                self._report_arrived.clear()
                await self._report_arrived.wait()
        return list(self.reports)

    def _seen(self, *job_ids: str | None) -> None:
        now = time.time()
        for job_id in job_ids:
            if job_id is not None:
                self.first_seen.setdefault(job_id, now)

    def _reported(self, report: JobReport) -> None:
        self.reports.append(report)
        self._report_arrived.set()
        if self._on_report is not None:
            self._on_report(self, report)

    async def _play(self, job: Job) -> Outcome:
        self._seen(job.job_id)
        self.runs[job.job_id] += 1
        self.started[job.job_id] = time.time()
        steps = self.script(job) if callable(self.script) else self.script
        return await run_script(job, steps, self)
