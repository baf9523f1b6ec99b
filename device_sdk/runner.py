"""The job runner: takes the next job, runs its handler, reports how it ended.

One job at a time, head of the pending list first (the order AWS defines). The
runner looks again whenever ``notify-next`` arrives, after every reconnect, and
every ``recheck_interval`` seconds. While a handler runs, the runner watches for
the service ending the execution (cancel, timeout, removal): the handler task is
cancelled, its processes killed, and nothing is reported for it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .async_client import AsyncJobsClient
from .document_handler import DocumentHandler
from .errors import ClientClosed, RequestRejected, RequestTimedOut
from .job import Job, JobRejected, Outcome
from .models import JobExecution, JobExecutionsChanged, NextJobExecutionChanged, PendingJobs
from .status_details import fit, head

__all__ = ["Handler", "JobReport", "JobRunner"]

_log = logging.getLogger("iot_jobs_bridge.device_sdk.runner")

# Rejections meaning the execution is over: the service ended it, or it is gone.
_ENDED_CODES = frozenset({"InvalidStateTransition", "TerminalStateReached", "ResourceNotFound"})

Handler = Callable[[Job], Awaitable[Outcome | None] | Outcome | None]


@dataclass(frozen=True)
class JobReport:
    """How one job ended on this device.

    ``reported`` is true when this runner set ``status``; false when the service
    ended the execution first: ``status`` is then what the service says (e.g.
    CANCELED), or ``ENDED`` when it said only that the execution is terminal.
    """

    job_id: str
    execution_number: int
    status: str
    details: dict[str, str] = field(default_factory=dict)
    reported: bool = True


@dataclass(frozen=True)
class _Registration:
    handler: Handler
    step_timeout_minutes: int | None


class JobRunner:
    """Runs jobs for one thing through an :class:`AsyncJobsClient`.

    Python handlers are registered by operation (the document's ``operation``
    field) and may be ``async def`` or plain functions (run on a worker thread).
    Documents in the AWS IoT Device Client formats run with the built-in handler
    (executables from ``handlers_dir``, and ``runCommand`` unless switched off).
    ``default_handler``, when given, takes every job no registered handler claims.
    Anything else is REJECTED as an unknown operation.
    """

    def __init__(
        self,
        client: AsyncJobsClient,
        *,
        handlers_dir: Path | str | None = None,
        allow_run_command: bool = True,
        kill_grace: float = 5.0,
        recheck_interval: float = 60.0,
        on_report: Callable[[JobReport], None] | None = None,
        default_handler: Handler | None = None,
    ) -> None:
        self.client = client
        self.documents = DocumentHandler(
            Path(handlers_dir) if handlers_dir is not None else None, allow_run_command=allow_run_command
        )
        self.kill_grace = kill_grace
        self.recheck_interval = recheck_interval
        self.reports: deque[JobReport] = deque(maxlen=1000)
        self._on_report = on_report
        self._handlers: dict[str, _Registration] = {}
        self._default = default_handler
        self._wake = asyncio.Event()
        self._stopping = False
        self._current: Job | None = None
        self._work: asyncio.Task[Outcome | None] | None = None
        self._checks: set[asyncio.Task[None]] = set()
        self._recheck: asyncio.TimerHandle | None = None
        self._recheck_at: float | None = None  # while waiting: when the periodic look is due

    # -- handlers ------------------------------------------------------------

    def register(self, operation: str, handler: Handler, *, step_timeout_minutes: int | None = None) -> None:
        """Run ``handler`` for documents whose ``operation`` is ``operation``.

        With ``step_timeout_minutes`` the job is started with that step timeout, so
        the service times it out if the handler hangs.
        """
        if step_timeout_minutes is not None and not 1 <= step_timeout_minutes <= 10080:
            raise ValueError("step_timeout_minutes must be between 1 and 10080")
        self._handlers[operation] = _Registration(handler, step_timeout_minutes)

    def handler(
        self, operation: str, *, step_timeout_minutes: int | None = None
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def decorate(handler: Handler) -> Handler:
            self.register(operation, handler, step_timeout_minutes=step_timeout_minutes)
            return handler

        return decorate

    # -- the loop ------------------------------------------------------------

    async def run(self) -> None:
        """Run jobs until :meth:`stop` is called or the task is cancelled.

        Cancelling kills a running handler's processes and leaves its execution
        IN_PROGRESS; the next start of the runner runs it again from the beginning.
        """
        removers = [
            self.client.on_next_changed(self._on_next_changed),
            self.client.on_resync(self._on_resync),
        ]
        self._stopping = False
        self._wake.set()
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping:
                # The recheck is due recheck_interval after the wait begins. One timer
                # serves many waits: it moves itself on when the due time moved.
                self._recheck_at = loop.time() + self.recheck_interval
                if self._recheck is None:
                    self._recheck = loop.call_at(self._recheck_at, self._recheck_due)
                await self._wake.wait()
                self._recheck_at = None
                self._wake.clear()
                if not self._stopping:
                    await self._run_pending()
        finally:
            if self._recheck is not None:
                self._recheck.cancel()
                self._recheck = None
            self._recheck_at = None
            for remove in removers:
                remove()
            for check in list(self._checks):
                check.cancel()

    def _recheck_due(self) -> None:
        self._recheck = None
        due = self._recheck_at
        if due is None:
            return  # not waiting: the next wait arms the timer again
        loop = asyncio.get_running_loop()
        if loop.time() >= due:
            self._wake.set()
        else:
            self._recheck = loop.call_at(due, self._recheck_due)

    def stop(self) -> None:
        """Stop after the job in hand (if any) has been run and reported."""
        self._stopping = True
        self._wake.set()

    async def _run_pending(self) -> None:
        tried: tuple[str, int, int] | None = None
        while not self._stopping:
            try:
                execution = await self.client.describe("$next")
            except (RequestTimedOut, RequestRejected) as exc:
                _log.warning("%s: cannot look for the next job: %s", self.client.thing_name, exc)
                return
            if execution is None:
                return
            seen = (execution.job_id, execution.execution_number, execution.version_number)
            if seen == tried:
                # Nothing moved since the last attempt; wait for news instead of spinning.
                return
            tried = seen
            await self._execute(execution)

    async def _execute(self, execution: JobExecution) -> None:
        job = Job(
            thing_name=self.client.thing_name,
            job_id=execution.job_id,
            execution_number=execution.execution_number,
            version_number=execution.version_number,
            document=execution.job_document or {},
            loop=asyncio.get_running_loop(),
            kill_grace=self.kill_grace,
        )
        try:
            handler, step_timeout = self._resolve(job.document)
        except JobRejected as exc:
            _log.info("%s: job %s rejected: %s", job.thing_name, job.job_id, exc)
            await self._finish(job, Outcome("REJECTED", {"reason": head(str(exc))}))
            return
        if not await self._start(job, execution.status, step_timeout):
            return
        if _log.isEnabledFor(logging.INFO):
            _log.info("%s: job %s started (%s)", job.thing_name, job.job_id, _describe(job.document))
        lock = asyncio.Lock()
        pump: asyncio.Task[None] | None = None

        def start_pump() -> None:
            nonlocal pump
            pump = asyncio.ensure_future(self._pump_progress(job, lock))

        job._on_first_progress = start_pump
        # notify matters only while a job runs (it may show the service ended it); the
        # client reads no notify that nobody listens to.
        stop_listening = self.client.on_jobs_changed(self._on_jobs_changed)
        self._current = job
        self._work = asyncio.ensure_future(_invoke_checked(handler, job))
        try:
            await _ended(self._work)
        finally:
            if not self._work.done():  # the runner itself is being cancelled
                job.cancelled.set()
                self._work.cancel()
                await job._kill_processes()
            self._current = None
            job._on_first_progress = None
            stop_listening()
            if pump is not None:
                async with lock:
                    pump.cancel()
        if job.cancelled.is_set():
            await job._kill_processes()
            return
        outcome = _outcome_of(self._work)
        async with lock:
            await self._finish(job, outcome)

    def _resolve(self, document: dict[str, Any]) -> tuple[Callable[[Job], Awaitable[Any]], int | None]:
        operation = document.get("operation")
        if isinstance(operation, str) and operation in self._handlers:
            registration = self._handlers[operation]
            return _as_coroutine(registration.handler), registration.step_timeout_minutes
        if self._default is not None:
            return _as_coroutine(self._default), None
        prepared = self.documents.prepare(document)
        if prepared is not None:
            return functools.partial(self.documents.run, prepared=prepared), None
        if isinstance(operation, str):
            raise JobRejected(f"unknown operation {operation!r}")
        raise JobRejected("the job document names no operation this device runs")

    async def _start(self, job: Job, status: str, step_timeout: int | None) -> bool:
        if status == "IN_PROGRESS" and step_timeout is None:
            return True  # left running by an earlier run of this agent: run it again
        try:
            result = await self.client.update(
                job.job_id,
                "IN_PROGRESS",
                expected_version=job.version_number,
                execution_number=job.execution_number,
                step_timeout_minutes=step_timeout,
            )
        except (RequestRejected, RequestTimedOut) as exc:
            _log.info("%s: job %s could not be started: %s", job.thing_name, job.job_id, exc)
            return False
        job.version_number = _next_version(result.execution_state, job.version_number)
        return True

    # -- reporting -----------------------------------------------------------

    async def _pump_progress(self, job: Job, lock: asyncio.Lock) -> None:
        while True:
            await job._progress_ready.wait()
            async with lock:
                details = job._take_progress()
                if details is not None and not job.cancelled.is_set():
                    await self._send(job, "IN_PROGRESS", fit(details), final=False)

    async def _finish(self, job: Job, outcome: Outcome) -> None:
        details = fit(outcome.details)
        if await self._send(job, outcome.status, details, final=True):
            if _log.isEnabledFor(logging.INFO):
                _log.info("%s: job %s %s %s", job.thing_name, job.job_id, outcome.status, _summary(details))
            self._record(JobReport(job.job_id, job.execution_number, outcome.status, details))

    async def _send(self, job: Job, status: str, details: dict[str, str], *, final: bool) -> bool:
        """Send one update for ``job``; a final one is retried until the service answers."""
        while True:
            try:
                result = await self.client.update(
                    job.job_id,
                    status,
                    status_details=details,
                    expected_version=job.version_number,
                    execution_number=job.execution_number,
                )
            except RequestTimedOut as exc:
                if not final:
                    return False  # progress is best effort; the next report replaces it
                _log.warning("%s: job %s: %s; trying again", job.thing_name, job.job_id, exc)
                continue
            except ClientClosed:
                return False
            except RequestRejected as exc:
                state = exc.execution_state
                if exc.code == "VersionMismatch" and state is not None and not state.is_terminal:
                    job.version_number = state.version_number  # our own earlier report moved it
                    continue
                if final and exc.retryable:
                    continue
                if exc.code in _ENDED_CODES or (state is not None and state.is_terminal):
                    self._ended_by_service(job, _ended_status(exc), str(exc))
                else:
                    _log.error(
                        "%s: job %s: the service refused %s: %s", job.thing_name, job.job_id, status, exc
                    )
                return False
            job.version_number = _next_version(result.execution_state, job.version_number)
            return True

    def _record(self, report: JobReport) -> None:
        self.reports.append(report)
        if self._on_report is not None:
            try:
                self._on_report(report)
            except Exception:
                _log.exception("%s: the report callback failed", self.client.thing_name)

    # -- noticing that the service ended the job -----------------------------

    def _on_next_changed(self, _event: NextJobExecutionChanged) -> None:
        self._wake.set()

    def _on_resync(self, pending: PendingJobs) -> None:
        self._check_current(pending.job_ids)
        self._wake.set()

    def _on_jobs_changed(self, event: JobExecutionsChanged) -> None:
        self._check_current(event.job_ids)

    def _check_current(self, pending_ids: tuple[str, ...]) -> None:
        job = self._current
        if job is not None and job.job_id not in pending_ids and not job.cancelled.is_set():
            task = asyncio.ensure_future(self._confirm_ended(job))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _confirm_ended(self, job: Job) -> None:
        """Ask the service whether ``job`` ended (a notification alone may be stale)."""
        try:
            execution = await self.client.describe(
                job.job_id, execution_number=job.execution_number, include_document=False
            )
        except RequestRejected as exc:
            if exc.code in _ENDED_CODES:
                self._ended_by_service(job, _ended_status(exc), str(exc))
            return
        except (RequestTimedOut, ClientClosed):
            return
        if execution is None or execution.is_terminal:
            status = execution.status if execution is not None else "REMOVED"
            self._ended_by_service(job, status, f"the execution is {status}")

    def _ended_by_service(self, job: Job, status: str, why: str) -> None:
        if job.cancelled.is_set():
            return
        job.cancelled.set()
        _log.warning(
            "%s: job %s ended by the service (%s); stopping its handler", job.thing_name, job.job_id, why
        )
        if self._current is job and self._work is not None:
            self._work.cancel()
        self._record(
            JobReport(job.job_id, job.execution_number, status, {"reason": head(why)}, reported=False)
        )


def _ended_status(exc: RequestRejected) -> str:
    """The status a rejection shows the execution in; ``ENDED`` when it says only "terminal"."""
    if exc.execution_state is not None:
        return exc.execution_state.status
    return "REMOVED" if exc.code == "ResourceNotFound" else "ENDED"


def _as_coroutine(handler: Handler) -> Callable[[Job], Awaitable[Any]]:
    if inspect.iscoroutinefunction(handler):
        return handler

    async def in_thread(job: Job) -> Any:
        result = await asyncio.to_thread(handler, job)
        return await result if inspect.isawaitable(result) else result

    return in_thread


async def _ended(task: asyncio.Task[Any]) -> None:
    """Wait until ``task`` ends, however it ends; cancelling this wait leaves ``task`` running.

    What ``asyncio.wait([task])`` does, for half its cost: it runs once per job.
    """
    ended: asyncio.Future[None] = task.get_loop().create_future()

    def settle(_task: asyncio.Task[Any]) -> None:
        if not ended.done():  # a cancelled wait leaves its future done
            ended.set_result(None)

    task.add_done_callback(settle)
    await ended


async def _invoke_checked(handler: Callable[[Job], Awaitable[Any]], job: Job) -> Outcome | None:
    result = await handler(job)
    if result is not None and not isinstance(result, Outcome):
        raise TypeError(f"a handler returns an Outcome or None, not {type(result).__name__}")
    return result


def _outcome_of(work: asyncio.Task[Outcome | None]) -> Outcome:
    error = work.exception()
    if isinstance(error, JobRejected):
        return Outcome("REJECTED", {"reason": head(str(error))})
    if error is not None:
        _log.error("handler failed", exc_info=error)
        return Outcome.failed(head(f"{type(error).__name__}: {error}"))
    return work.result() or Outcome("SUCCEEDED")


def _next_version(state: Any, current: int) -> int:
    return int(state.version_number) if state is not None else current + 1


def _describe(document: dict[str, Any]) -> str:
    operation = document.get("operation")
    if isinstance(operation, str):
        return f"operation {operation}"
    steps = document.get("steps")
    return f"{len(steps)} steps" if isinstance(steps, list) else "no operation"


def _summary(details: dict[str, str]) -> str:
    shown = {k: v for k, v in details.items() if k in ("reason", "exitCode", "step")}
    return " ".join(f"{k}={v!r}" for k, v in shown.items())
