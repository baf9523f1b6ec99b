"""Shared helpers for the rollout suite: a server on a scaled clock, the service's time seen
from here, a monitor of releases, and official-SDK devices whose notifications carry arrival times.

With ``IOTJOBS_TIME_SCALE=N`` one service minute lasts ``60/N`` real seconds. Times
reported by the service (``createdAt``, ``queuedAt``, ...) are on that scaled clock;
times measured here are ``time.monotonic()``. :class:`ServiceClock` maps the
second onto the first, with the uncertainty of the request that anchored it, so a
check can say "no earlier than" and "no later than" without guessing.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..clients import Inbox, subscribe, v2_jobs_client
from ..conftest import Server, start_server
from ..device_plane._support import V2Device, admin_client, group_arn, thing_arn

__all__ = [
    "MINUTE",
    "NotifyNextMonitor",
    "Release",
    "ServiceClock",
    "arns",
    "busiest_minute",
    "kill",
    "minute_string",
    "next_job",
    "next_minute",
    "notify_next_monitor",
    "sdk_device",
    "sdk_devices",
    "service_clock",
    "start_scaled_server",
    "timed_create_job",
    "wait_for",
    "watch_events",
]

MINUTE = 60.0


# -- a server on a scaled clock ---------------------------------------------------------


def start_scaled_server(
    data_dir: Path, scale: float, extra_args: tuple[str, ...] = (), timeout: float = 30.0
) -> Server:
    """``iotjobs serve`` on ephemeral ports with ``IOTJOBS_TIME_SCALE=scale``, as ``start_server`` does."""
    return start_server(
        data_dir, extra_args=list(extra_args), extra_env={"IOTJOBS_TIME_SCALE": str(scale)}, timeout=timeout
    )


def kill(server: Server) -> None:
    """SIGKILL: the process gets no chance to finish anything."""
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    if server.reader is not None:
        server.reader.join(5)
    if server.process.stdout is not None:
        server.process.stdout.close()


# -- the service's clock, seen from here --------------------------------------------------


@dataclass(frozen=True)
class ServiceClock:
    """The service time ``at`` was read by a request sent at ``sent`` and answered at ``received``
    (both ``time.monotonic()``); the service clock runs ``scale`` times as fast."""

    scale: float
    at: float
    sent: float
    received: float

    def earliest(self, mono: float) -> float:
        """The earliest the service clock can have shown at monotonic time ``mono``."""
        return self.at + (mono - self.received) * self.scale

    def latest(self, mono: float) -> float:
        """The latest the service clock can have shown at monotonic time ``mono``."""
        return self.at + (mono - self.sent) * self.scale

    def now(self) -> tuple[float, float]:
        """(earliest, latest) the service clock can show now."""
        mono = time.monotonic()
        return self.earliest(mono), self.latest(mono)

    def sleep_until(self, service_time: float) -> None:
        """Sleep until the service clock has surely passed ``service_time``."""
        wait = (service_time - self.earliest(time.monotonic())) / self.scale
        if wait > 0:
            time.sleep(wait)


def timed_create_job(iot, scale: float, job_id: str, **request: Any) -> ServiceClock:
    """CreateJob, anchoring a :class:`ServiceClock` on the job's ``createdAt``."""
    sent = time.monotonic()
    iot.create_job(jobId=job_id, **request)
    received = time.monotonic()
    created = iot.describe_job(jobId=job_id)["job"]["createdAt"].timestamp()
    return ServiceClock(scale, created, sent, received)


def service_clock(iot, scale: float, name: str) -> ServiceClock:
    """The service clock, read from the ``createdAt`` of a job over an empty group (complete at once)."""
    iot.create_thing_group(thingGroupName=name)
    return timed_create_job(iot, scale, name, document="{}", targets=[group_arn(name)])


