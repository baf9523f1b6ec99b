"""One simulator process: a slice of the fleet as FakeDevices on one asyncio loop.

It talks to the controller through two multiprocessing queues: commands in
(``go``, ``stop``) and events out (``connected``, ``done``, ``closed``). Results go out
in batches (``done`` carries a list), at most :data:`FLUSH_INTERVAL` after they happen:
a put per result woke the queue's feeder thread once per execution.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from typing import Any

from iot_jobs_bridge.device_sdk.connection import Backoff
from iot_jobs_bridge.device_sdk.job import Job
from iot_jobs_bridge.device_sdk.runner import JobReport
from iot_jobs_bridge.device_sdk.testing import FakeDevice, Step

from .profiles import PROFILES, Behaviour

__all__ = ["FLUSH_INTERVAL", "DeviceResult", "WorkerSpec", "run_worker"]

#: Seconds a device's result may wait to go to the controller with others.
FLUSH_INTERVAL = 0.05


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker runs: its things (name, profile), where, and how fast to connect."""

    index: int
    endpoint: str
    things: list[tuple[str, str]]
    connect_rate: float | None  # connections per second for this worker; None: as fast as it can
    behaviour: Behaviour = field(default_factory=Behaviour)
    seed: int = 0
    request_timeout: float = 20.0


@dataclass(frozen=True)
class DeviceResult:
    """How a job ended on one device, as that device saw it (times are ``time.time()``)."""

    thing: str
    profile: str
    job_id: str
    status: str
    reported: bool
    first_seen: float | None
    started: float | None
    ended: float
    runs: int


def run_worker(spec: WorkerSpec, commands: Queue[Any], events: Queue[Any]) -> None:
    """Process entry point."""
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_Worker(spec, commands, events).run())


class _Worker:
    def __init__(self, spec: WorkerSpec, commands: Queue[Any], events: Queue[Any]) -> None:
        self.spec = spec
        self.commands = commands
        self.events = events
        self.devices: list[FakeDevice] = []
        self.profiles: dict[str, str] = {}
        self.inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.outbox: list[DeviceResult] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._read_commands, args=(loop,), daemon=True).start()
        rng = random.Random(self.spec.seed * 1_000_003 + self.spec.index)
        for name, profile in self.spec.things:
            self.profiles[name] = profile
            self.devices.append(self._device(name, profile, random.Random(rng.random())))
        online = [d for d in self.devices if not PROFILES[self.profiles[d.thing_name]].starts_offline]
        offline = [d for d in self.devices if PROFILES[self.profiles[d.thing_name]].starts_offline]
        reporter = asyncio.ensure_future(self._report_connections(online))
        await self._start_paced(online)
        # The fleet lives as long as the process: collections need not walk it again and again.
        gc.freeze()
        command = await self.inbox.get()
        reporter.cancel()
        if command[0] == "go":
            await asyncio.sleep(self.spec.behaviour.offline_for)
            await self._start_paced(offline)
            command = await self.inbox.get()
        await asyncio.gather(*(device.close() for device in self.devices), return_exceptions=True)
        self._flush()
        self.events.put(("closed", self.spec.index))

    def _device(self, name: str, profile: str, rng: random.Random) -> FakeDevice:
        behaviour = self.spec.behaviour

        def script(job: Job) -> list[Step]:
            return list(PROFILES[profile].script(job, behaviour, rng))

        return FakeDevice(
            name,
            self.spec.endpoint,
            script,
            request_timeout=self.spec.request_timeout,
            backoff=Backoff(0.5, 10.0),
            recheck_interval=30.0,
            on_report=self._on_report,
        )

    async def _start_paced(self, devices: list[FakeDevice]) -> None:
        interval = 1.0 / self.spec.connect_rate if self.spec.connect_rate else 0.0
        began = time.monotonic()
        for n, device in enumerate(devices):
            await device.start()
            if interval:
                await asyncio.sleep(max(0.0, began + (n + 1) * interval - time.monotonic()))
            elif n % 50 == 49:
                await asyncio.sleep(0)  # let connections progress while more are started

    async def _report_connections(self, devices: list[FakeDevice]) -> None:
        last = -1
        while True:
            connected = sum(1 for d in devices if d.client.connected)
            if connected != last:
                self.events.put(("connected", self.spec.index, connected, time.time()))
                last = connected
            await asyncio.sleep(0.2)

    def _on_report(self, device: FakeDevice, report: JobReport) -> None:
        job_id = report.job_id
        result = DeviceResult(
            thing=device.thing_name,
            profile=self.profiles[device.thing_name],
            job_id=job_id,
            status=report.status,
            reported=report.reported,
            first_seen=device.first_seen.get(job_id),
            started=device.started.get(job_id),
            ended=time.time(),
            runs=device.runs[job_id],
        )
        if not self.outbox:
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self._flush)
        self.outbox.append(result)

    def _flush(self) -> None:
        if self.outbox:
            self.events.put(("done", self.spec.index, self.outbox))
            self.outbox = []

    def _read_commands(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            command = self.commands.get()
            loop.call_soon_threadsafe(self.inbox.put_nowait, command)
            if command[0] == "stop":
                return
