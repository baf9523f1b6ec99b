"""What a handler sees of the job it runs, and what it hands back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .process import ProcessResult, run_process

__all__ = ["Job", "JobRejected", "Outcome"]


class JobRejected(Exception):
    """Raise from a handler to end the job REJECTED (the device will not do it); the message is the reason."""


@dataclass(frozen=True)
class Outcome:
    """How a handler's job ended; returning ``None`` from a handler means SUCCEEDED with no details."""

    status: Literal["SUCCEEDED", "FAILED", "REJECTED"]
    details: dict[str, str] = field(default_factory=dict)

    @classmethod
    def succeeded(cls, **details: str) -> Outcome:
        return cls("SUCCEEDED", details)

    @classmethod
    def failed(cls, reason: str, **details: str) -> Outcome:
        return cls("FAILED", {"reason": reason, **details})


class Job:
    """One job execution being run by a handler.

    ``cancelled`` is set when the service ends the execution (canceled, timed out,
    removed): a handler that loops should check it; processes started with
    :meth:`run` are killed by the runner then. :meth:`progress` may be called from
    any thread and never blocks: the runner sends the latest details as an
    IN_PROGRESS update, dropping ones overtaken before they could be sent.
    """

    def __init__(
        self,
        *,
        thing_name: str,
        job_id: str,
        execution_number: int,
        version_number: int,
        document: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
        kill_grace: float = 5.0,
    ) -> None:
        self.thing_name = thing_name
        self.job_id = job_id
        self.execution_number = execution_number
        self.version_number = version_number
        self.document = document
        self.cancelled = threading.Event()
        self._loop = loop
        self._kill_grace = kill_grace
        self._progress: dict[str, str] | None = None
        self._progress_ready = asyncio.Event()
        # Set by the runner: called on the first progress, so a job that reports none costs no sender.
        self._on_first_progress: Callable[[], None] | None = None
        self._processes: set[asyncio.Task[ProcessResult]] = set()

    @property
    def environment(self) -> dict[str, str]:
        """Variables every process of this job gets, besides the agent's own environment."""
        return {
            "IOTJOBS_THING_NAME": self.thing_name,
            "IOTJOBS_JOB_ID": self.job_id,
            "IOTJOBS_EXECUTION_NUMBER": str(self.execution_number),
        }

    def progress(self, details: Mapping[str, str]) -> None:
        """Report progress (replaces the execution's statusDetails); safe from any thread."""
        snapshot = dict(details)
        if _on_loop(self._loop):
            self._set_progress(snapshot)
        else:
            self._loop.call_soon_threadsafe(self._set_progress, snapshot)

    def _set_progress(self, details: dict[str, str]) -> None:
        self._progress = details
        self._progress_ready.set()
        first, self._on_first_progress = self._on_first_progress, None
        if first is not None:
            first()

    def _take_progress(self) -> dict[str, str] | None:
        details, self._progress = self._progress, None
        self._progress_ready.clear()
        return details

    async def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> ProcessResult:
        """Run a process for this job (no shell); it is killed if the job is cancelled."""
        task = asyncio.ensure_future(run_process(argv, env=env, cwd=cwd, kill_grace=self._kill_grace))
        self._processes.add(task)
        try:
            return await task
        finally:
            self._processes.discard(task)

    def run_blocking(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> ProcessResult:
        """:meth:`run` for handlers that are plain functions (they run on a worker thread)."""
        if _on_loop(self._loop):
            raise RuntimeError("run_blocking is for plain-function handlers; async handlers await run()")
        return asyncio.run_coroutine_threadsafe(self.run(argv, env=env, cwd=cwd), self._loop).result()

    async def _kill_processes(self) -> None:
        tasks = list(self._processes)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
