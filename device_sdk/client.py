"""The blocking jobs client: :class:`AsyncJobsClient` run on a private event-loop thread.

Every method blocks until its reply (or timeout); listeners run one at a time on
a separate thread, so a listener may itself call the client without stalling
the connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .async_client import AsyncJobsClient
from .connection import Backoff, Endpoint, TlsOptions
from .errors import ClientClosed
from .models import JobExecution, JobExecutionsChanged, NextJobExecutionChanged, PendingJobs, UpdateResult

__all__ = ["JobsClient"]

_log = logging.getLogger("iot_jobs_bridge.device_sdk.client")

T = TypeVar("T")


class JobsClient:
    """A device's jobs client for blocking code::

        with JobsClient("my-thing", "mqtt://127.0.0.1:1883") as jobs:
            execution = jobs.start_next()
            if execution is not None:
                jobs.update(execution.job_id, "SUCCEEDED", expected_version=execution.version_number)

    The arguments are those of :class:`AsyncJobsClient`.
    """

    def __init__(
        self,
        thing_name: str,
        endpoint: str | Endpoint,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: TlsOptions | None = None,
        keepalive: int = 60,
        request_timeout: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._async = AsyncJobsClient(
            thing_name,
            endpoint,
            client_id=client_id,
            username=username,
            password=password,
            tls=tls,
            keepalive=keepalive,
            request_timeout=request_timeout,
            backoff=backoff,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"jobs-{thing_name}", daemon=True)
        self._listeners = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"jobs-{thing_name}-listener")
        self._started = False
        self._closed = False

    @property
    def thing_name(self) -> str:
        return self._async.thing_name

    @property
    def connected(self) -> bool:
        return self._async.connected

    def __enter__(self) -> JobsClient:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self, timeout: float | None = None) -> JobsClient:
        """Start connecting; with ``timeout``, also wait that long for the connection."""
        if not self._started:
            self._started = True
            self._thread.start()
            self._run(self._start())
        if timeout is not None:
            self._run(self._async.wait_connected(timeout))
        return self

    async def _start(self) -> None:
        self._async.start()

    async def _shutdown(self) -> None:
        await self._async.close()
        # Let calls from other threads see their ClientClosed before the loop stops.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if others:
            _done, stuck = await asyncio.wait(others, timeout=5.0)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)

    def close(self) -> None:
        """Disconnect, stop the loop thread and the listener thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()
        self._listeners.shutdown(wait=True)

    def drop_connection(self, offline_for: float = 0.0) -> None:
        """Cut the connection as a network failure would (see :meth:`AsyncJobsClient.drop_connection`)."""
        self._run(self._async.drop_connection(offline_for))

    # -- requests ------------------------------------------------------------

    def get_pending(self, *, timeout: float | None = None) -> PendingJobs:
        return self._run(self._async.get_pending(timeout=timeout))

    def start_next(
        self,
        *,
        status_details: dict[str, str] | None = None,
        step_timeout_minutes: int | None = None,
        timeout: float | None = None,
    ) -> JobExecution | None:
        return self._run(
            self._async.start_next(
                status_details=status_details, step_timeout_minutes=step_timeout_minutes, timeout=timeout
            )
        )

    def describe(
        self,
        job_id: str = "$next",
        *,
        execution_number: int | None = None,
        include_document: bool = True,
        timeout: float | None = None,
    ) -> JobExecution | None:
        return self._run(
            self._async.describe(
                job_id, execution_number=execution_number, include_document=include_document, timeout=timeout
            )
        )

    def update(
        self,
        job_id: str,
        status: str,
        *,
        status_details: dict[str, str] | None = None,
        expected_version: int | None = None,
        execution_number: int | None = None,
        step_timeout_minutes: int | None = None,
        include_state: bool = True,
        include_document: bool = False,
        timeout: float | None = None,
    ) -> UpdateResult:
        return self._run(
            self._async.update(
                job_id,
                status,
                status_details=status_details,
                expected_version=expected_version,
                execution_number=execution_number,
                step_timeout_minutes=step_timeout_minutes,
                include_state=include_state,
                include_document=include_document,
                timeout=timeout,
            )
        )

    # -- listeners (run on the listener thread) ------------------------------

    def on_next_changed(self, listener: Callable[[NextJobExecutionChanged], None]) -> Callable[[], None]:
        return self._async.on_next_changed(self._on_listener_thread(listener))

    def on_jobs_changed(self, listener: Callable[[JobExecutionsChanged], None]) -> Callable[[], None]:
        return self._async.on_jobs_changed(self._on_listener_thread(listener))

    def on_resync(self, listener: Callable[[PendingJobs], None]) -> Callable[[], None]:
        return self._async.on_resync(self._on_listener_thread(listener))

    def on_connection_change(self, listener: Callable[[bool], None]) -> Callable[[], None]:
        return self._async.on_connection_change(self._on_listener_thread(listener))

    def _on_listener_thread(self, listener: Callable[[T], None]) -> Callable[[T], None]:
        def call(event: T) -> None:
            try:
                listener(event)
            except Exception:
                _log.exception("%s: a jobs listener failed on %r", self.thing_name, event)

        def submit(event: T) -> None:
            if not self._closed:
                self._listeners.submit(call, event)

        return submit

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise ClientClosed(f"the jobs client of {self.thing_name} is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("JobsClient methods cannot be called from its own event loop thread")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        # Poll rather than block: a call that raced with close() would wait on a stopped loop forever.
        while not future.done():
            concurrent.futures.wait([future], timeout=0.5)
            if not future.done() and not self._thread.is_alive():
                future.cancel()
                raise ClientClosed(f"the jobs client of {self.thing_name} closed")
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ClientClosed(f"the jobs client of {self.thing_name} closed") from None
