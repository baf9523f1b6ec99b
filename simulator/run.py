"""The simulator's controller: register the fleet, start workers, run a job, report.

It is a client of the service like any operator and any fleet: signed AWS IoT
rest-json calls to the HTTP control plane (``control_plane.py``), MQTT through
the broker. It never imports the service.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import queue
import resource
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .control_plane import ControlPlane, ControlPlaneError
from .profiles import PROFILES, Behaviour, assign
from .report import Latency, Report
from .worker import DeviceResult, WorkerSpec, run_worker

__all__ = ["Progress", "SimulationConfig", "SimulationError", "simulate"]

_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "REMOVED", "CANCELED"}


class SimulationError(Exception):
    """The simulation could not run (bad settings, a service that cannot be reached)."""


@dataclass(frozen=True)
class SimulationConfig:
    """Settings of one simulation; see ``iotjobs simulate --help``."""

    mqtt: str
    http: str
    things: int
    # The admin key the control-plane calls are signed with.
    access_key_id: str
    secret_access_key: str
    profiles: dict[str, float] = field(default_factory=lambda: {"succeed": 100.0})
    group: str = "simulated-fleet"
    prefix: str = "sim"
    connect_rate: float | None = None
    workers: int = 0  # 0: one per CPU
    create_job: bool = True
    job_id: str | None = None
    jobs: int = 1  # jobs created at once to the whole fleet (each device runs them in turn)
    document: dict[str, Any] = field(default_factory=lambda: {"operation": "simulate"})
    timeout_minutes: int = 1
    deadline: float = 600.0
    behaviour: Behaviour = field(default_factory=Behaviour)
    seed: int = 0
    region: str = "us-east-1"


@dataclass(frozen=True)
class Progress:
    """A snapshot for a progress display."""

    phase: str
    done: int
    total: int
    elapsed: float


def simulate(config: SimulationConfig, on_progress: Callable[[Progress], None] | None = None) -> Report:
    """Run one simulation end to end and return its report."""
    if config.things < 1:
        raise SimulationError("--things must be at least 1")
    cpu_before = _cpu_seconds()
    with _control_plane(config) as iot:
        report = _simulate(config, iot, on_progress)
    # The workers have been joined by now, so their CPU is counted among the children's.
    report.cpu_seconds = round(_cpu_seconds() - cpu_before, 3)
    executions = sum(report.statuses.values())
    report.cpu_per_execution_ms = round(1000 * report.cpu_seconds / executions, 3) if executions else 0.0
    return report


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its children that have ended."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _simulate(
    config: SimulationConfig, iot: ControlPlane, on_progress: Callable[[Progress], None] | None
) -> Report:
    names = [f"{config.prefix}-{n:05d}" for n in range(config.things)]
    profiles = dict(zip(names, assign(config.things, config.profiles, config.seed), strict=True))
    group_arn = _register(iot, config.group, names)
    workers = _Workers(config, profiles)
    try:
        online = sum(1 for p in profiles.values() if not PROFILES[p].starts_offline)
        began = time.time()
        workers.wait_connected(online, began, config.deadline, on_progress)
        connect_seconds = time.time() - began
        created = time.time()
        job_ids: list[str] = []
        if config.create_job:
            base = config.job_id or f"{config.prefix}-job-{int(created * 1000)}"
            job_ids = [base] if config.jobs == 1 else [f"{base}-{k}" for k in range(config.jobs)]
            for job_id in job_ids:
                _create_job(iot, job_id, group_arn, config, profiles)
        workers.go()
        expected = config.things * max(1, len(job_ids))
        results = workers.collect(
            expected,
            created,
            config.deadline,
            on_progress,
            lambda: bool(job_ids) and _jobs_over(iot, job_ids),
        )
    finally:
        workers.stop()
    if job_ids:
        truth = {
            key: status for job_id in job_ids for key, status in _final_statuses(iot, job_id, names).items()
        }
    else:
        truth = {(r.thing, r.job_id): r.status for r in results}
    return _report(config, profiles, job_ids, connect_seconds, online, created, results, truth)


def _control_plane(config: SimulationConfig) -> ControlPlane:
    return ControlPlane(
        config.http,
        region=config.region,
        access_key_id=config.access_key_id,
        secret_access_key=config.secret_access_key,
    )


def _register(iot: ControlPlane, group: str, names: list[str]) -> str:
    """Create the things and the group (reusing any that exist); returns the group's ARN."""
    try:
        iot.create_thing_group(group)
    except ControlPlaneError as exc:
        if exc.code != "ResourceAlreadyExistsException":
            raise SimulationError(f"cannot create thing group {group}: {exc}") from exc

    def register(name: str) -> None:
        try:
            iot.create_thing(name)
        except ControlPlaneError as exc:
            if exc.code != "ResourceAlreadyExistsException":
                raise
        iot.add_thing_to_thing_group(group, name)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(register, names))
    arn: str = iot.describe_thing_group(group)["thingGroupArn"]
    return arn


