"""Behaviour profiles: what share of the fleet does what, and what each should end as."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from iot_jobs_bridge.device_sdk.job import Job
from iot_jobs_bridge.device_sdk.testing import (
    Disconnect,
    Fail,
    Hang,
    Progress,
    Reboot,
    Reject,
    Sleep,
    StaleVersion,
    Step,
    Succeed,
)

__all__ = ["PROFILES", "Behaviour", "assign", "parse_mix"]


@dataclass(frozen=True)
class Behaviour:
    """Timing knobs shared by the profiles."""

    slow_median: float = 2.0  # seconds of work for "slow" devices (log-normal around this)
    offline_for: float = 3.0  # seconds a device stays away (offline, disconnect, reboot)


@dataclass(frozen=True)
class Profile:
    """One kind of device: its script, the status it must end in, how often its handler runs."""

    name: str
    expected_status: str
    expected_runs: int
    description: str
    script: Callable[[Job, Behaviour, random.Random], Sequence[Step]]
    starts_offline: bool = False


def _slow(_job: Job, behaviour: Behaviour, rng: random.Random) -> Sequence[Step]:
    seconds = rng.lognormvariate(math.log(behaviour.slow_median), 0.5)
    return [Progress({"phase": "working"}), Sleep(seconds), Succeed()]


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("succeed", "SUCCEEDED", 1, "runs the job and succeeds", lambda *_: [Succeed()]),
        Profile("fail", "FAILED", 1, "runs the job and fails", lambda *_: [Fail({"reason": "simulated"})]),
        Profile("reject", "REJECTED", 1, "rejects the job", lambda *_: [Reject("simulated rejection")]),
        Profile("timeout", "TIMED_OUT", 1, "starts the job and never reports", lambda *_: [Hang()]),
        Profile("slow", "SUCCEEDED", 1, "works for a log-normal while, then succeeds", _slow),
        Profile(
            "offline",
            "SUCCEEDED",
            1,
            "is offline when the job is created, connects later and runs it",
            lambda *_: [Succeed()],
            starts_offline=True,
        ),
        Profile(
            "disconnect",
            "SUCCEEDED",
            1,
            "loses its connection mid-job, reconnects and finishes",
            lambda _j, b, _r: [Progress({"phase": "downloading"}), Disconnect(b.offline_for), Succeed()],
        ),
        Profile(
            "reboot",
            "SUCCEEDED",
            2,
            "reboots mid-job before reporting, then runs the job again",
            lambda _j, b, _r: [Progress({"phase": "installing"}), Reboot(b.offline_for), Succeed()],
        ),
        Profile(
            "stale",
            "SUCCEEDED",
            1,
            "reports with a stale expectedVersion after a reconnect, and recovers",
            lambda *_: [Progress({"phase": "verifying"}), StaleVersion(), Disconnect(0.2), Succeed()],
        ),
    )
}


def parse_mix(text: str) -> dict[str, float]:
    """``"succeed=70,fail=10,timeout=20"`` → shares in percent; a bare name means 100.

    Raises ``ValueError`` naming an unknown profile, a bad number, or shares not adding up to 100.
    """
    shares: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in PROFILES:
            raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
        try:
            share = float(value) if value else 100.0
        except ValueError as exc:
            raise ValueError(f"profile {name!r} needs a percentage, not {value!r}") from exc
        if share < 0 or not math.isfinite(share):
            raise ValueError(f"profile {name!r} needs a percentage between 0 and 100")
        shares[name] = shares.get(name, 0.0) + share
    if not shares:
        raise ValueError("give at least one profile, e.g. succeed=90,fail=10")
    if abs(sum(shares.values()) - 100.0) > 1e-6:
        raise ValueError(f"profile shares add up to {sum(shares.values()):g}%, not 100%")
    return shares


def assign(count: int, shares: dict[str, float], seed: int = 0) -> list[str]:
    """A profile for each of ``count`` devices: exact shares (largest remainder), shuffled by ``seed``."""
    exact = {name: count * share / 100.0 for name, share in shares.items()}
    counts = {name: math.floor(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: (exact[name] - counts[name], name), reverse=True)
    for name in by_remainder[: count - sum(counts.values())]:
        counts[name] += 1
    names = [name for name in shares for _ in range(counts[name])]
    random.Random(seed).shuffle(names)
    return names
