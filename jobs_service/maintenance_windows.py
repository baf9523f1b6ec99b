"""Recurring maintenance windows: a cron expression for each start, and a duration.

Two spellings of the start are accepted (decisions.md D31), both in UTC:

* AWS style, as EventBridge and Systems Manager write it:
  ``cron(minutes hours day-of-month month day-of-week year)``, with ``?``
  allowed in a day field and ``*`` or a year list in the last field;
* plain five-field cron: ``minutes hours day-of-month month day-of-week``.

Windows are evaluated with croniter.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from croniter import croniter

from .errors import InvalidRequest

__all__ = ["Window", "next_open", "open_window", "parse_windows", "upcoming_starts"]

_AWS_CRON = re.compile(r"cron\((?P<body>[^()]*)\)")
_YEAR = re.compile(r"\*|\d{4}(?:-\d{4})?(?:,\d{4}(?:-\d{4})?)*")
# How far ahead to look for a window start before giving up (a year of minutes is plenty).
_HORIZON_DAYS = 2 * 366


@dataclass(frozen=True)
class Window:
    """One recurring window: starts where ``cron`` matches and lasts ``duration_minutes``."""

    expression: str
    cron: str
    years: str
    duration_minutes: int

    def _year_ok(self, moment: dt.datetime) -> bool:
        if self.years == "*":
            return True
        for part in self.years.split(","):
            low, _, high = part.partition("-")
            if int(low) <= moment.year <= int(high or low):
                return True
        return False

    def starts_after(self, now: float) -> float | None:
        """The first start strictly after ``now``, or None within the horizon."""
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        limit = moment + dt.timedelta(days=_HORIZON_DAYS)
        schedule = croniter(self.cron, moment)
        while True:
            start: dt.datetime = schedule.get_next(dt.datetime)
            if start > limit:
                return None
            if self._year_ok(start):
                return start.timestamp()

    def open_at(self, now: float) -> float | None:
        """The start of the window open at ``now`` (start ≤ now < end), or None."""
        moment = dt.datetime.fromtimestamp(now, dt.UTC) + dt.timedelta(microseconds=1)
        schedule = croniter(self.cron, moment)
        # Walk back over the starts that could still be open.
        while True:
            start: dt.datetime = schedule.get_prev(dt.datetime)
            if start.timestamp() + self.duration_minutes * 60 <= now:
                return None
            if self._year_ok(start):
                return start.timestamp()

    def end_of(self, start: float) -> float:
        return start + self.duration_minutes * 60.0


def parse_windows(windows: Iterable[dict[str, object]]) -> list[Window]:
    """Parse ``maintenanceWindows``; an expression croniter cannot read is InvalidRequest."""
    return [_parse(str(w["startTime"]), int(str(w["durationInMinutes"]))) for w in windows]


def _parse(expression: str, duration: int) -> Window:
    text = expression.strip()
    aws = _AWS_CRON.fullmatch(text)
    fields = (aws["body"] if aws else text).split()
    years = "*"
    if aws:
        if len(fields) != 6:
            raise InvalidRequest(f"Maintenance window {expression!r} needs six fields inside cron(...)")
        years = fields.pop()
        if _YEAR.fullmatch(years) is None:
            raise InvalidRequest(f"Maintenance window {expression!r} has an unsupported year field {years!r}")
    elif len(fields) != 5:
        raise InvalidRequest(
            f"Maintenance window {expression!r} is not cron(min hour dom month dow year) or a five-field cron"
        )
    cron = " ".join(fields)
    if not croniter.is_valid(cron):
        raise InvalidRequest(f"Maintenance window {expression!r} is not a valid cron expression")
    return Window(expression, cron, years, duration)


def open_window(windows: list[Window], now: float) -> tuple[float, float] | None:
    """The (start, end) of a window open at ``now``, the one ending last; None when all are shut."""
    best: tuple[float, float] | None = None
    for window in windows:
        start = window.open_at(now)
        if start is not None and (best is None or window.end_of(start) > best[1]):
            best = (start, window.end_of(start))
    return best


def next_open(windows: list[Window], now: float) -> float | None:
    """When the next window opens after ``now`` (None if none within the horizon)."""
    starts = [s for s in (w.starts_after(now) for w in windows) if s is not None]
    return min(starts) if starts else None


def upcoming_starts(windows: list[Window], now: float, count: int = 7) -> list[float]:
    """The next ``count`` window starts after ``now``, across all windows (``scheduledJobRollouts``)."""
    found: list[float] = []
    cursor = now
    while len(found) < count:
        start = next_open(windows, cursor)
        if start is None:
            break
        found.append(start)
        cursor = start
    return found