def _create_job(
    iot: ControlPlane, job_id: str, group_arn: str, config: SimulationConfig, profiles: dict[str, str]
) -> None:
    body: dict[str, Any] = {"targets": [group_arn], "document": json.dumps(config.document)}
    if any(p == "timeout" for p in profiles.values()):
        body["timeoutConfig"] = {"inProgressTimeoutInMinutes": config.timeout_minutes}
    iot.create_job(job_id, body)


def _jobs_over(iot: ControlPlane, job_ids: list[str]) -> bool:
    """Whether every execution of the jobs has ended (a device may never hear that its job did)."""
    return all(iot.describe_job(job_id)["job"]["status"] in ("COMPLETED", "CANCELED") for job_id in job_ids)


def _final_statuses(iot: ControlPlane, job_id: str, names: list[str]) -> dict[tuple[str, str], str]:
    """The service's own word on each thing's execution of ``job_id``."""
    statuses: dict[str, str] = {}
    for summary in iot.job_executions(job_id):
        thing = summary["thingArn"].rsplit("/", 1)[-1]
        statuses[thing] = summary["jobExecutionSummary"]["status"]
    return {(name, job_id): statuses.get(name, "MISSING") for name in names}


def _report(
    config: SimulationConfig,
    profiles: dict[str, str],
    job_ids: list[str],
    connect_seconds: float,
    online: int,
    created: float,
    results: list[DeviceResult],
    truth: dict[tuple[str, str], str],
) -> Report:
    """Compare what devices saw and what the service says with what the profiles predict."""
    mine = [r for r in results if not job_ids or r.job_id in job_ids]
    reports = Counter((r.thing, r.job_id) for r in mine if r.reported)
    runs = {(r.thing, r.job_id): r.runs for r in mine}

    def label(key: tuple[str, str]) -> str:
        return key[0] if len(job_ids) <= 1 else f"{key[0]}:{key[1]}"

    duplicated = sorted(
        label(key)
        for key in truth
        if reports[key] > 1 or runs.get(key, 0) > PROFILES[profiles[key[0]]].expected_runs
    )
    lost = sorted(label(key) for key, status in truth.items() if status not in _TERMINAL)
    mismatched = sorted(
        label(key)
        for key, status in truth.items()
        if status in _TERMINAL and status != PROFILES[profiles[key[0]]].expected_status
    )
    start = created if job_ids else min((r.first_seen or r.ended for r in mine), default=created)
    seconds = max((r.ended for r in mine), default=start) - start
    finished = len({(r.thing, r.job_id) for r in mine})
    per_thing = max(1, len(job_ids))
    return Report(
        things=config.things,
        job_id=job_ids[0] if job_ids else None,
        jobs=len(job_ids),
        connect_seconds=round(connect_seconds, 3),
        connections_per_second=round(online / connect_seconds, 1) if connect_seconds > 0 else 0.0,
        seconds=round(seconds, 3),
        executions_per_second=round(finished / seconds, 1) if seconds > 0 else 0.0,
        notify_to_start=Latency.of(
            [r.started - r.first_seen for r in mine if r.started is not None and r.first_seen is not None]
        ),
        start_to_terminal=Latency.of([r.ended - r.started for r in mine if r.started is not None]),
        notify_to_terminal=Latency.of([r.ended - r.first_seen for r in mine if r.first_seen is not None]),
        statuses=dict(Counter(truth.values())),
        expected_statuses={
            status: n * per_thing
            for status, n in Counter(PROFILES[p].expected_status for p in profiles.values()).items()
        },
        mismatched=mismatched,
        lost=lost,
        duplicated=duplicated,
        profiles=dict(Counter(profiles.values())),
    )


