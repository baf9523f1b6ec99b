"""The simulator's controller: register the fleet, start workers, run a job, report.

It is a client of the service like any operator and any fleet: boto3 against
the HTTP control plane, MQTT through the broker. It never imports the service.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .profiles import PROFILES, Behaviour, assign
from .report import Latency, Report
from .worker import DeviceResult, WorkerSpec, run_worker

__all__ = ["Progress", "SimulationConfig", "SimulationError", "simulate"]

_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "REMOVED", "CANCELED"}


class SimulationError(Exception):
    """The simulation could not run (bad settings, missing credentials, unreachable service)."""


@dataclass(frozen=True)
class SimulationConfig:
    """Settings of one simulation; see ``iotjobs simulate --help``."""

    mqtt: str
    http: str
    things: int
    profiles: dict[str, float] = field(default_factory=lambda: {"succeed": 100.0})
    group: str = "simulated-fleet"
    prefix: str = "sim"
    connect_rate: float | None = None
    workers: int = 0  # 0: one per CPU
    create_job: bool = True
    job_id: str | None = None
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
    iot = _control_plane(config)
    names = [f"{config.prefix}-{n:05d}" for n in range(config.things)]
    profiles = dict(zip(names, assign(config.things, config.profiles, config.seed), strict=True))
    group_arn = _register(iot, config.group, names)
    workers = _Workers(config, profiles)
    try:
        online = sum(1 for p in profiles.values() if not PROFILES[p].starts_offline)
        began = time.time()
        workers.wait_connected(online, began, config.deadline, on_progress)
        connect_seconds = time.time() - began
        job_id, created = None, time.time()
        if config.create_job:
            job_id = config.job_id or f"{config.prefix}-job-{int(created * 1000)}"
            _create_job(iot, job_id, group_arn, config, profiles)
            created = time.time()
        workers.go()
        job_over = (lambda: _job_over(iot, job_id)) if job_id else (lambda: False)
        results = workers.collect(config.things, created, config.deadline, on_progress, job_over)
    finally:
        workers.stop()
    truth = _final_statuses(iot, job_id, names) if job_id else {r.thing: r.status for r in _last(results)}
    return _report(config, profiles, job_id, connect_seconds, online, created, results, truth)


def _control_plane(config: SimulationConfig) -> Any:
    key, secret = os.environ.get("IOTJOBS_ACCESS_KEY_ID"), os.environ.get("IOTJOBS_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise SimulationError("set IOTJOBS_ACCESS_KEY_ID and IOTJOBS_SECRET_ACCESS_KEY to the admin key")
    return boto3.client(
        "iot",
        endpoint_url=config.http,
        region_name=config.region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=16),
    )


def _register(iot: Any, group: str, names: list[str]) -> str:
    """Create the things and the group (reusing any that exist); returns the group's ARN."""
    try:
        iot.create_thing_group(thingGroupName=group)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise SimulationError(f"cannot create thing group {group}: {exc}") from exc

    def register(name: str) -> None:
        try:
            iot.create_thing(thingName=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(register, names))
    arn: str = iot.describe_thing_group(thingGroupName=group)["thingGroupArn"]
    return arn


def _create_job(
    iot: Any, job_id: str, group_arn: str, config: SimulationConfig, profiles: dict[str, str]
) -> None:
    extra: dict[str, Any] = {}
    if any(p == "timeout" for p in profiles.values()):
        extra["timeoutConfig"] = {"inProgressTimeoutInMinutes": config.timeout_minutes}
    iot.create_job(jobId=job_id, targets=[group_arn], document=json.dumps(config.document), **extra)


def _job_over(iot: Any, job_id: str) -> bool:
    """Whether every execution of the job has ended (a device may never hear that its job did)."""
    status: str = iot.describe_job(jobId=job_id)["job"]["status"]
    return status in ("COMPLETED", "CANCELED")


def _final_statuses(iot: Any, job_id: str, names: list[str]) -> dict[str, str]:
    """The service's own word on each thing's execution (the latest one per thing)."""
    statuses: dict[str, str] = {}
    for page in iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id):
        for summary in page["executionSummaries"]:
            thing = summary["thingArn"].rsplit("/", 1)[-1]
            statuses[thing] = summary["jobExecutionSummary"]["status"]
    return {name: statuses.get(name, "MISSING") for name in names}


def _last(results: list[DeviceResult]) -> list[DeviceResult]:
    latest: dict[str, DeviceResult] = {}
    for result in results:
        latest[result.thing] = result
    return list(latest.values())


def _report(
    config: SimulationConfig,
    profiles: dict[str, str],
    job_id: str | None,
    connect_seconds: float,
    online: int,
    created: float,
    results: list[DeviceResult],
    truth: dict[str, str],
) -> Report:
    mine = [r for r in results if job_id is None or r.job_id == job_id]
    reports_per_thing = Counter(r.thing for r in mine if r.reported)
    runs = {r.thing: r.runs for r in mine}
    duplicated = sorted(
        thing
        for thing, profile in profiles.items()
        if reports_per_thing[thing] > 1 or runs.get(thing, 0) > PROFILES[profile].expected_runs
    )
    lost = sorted(thing for thing, status in truth.items() if status not in _TERMINAL)
    mismatched = sorted(
        thing
        for thing, status in truth.items()
        if status in _TERMINAL and status != PROFILES[profiles[thing]].expected_status
    )
    ends = [r.ended for r in mine]
    start = created if job_id else min((r.first_seen or r.ended for r in mine), default=created)
    seconds = max(ends, default=start) - start
    finished = len({r.thing for r in mine})
    return Report(
        things=config.things,
        job_id=job_id,
        connect_seconds=round(connect_seconds, 3),
        connections_per_second=round(online / connect_seconds, 1) if connect_seconds > 0 else 0.0,
        seconds=round(seconds, 3),
        executions_per_second=round(finished / seconds, 1) if seconds > 0 else 0.0,
        notify_to_start=Latency.of(
            [r.started - r.first_seen for r in mine if r.started is not None and r.first_seen is not None]
        ),
        start_to_terminal=Latency.of([r.ended - r.started for r in mine if r.started is not None]),
        statuses=dict(Counter(truth.values())),
        expected_statuses=dict(Counter(PROFILES[p].expected_status for p in profiles.values())),
        mismatched=mismatched,
        lost=lost,
        duplicated=duplicated,
        profiles=dict(Counter(profiles.values())),
    )


class _Workers:
    """The worker processes and the queues to them."""

    def __init__(self, config: SimulationConfig, profiles: dict[str, str]) -> None:
        count = min(config.workers or os.cpu_count() or 1, len(profiles))
        context = multiprocessing.get_context("spawn")
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
        for process in self.processes:
            process.start()

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
        finished: set[str] = set()
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
                result: DeviceResult = event[2]
                results.append(result)
                finished.add(result.thing)
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
