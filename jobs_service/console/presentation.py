"""What the console's pages show, worked out from API shapes: statuses in words, bars, pace. Pure."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EXECUTION_STATUSES",
    "Segment",
    "counts_of",
    "label",
    "pace_chart",
    "pretty_json",
    "segments",
    "when",
]

#: Every execution status, in the order bars and tables show them.
EXECUTION_STATUSES = (
    "QUEUED",
    "IN_PROGRESS",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "REJECTED",
    "REMOVED",
    "CANCELED",
)
# jobProcessDetails' member for each status.
_COUNT_MEMBERS = {
    "QUEUED": "numberOfQueuedThings",
    "IN_PROGRESS": "numberOfInProgressThings",
    "SUCCEEDED": "numberOfSucceededThings",
    "FAILED": "numberOfFailedThings",
    "TIMED_OUT": "numberOfTimedOutThings",
    "REJECTED": "numberOfRejectedThings",
    "REMOVED": "numberOfRemovedThings",
    "CANCELED": "numberOfCanceledThings",
}


def label(status: str) -> str:
    """A status in words: ``TIMED_OUT`` is "Timed out"."""
    return status.replace("_", " ").capitalize()


def counts_of(process_details: Mapping[str, Any]) -> dict[str, int]:
    """Things per execution status, from DescribeJob's ``jobProcessDetails``; every status present."""
    return {status: int(process_details.get(member, 0)) for status, member in _COUNT_MEMBERS.items()}


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    start: float  # percent of the bar's width
    width: float

    @property
    def label(self) -> str:
        return label(self.status)


def segments(counts: Mapping[str, int]) -> list[Segment]:
    """The stacked bar: one segment per status with things, widths in percent of all things."""
    total = sum(counts.values())
    if not total:
        return []
    parts, start = [], 0.0
    for status in EXECUTION_STATUSES:
        count = counts.get(status, 0)
        if count:
            width = 100.0 * count / total
            parts.append(Segment(status, count, round(start, 3), round(width, 3)))
            start += width
    return parts


@dataclass(frozen=True)
class PaceChart:
    """Executions released per minute, over the last minutes, against the configured rate."""

    width: int
    height: int
    bars: list[tuple[float, float, float, int, str]]  # x, y, bar width, count, the minute (UTC)
    configured_y: float | None
    configured: float | None
    peak: int
    recent: int  # released in the latest whole minute


def pace_chart(
    per_minute: Sequence[tuple[int, int]],
    *,
    now: float,
    minutes: int = 30,
    configured: float | None = None,
    width: int = 300,
    height: int = 80,
) -> PaceChart:
    """A bar per service minute of the last ``minutes`` (the current one last), scaled to fit."""
    by_minute = dict(per_minute)
    last = int(now) // 60
    window = [(minute, by_minute.get(minute, 0)) for minute in range(last - minutes + 1, last + 1)]
    peak = max([count for _, count in window] + [0])
    top = max(peak, configured or 0, 1)
    slot = width / minutes
    bars = []
    for index, (minute, count) in enumerate(window):
        bar_height = height * count / top
        stamp = dt.datetime.fromtimestamp(minute * 60, dt.UTC).strftime("%H:%M")
        bars.append(
            (round(index * slot, 2), round(height - bar_height, 2), round(slot * 0.8, 2), count, stamp)
        )
    configured_y = round(height - height * configured / top, 2) if configured else None
    recent = window[-2][1] if len(window) > 1 else 0
    return PaceChart(width, height, bars, configured_y, configured, peak, recent)


def when(seconds: float | None) -> str:
    """An API timestamp (epoch seconds) as UTC to the second, or an empty string."""
    if seconds is None:
        return ""
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def pretty_json(text: str) -> str:
    """A JSON document indented for reading; text that is not JSON as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=False)
    except ValueError:
        return text