class _Workers:
    """The worker processes and the queues to them."""

    def __init__(self, config: SimulationConfig, profiles: dict[str, str]) -> None:
        count = min(config.workers or os.cpu_count() or 1, len(profiles))
        # Forked, not spawned: a spawned worker spends ~0.4 s of CPU importing the device SDK
        # again, which shows in a small run's CPU per execution. Safe here: the registration
        # threads have ended and no queue has started its feeder thread yet.
        context = multiprocessing.get_context("fork")
        self.events: Any = context.Queue()
        self.commands: list[Any] = [context.Queue() for _ in range(count)]
        things = list(profiles.items())
        rate = config.connect_rate / count if config.connect_rate else None
        self.processes = [
            context.Process(
                target=run_worker,
                args=(
                    WorkerSpec(
                        index=i,
                        endpoint=config.mqtt,
                        things=things[i::count],
                        connect_rate=rate,
                        behaviour=config.behaviour,
                        seed=config.seed,
                    ),
                    self.commands[i],
                    self.events,
                ),
                daemon=True,
                name=f"simulator-worker-{i}",
            )
            for i in range(count)
        ]
        # The controller's objects go to the workers frozen: their garbage collections never
        # walk them, so the pages stay shared instead of being copied on first touch.
        gc.freeze()
        try:
            for process in self.processes:
                process.start()
        finally:
            gc.unfreeze()

    def wait_connected(
        self, online: int, began: float, deadline: float, on_progress: Callable[[Progress], None] | None
    ) -> None:
        connected: dict[int, int] = defaultdict(int)
        while sum(connected.values()) < online:
            event = self._next(began + deadline, "connecting")
            if event[0] == "connected":
                connected[event[1]] = event[2]
                if on_progress is not None:
                    on_progress(Progress("connecting", sum(connected.values()), online, time.time() - began))

    def go(self) -> None:
        for commands in self.commands:
            commands.put(("go",))

    def collect(
        self,
        total: int,
        began: float,
        deadline: float,
        on_progress: Callable[[Progress], None] | None,
        job_over: Callable[[], bool],
    ) -> list[DeviceResult]:
        """Device results until every device reported, the job is over, or the deadline passed."""
        results: list[DeviceResult] = []
        finished: set[tuple[str, str]] = set()
        until = began + deadline
        next_check = time.time() + 1.0
        while len(finished) < total:
            if time.time() >= next_check:
                next_check = time.time() + 1.0
                if job_over():
                    # A device that was away when its execution ended never hears of it;
                    # wait a moment for the others' last reports, then stop.
                    until = min(until, time.time() + 2.0)
            try:
                event = self._next(until, "running")
            except SimulationError:
                break  # whatever has not ended by now is reported lost
            if event[0] == "done":
                batch: list[DeviceResult] = event[2]
                results.extend(batch)
                finished.update((result.thing, result.job_id) for result in batch)
                if on_progress is not None:
                    on_progress(Progress("running", len(finished), total, time.time() - began))
        return results

    def stop(self) -> None:
        for commands in self.commands:
            commands.put(("stop",))
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()

    def _next(self, until: float, phase: str) -> tuple[Any, ...]:
        while True:
            remaining = until - time.time()
            if remaining <= 0:
                raise SimulationError(f"the deadline passed while {phase}")
            try:
                event: tuple[Any, ...] = self.events.get(timeout=min(remaining, 1.0))
                return event
            except queue.Empty:
                if not any(p.is_alive() for p in self.processes):
                    raise SimulationError(f"every simulator worker exited while {phase}") from None
