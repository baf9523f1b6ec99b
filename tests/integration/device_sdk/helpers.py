"""Shared pieces for the device SDK integration tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..clients import Inbox


def endpoint(server) -> str:
    return f"mqtt://{server.mqtt_host}:{server.mqtt_port}"


def make_thing(iot, name: str) -> str:
    """Register the thing ``name`` (the broker admits registered things only); returns its ARN."""
    return iot.create_thing(thingName=name)["thingArn"]


def create_job(iot, job_id: str, arn: str, document: dict[str, Any] | None = None, **extra: Any) -> str:
    iot.create_job(
        jobId=job_id, targets=[arn], document=json.dumps(document or {"operation": "noop"}), **extra
    )
    return job_id


def execution(iot, job_id: str, thing: str) -> dict[str, Any]:
    return iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]


def details(record: dict[str, Any]) -> dict[str, str]:
    return record.get("statusDetails", {}).get("detailsMap", {})


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = ""):
    """Poll ``predicate`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout}s (last: {last!r})")
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], Any],
    timeout: float = 10.0,  # noqa: ASYNC109
    interval: float = 0.05,
    what: str = "",
):
    """:func:`wait_until` for async code; ``predicate`` is a short blocking call run in a thread."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = await asyncio.to_thread(predicate)
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


def status_is(iot, job_id: str, thing: str, *statuses: str) -> Callable[[], dict[str, Any] | None]:
    """A predicate: the execution record once its status is one of ``statuses``."""

    def check() -> dict[str, Any] | None:
        record = execution(iot, job_id, thing)
        return record if record["status"] in statuses else None

    return check


def free_port() -> int:
    """A loopback port nothing listens on (bound once by the OS, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_handler(directory: Path, name: str, body: str) -> Path:
    """An executable ``#!/bin/sh`` script ``name`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


class DeviceProcess:
    """``iotjobs device`` as a subprocess; its output (stdout and stderr) lines land in ``output``."""

    def __init__(self, *args: str) -> None:
        self.output = Inbox()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "iot_jobs_bridge.jobs_service.cli", "device", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.put(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.output.items)

    def wait_for_line(self, *fragments: str, timeout: float = 10.0) -> str:
        """The first output line containing every fragment."""
        return self.output.wait_for(lambda line: all(f in line for f in fragments), timeout)

    def wait(self, timeout: float = 10.0) -> int:
        """The exit code once the process ends by itself; fails (and kills it) after ``timeout``."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"iotjobs device still running after {timeout}s:\n{self.text}") from None
        self._reader.join(5)
        return code

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)

    def close(self) -> None:
        self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
