"""The one clock every part of the service reads time from.

Nothing else calls ``time.time()`` or ``asyncio.sleep()`` for job logic: rollout
rates, timeouts and schedules take a :class:`Clock`, so tests can use
:class:`FakeClock` and simulations can run minute-based settings in seconds
with ``IOTJOBS_TIME_SCALE``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "CLOCK_FILE",
    "AnchorKeeper",
    "Clock",
    "FakeClock",
    "SystemClock",
    "resumed_clock",
    "shared_clock",
    "time_scale_from_env",
]

CLOCK_FILE = "clock.json"


class Clock(Protocol):
    """Virtual time in epoch seconds."""

    def now(self) -> float:
        """The current virtual time in epoch seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for ``seconds`` of virtual time."""
        ...


class SystemClock:
    """Wall-clock time, optionally running ``scale`` times faster.

    With ``scale=N`` one virtual minute lasts ``60/N`` real seconds. Virtual
    time starts at the wall time of construction and then advances ``N`` times
    as fast as a monotonic clock, so it never jumps back.
    """

    def __init__(self, scale: float = 1.0, *, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError(f"time scale must be positive, not {scale}")
        self.scale = scale
        self._epoch0 = time.time() if start is None else start
        self._mono0 = time.monotonic()

    def now(self) -> float:
        return self._epoch0 + (time.monotonic() - self._mono0) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)


class FakeClock:
    """A clock that only moves when told to; sleepers wake as time passes them."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, future))
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        self._now += seconds
        due = [entry for entry in self._sleepers if entry[0] <= self._now]
        self._sleepers = [entry for entry in self._sleepers if entry[0] > self._now]
        for _, future in due:
            if not future.done():
                future.set_result(None)


def resumed_clock(data_dir: Path, scale: float) -> SystemClock:
    """A clock that carries on from where the data dir's previous run left it.

    Service time keeps running while the service is down, at the scale it ran
    at, so timers and rollouts that came due meanwhile are due on restart, and
    time never goes back when the scale is above 1 (decisions.md D17).
    """
    path = data_dir / CLOCK_FILE
    wall = time.time()
    start = wall
    if path.exists():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            start = float(saved["service"]) + (wall - float(saved["wall"])) * float(saved["scale"])
        except (ValueError, KeyError, TypeError):
            start = wall  # an unreadable anchor: fall back to the wall clock
    path.write_text(json.dumps({"service": start, "wall": wall, "scale": scale}) + "\n", encoding="utf-8")
    return SystemClock(scale, start=start)


class AnchorKeeper(Protocol):
    """Where the workers sharing a store keep their clock's anchor (the store's ``service_clock``)."""

    def anchor(self) -> Any: ...

    def set_anchor(self, anchor: Any, *, replace: bool) -> Any: ...


def shared_clock(keeper: AnchorKeeper, scale: float) -> SystemClock:
    """The clock every worker of one store agrees on: one anchor, kept in the store.

    The first worker to start sets the anchor; the others, and later starts at the
    same scale, read it, so ``IOTJOBS_TIME_SCALE`` runs the same virtual time on all
    of them (given wall clocks in step, as NTP keeps them). A start at another scale
    moves the anchor to now, so service time never jumps.
    """
    from .store.service_clock import ClockAnchor

    wall = time.time()
    saved = keeper.anchor()
    if saved is None:
        anchor = keeper.set_anchor(ClockAnchor(wall, wall, scale), replace=False)
    elif saved.scale != scale:
        anchor = keeper.set_anchor(
            ClockAnchor(saved.service + (wall - saved.wall) * saved.scale, wall, scale), replace=True
        )
    else:
        anchor = saved
    return SystemClock(anchor.scale, start=anchor.service + (time.time() - anchor.wall) * anchor.scale)


def time_scale_from_env(environ: dict[str, str] | None = None) -> float:
    """Read ``IOTJOBS_TIME_SCALE`` (default 1); a bad value is a clear error."""
    raw = (environ if environ is not None else dict(os.environ)).get("IOTJOBS_TIME_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"IOTJOBS_TIME_SCALE must be a positive number, not {raw!r}") from None
    if scale <= 0:
        raise ValueError(f"IOTJOBS_TIME_SCALE must be a positive number, not {raw!r}")
    return scale
