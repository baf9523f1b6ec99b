"""Cron expressions for recurring schedules: fire times in a time zone, and what is due now.

Pure functions of time (epoch seconds), no clock of their own. Expressions have
5 fields (minute hour day month weekday) or 6 with seconds first. Local time
follows the zone's rules: a fire that falls in the hour skipped when clocks go
forward runs at the first instant after it; when clocks go back, a schedule
with fixed hours fires a repeated wall-clock time once (the first time), while
one with a wildcard or step hour keeps firing every real hour, as cron does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

__all__ = ["Cron", "CronError", "Misfire", "due_fire", "fire_label"]

Misfire = Literal["skip", "run-once"]

# How late a fire may still run under the "skip" misfire policy (scheduler lateness, not downtime).
ON_TIME = 60.0


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message names it."""


@dataclass(frozen=True)
class Cron:
    """A validated cron expression in a time zone."""

    expression: str
    timezone: str = "UTC"

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> Cron:
        fields = expression.split()
        if len(fields) not in (5, 6):
            raise CronError(
                f"cron expression {expression!r} has {len(fields)} fields; use 5, or 6 with seconds first"
            )
        if not croniter.is_valid(_for_croniter(fields)):
            raise CronError(f"cron expression {expression!r} is not valid")
        _zone(timezone)
        return cls(" ".join(fields), timezone)

    def next_after(self, moment: float) -> float:
        """The first fire time strictly after ``moment``."""
        zone = _zone(self.timezone)
        start = datetime.fromtimestamp(moment, zone)
        schedule = croniter(_for_croniter(self.expression.split()), start)
        fixed_hours = _fixed_hours(self.expression.split())
        while True:
            fire: datetime = schedule.get_next(datetime)
            if not (fixed_hours and _repeated_wall_time(fire, zone)):
                return fire.timestamp()

    def fires_between(self, after: float, until: float, limit: int = 1000) -> list[float]:
        """Fire times in (``after``, ``until``], at most ``limit`` of them (the earliest)."""
        fires: list[float] = []
        moment = after
        while len(fires) < limit:
            moment = self.next_after(moment)
            if moment > until:
                break
            fires.append(moment)
        return fires


def due_fire(cron: Cron, last: float, now: float, misfire: Misfire) -> tuple[float | None, int]:
    """The one fire to run at ``now`` given the last one handled, and how many fires are skipped.

    Only the latest fire in (``last``, ``now``] can run, never a burst: under
    ``skip`` only if it is on time (at most a minute late); under ``run-once``
    even if it is late, as the single catch-up run after downtime.
    """
    latest: float | None = None
    missed = 0
    moment = last
    while True:
        moment = cron.next_after(moment)
        if moment > now:
            break
        if latest is not None:
            missed += 1
        latest = moment
    if latest is None:
        return None, 0
    if misfire == "skip" and now - latest > ON_TIME:
        return None, missed + 1
    return latest, missed


def fire_label(fire: float) -> str:
    """A fire time in compact UTC, as used in job ids: ``20261121T020000Z``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(fire))


def _for_croniter(fields: list[str]) -> str:
    # croniter wants seconds last; ours come first, as in Quartz and most schedulers.
    return " ".join(fields[1:] + fields[:1]) if len(fields) == 6 else " ".join(fields)


def _fixed_hours(fields: list[str]) -> bool:
    hours = fields[2] if len(fields) == 6 else fields[1]
    return all(c.isdigit() or c in ",-" for c in hours)


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {name!r}") from exc


def _repeated_wall_time(moment: datetime, zone: tzinfo) -> bool:
    """Whether ``moment`` is the second occurrence of an ambiguous local time (clocks went back)."""
    wall = moment.replace(tzinfo=None)
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    ambiguous = first.utcoffset() != second.utcoffset()
    return ambiguous and moment.utcoffset() == second.utcoffset()