def minute_string(timestamp: float) -> str:
    """``YYYY-MM-DDTHH:MM`` in UTC, the format of schedule times and ``scheduledJobRollouts``."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M")


def next_minute(timestamp: float) -> float:
    """The first whole minute at or after ``timestamp``."""
    return math.ceil(timestamp / MINUTE) * MINUTE


def busiest_minute(release_times: list[float], slack: float) -> int:
    """The most releases (service times) in any service minute.

    Releases planned exactly ``60/rate`` apart are each stamped a little after
    their slot (by however late the scheduler ran), which can squeeze one
    extra release into a sliding window of a full minute; windows ``slack``
    service seconds shorter do not count those.
    """
    window = MINUTE - slack
    return max(sum(1 for other in release_times if at <= other < at + window) for at in release_times)


def wait_for(check, timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``check`` until it returns something truthy; return that, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s (last: {value!r})")
        time.sleep(interval)


# -- releases, as the things see them ------------------------------------------------------

_NOTIFY_NEXT = re.compile(r"\$aws/things/(?P<thing>[^/]+)/jobs/notify-next")


@dataclass(frozen=True)
class Release:
    """A notify-next announcing an execution, with the monotonic time it arrived here."""

    mono: float
    thing: str
    execution: dict[str, Any]


class NotifyNextMonitor:
    """An admin client subscribed to every thing's notify-next; keeps each message with its arrival time."""

    def __init__(self, client) -> None:
        self.client = client
        self.inbox = Inbox()  # (monotonic, thing, payload)
        client.on_message = self._on_message

    def _on_message(self, _client, _userdata, message) -> None:
        match = _NOTIFY_NEXT.fullmatch(message.topic)
        if match is not None:
            self.inbox.put((time.monotonic(), match["thing"], json.loads(message.payload)))

    def releases(self, job_id: str) -> list[Release]:
        """The first notification naming ``job_id`` for each thing, in arrival order."""
        first: dict[str, Release] = {}
        for mono, thing, payload in list(self.inbox.items):
            execution = payload.get("execution")
            if execution and execution["jobId"] == job_id and thing not in first:
                first[thing] = Release(mono, thing, execution)
        return sorted(first.values(), key=lambda release: release.mono)

    def wait_releases(self, job_id: str, count: int, timeout: float = 10.0) -> list[Release]:
        self.inbox.wait_for(lambda _item: len(self.releases(job_id)) >= count, timeout)
        return self.releases(job_id)


@contextmanager
def notify_next_monitor(server, client_id: str) -> Iterator[NotifyNextMonitor]:
    with admin_client(server, client_id) as client:
        monitor = NotifyNextMonitor(client)
        assert not subscribe(client, "$aws/things/+/jobs/notify-next")[0].is_failure
        yield monitor


@contextmanager
def watch_events(server, client_id: str, job_id: str) -> Iterator[Inbox]:
    """An admin client on the job and execution events of ``job_id``; items are (topic, payload)."""
    with admin_client(server, client_id) as client:
        for topic in (f"$aws/events/job/{job_id}/#", f"$aws/events/jobExecution/{job_id}/#"):
            assert not subscribe(client, topic)[0].is_failure
        yield client.inbox


# -- the official SDK -------------------------------------------------------------------------


@contextmanager
def sdk_device(server, thing: str) -> Iterator[V2Device]:
    """An ``IotJobsClientV2`` device for ``thing`` with both streams established.

    Unlike ``device_plane._support.v2_device``, stream events are kept as
    ``(time.monotonic(), event)`` so a test can tell when each one arrived.
    """
    next_events, list_events = Inbox(), Inbox()
    with v2_jobs_client(
        server.mqtt_host,
        server.mqtt_port,
        thing,
        lambda event: next_events.put((time.monotonic(), event)),
        lambda event: list_events.put((time.monotonic(), event)),
    ) as client:
        yield V2Device(thing, client, next_events, list_events)


@contextmanager
def sdk_devices(server, iot, names: list[str]) -> Iterator[list[V2Device]]:
    """Register ``names`` and connect each as an SDK device."""
    with ExitStack() as stack:
        devices = []
        for name in names:
            iot.create_thing(thingName=name)
            devices.append(stack.enter_context(sdk_device(server, name)))
        yield devices


def next_job(device: V2Device, job_id: str, timeout: float = 10.0, status: str = "QUEUED", number: int = 1):
    """Wait for a notify-next announcing execution ``number`` of ``job_id`` in ``status``;
    returns (monotonic arrival time, execution)."""

    def announces(item) -> bool:
        execution = item[1].execution
        if execution is None:
            return False
        return (execution.job_id, execution.status, execution.execution_number) == (job_id, status, number)

    mono, event = device.next_events.wait_for(announces, timeout)
    return mono, event.execution


def arns(names: list[str]) -> list[str]:
    """Thing ARNs, in the order given (the order a paced job releases them in is not relied on)."""
    return [thing_arn(name) for name in names]
