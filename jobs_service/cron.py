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

__all__ = [
    "MAX_EXPRESSION",
    "MAX_ZONE_NAME",
    "ON_TIME",
    "Cron",
    "CronError",
    "FirePlan",
    "Misfire",
    "fire_label",
    "plan_fires",
]

Misfire = Literal["skip", "run-once"]

# While the service is up, a fire runs if the scheduler reaches it less than this
# late (service seconds): a scheduler busy with other work is that late at most.
# A fire any later could not run at its time (the process was stopped or starved)
# and is a misfire, like one that fell due while the service was down.
ON_TIME = 60.0
# Longer expressions and zone names are refused before croniter or zoneinfo read them.
MAX_EXPRESSION = 200
MAX_ZONE_NAME = 64


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message names it."""


@dataclass(frozen=True)
class Cron:
    """A validated cron expression in a time zone."""

    expression: str
    timezone: str = "UTC"

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> Cron:
        if len(expression) > MAX_EXPRESSION:
            raise CronError(
                f"cron expression {expression[:40]!r}... is longer than {MAX_EXPRESSION} characters"
            )
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
        return self._step(moment, forward=True)

    def previous_before(self, moment: float) -> float:
        """The last fire time strictly before ``moment``."""
        return self._step(moment, forward=False)

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

    def latest_fires(self, after: float, until: float, limit: int) -> list[float]:
        """The latest ``limit`` fire times in (``after``, ``until``], oldest first.

        Walks back from ``until``, so a long span (a week of a per-second
        schedule) costs ``limit`` steps, not one per fire.
        """
        fires: list[float] = []
        moment = until
        if after < until and self._is_fire(until):
            fires.append(until)
        while len(fires) < limit:
            moment = self.previous_before(moment)
            if moment <= after:
                break
            fires.append(moment)
        return fires[::-1]

    def _step(self, moment: float, *, forward: bool) -> float:
        zone = _zone(self.timezone)
        start = datetime.fromtimestamp(moment, zone)
        schedule = croniter(_for_croniter(self.expression.split()), start)
        fixed_hours = _fixed_hours(self.expression.split())
        while True:
            fire: datetime = schedule.get_next(datetime) if forward else schedule.get_prev(datetime)
            if not (fixed_hours and _repeated_wall_time(fire, zone)):
                return fire.timestamp()

    def _is_fire(self, moment: float) -> bool:
        return self.next_after(self.previous_before(moment)) == moment


@dataclass(frozen=True)
class FirePlan:
    """What to do with the fires a schedule has not handled yet, oldest first."""

    run: tuple[float, ...] = ()
    skipped: tuple[float, ...] = ()  # misfires to record, the latest of them only


def plan_fires(
    cron: Cron, handled_until: float, now: float, *, up_since: float, misfire: Misfire, keep: int = 100
) -> FirePlan:
    """Sort the fires in (``handled_until``, ``now``] into those that run and those skipped.

    A fire is a *misfire* when the service could not run it at its time: it fell
    due while the service was down (at or before ``up_since``, when this run of
    the service began), or it is :data:`ON_TIME` or more late now. Every other
    fire runs, each once, oldest first, however busy the scheduler was. Misfires
    never run under ``skip``; under ``run-once`` the latest one runs as the single
    catch-up, unless a fire on time runs now anyway. At most ``keep`` misfires
    (the latest) are returned to be recorded.
    """
    cutoff = min(now, max(up_since, now - ON_TIME))
    on_time = cron.fires_between(max(handled_until, cutoff), now)
    missed = cron.latest_fires(handled_until, cutoff, keep) if handled_until < cutoff else []
    if misfire == "run-once" and missed and not on_time:
        return FirePlan(run=(missed[-1],), skipped=tuple(missed[:-1]))
    return FirePlan(run=tuple(on_time), skipped=tuple(missed))


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
    if len(name) > MAX_ZONE_NAME:
        raise CronError(f"time zone {name[:40]!r}... is longer than {MAX_ZONE_NAME} characters")
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
