"""What ``iotjobs job watch`` shows, worked out from API shapes: bar, legend, rate, lines. Pure.

Kept apart from the polling so every piece of the view can be checked
without a server or a terminal: the functions take a :class:`Snapshot` (and
a width) and return text.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ENDED",
    "STATUSES",
    "Failure",
    "Rate",
    "Snapshot",
    "bar",
    "compact_details",
    "counts_of",
    "elapsed_text",
    "frame",
    "json_line",
    "legend",
    "plain_line",
    "redraw",
]

#: Every execution status in the order the bar fills: finished ones first, then the rest.
STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "CANCELED", "REMOVED", "IN_PROGRESS", "QUEUED")
#: Statuses an execution does not leave (a retry makes a new execution).
FINISHED = frozenset(STATUSES[:6])
#: Job statuses after which nothing more happens to the job.
ENDED = frozenset({"COMPLETED", "CANCELED", "DELETION_IN_PROGRESS"})
# jobProcessDetails' member for each status.
_MEMBERS = {
    "SUCCEEDED": "numberOfSucceededThings",
    "FAILED": "numberOfFailedThings",
    "TIMED_OUT": "numberOfTimedOutThings",
    "REJECTED": "numberOfRejectedThings",
    "CANCELED": "numberOfCanceledThings",
    "REMOVED": "numberOfRemovedThings",
    "IN_PROGRESS": "numberOfInProgressThings",
    "QUEUED": "numberOfQueuedThings",
}
# One character per status, so the bar reads without colour too, and its ANSI colour.
_LOOK = {
    "SUCCEEDED": ("#", "32"),
    "FAILED": ("X", "31"),
    "TIMED_OUT": ("T", "35"),
    "REJECTED": ("R", "33"),
    "CANCELED": ("C", "90"),
    "REMOVED": ("-", "90"),
    "IN_PROGRESS": (">", "36"),
    "QUEUED": (".", "39"),
}


def counts_of(process_details: Mapping[str, Any]) -> dict[str, int]:
    """Things per execution status from DescribeJob's ``jobProcessDetails``; every status present."""
    return {status: int(process_details.get(member) or 0) for status, member in _MEMBERS.items()}


@dataclass(frozen=True)
class Failure:
    """An execution that ended badly, with what its device said."""

    thing_name: str
    status: str
    status_details: dict[str, str]


@dataclass(frozen=True)
class Snapshot:
    """One look at the job, as every view shows it."""

    job_id: str
    status: str
    counts: dict[str, int]
    rate_per_minute: float | None  # None until two looks are far enough apart to measure
    elapsed: float  # seconds since the job was created
    failures: tuple[Failure, ...] = ()

    def change_key(self) -> tuple[object, ...]:
        """What makes a look worth a line: the rate and the clock move on every tick, this does not."""
        return self.status, tuple(sorted(self.counts.items())), self.failures_key()

    def failures_key(self) -> tuple[object, ...]:
        return tuple((f.thing_name, f.status, tuple(sorted(f.status_details.items()))) for f in self.failures)


class Rate:
    """Executions finished per minute over the last ``window`` seconds, from successive looks.

    The baseline is the newest look at least ``window`` old (or the oldest there
    is), so the figure covers a whole window as soon as looks span one.
    """

    def __init__(self, window: float = 60.0) -> None:
        self._window = window
        self._looks: deque[tuple[float, int]] = deque()

    def add(self, at: float, finished: int) -> float | None:
        """Record ``finished`` executions at monotonic time ``at``; the rate, or None before two looks."""
        self._looks.append((at, finished))
        while len(self._looks) > 1 and self._looks[1][0] <= at - self._window:
            self._looks.popleft()
        then, before = self._looks[0]
        if at - then <= 0:
            return None
        # A retry moves a thing from FAILED back to QUEUED; the rate never goes below zero.
        return max(0.0, (finished - before) * 60.0 / (at - then))


def finished(counts: Mapping[str, int]) -> int:
    return sum(counts.get(status, 0) for status in FINISHED)


def _paint(text: str, status: str, colour: bool) -> str:
    return f"\x1b[{_LOOK[status][1]}m{text}\x1b[0m" if colour and text else text


def bar(counts: Mapping[str, int], width: int, *, colour: bool = False) -> str:
    """``width`` characters split between the statuses by count; any status with things gets one at least."""
    total = sum(counts.get(status, 0) for status in STATUSES)
    if total == 0:
        return " " * width
    present = [status for status in STATUSES if counts.get(status, 0)]
    exact = {status: counts[status] * width / total for status in present}
    cells = {status: max(1, int(exact[status])) for status in present}
    # Largest remainders take what flooring left over; the widest give back what the minimum of one took.
    for status in sorted(present, key=lambda s: exact[s] - int(exact[s]), reverse=True):
        if sum(cells.values()) >= width:
            break
        cells[status] += 1
    while sum(cells.values()) > width:
        cells[max(cells, key=lambda s: cells[s])] -= 1
    return "".join(_paint(_LOOK[s][0] * cells[s], s, colour) for s in present)


def _label(status: str) -> str:
    return status.replace("_", " ").capitalize()


def legend(counts: Mapping[str, int], *, colour: bool = False) -> list[str]:
    """One entry per status with things, e.g. ``# Succeeded 6``; each its bar character and colour."""
    return [
        f"{_paint(_LOOK[status][0], status, colour)} {_label(status)} {counts[status]}"
        for status in STATUSES
        if counts.get(status, 0)
    ]


def compact_details(details: Mapping[str, str], limit: int = 80) -> str:
    """What a device said, in one short line: exit code, reason, stderr's last line, else key=value."""
    parts = []
    if "exitCode" in details:
        parts.append(f"exit {details['exitCode']}")
    if "reason" in details:
        parts.append(details["reason"])
    stderr_lines = details.get("stderr", "").strip().splitlines()
    if stderr_lines:
        parts.append(stderr_lines[-1].strip())
    if not parts:
        parts = [f"{key}={value}" for key, value in sorted(details.items())]
    text = _printable(" ".join("; ".join(parts).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _printable(text: str) -> str:
    # A device writes these words; an escape sequence in them must not steer the operator's terminal.
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def elapsed_text(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h03m05s``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _rate_text(rate: float | None) -> str:
    return "measuring" if rate is None else f"{rate:.1f}/min"


def _failure_text(failure: Failure, limit: int) -> str:
    said = compact_details(failure.status_details, limit)
    return f"{failure.thing_name} {_label(failure.status).lower()}" + (f": {said}" if said else "")


def frame(snapshot: Snapshot, width: int, *, colour: bool = False) -> list[str]:
    """The terminal view's lines, none wider than ``width`` characters as they show."""
    width = max(20, width)
    total, elapsed = sum(snapshot.counts.values()), elapsed_text(snapshot.elapsed)
    lines = [
        _fit(f"job {snapshot.job_id}  {snapshot.status}  {total} things  {elapsed}", width),
        "[" + bar(snapshot.counts, min(60, width - 2), colour=colour) + "]",
    ]
    entries, line, shown = legend(snapshot.counts, colour=colour), "", 0
    for entry, plain in zip(entries, legend(snapshot.counts), strict=True):
        if line and shown + 2 + len(plain) > width:
            lines.append(line)
            line, shown = "", 0
        line, shown = (f"{line}  {entry}", shown + 2 + len(plain)) if line else (entry, len(plain))
    lines.append(line or "no executions yet")
    lines.append(f"rate {_rate_text(snapshot.rate_per_minute)} (finished, last minute)")
    if snapshot.failures:
        lines.append("latest failures:")
        lines.extend(_fit("  " + _failure_text(f, width), width) for f in snapshot.failures)
    return lines


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def redraw(lines: Sequence[str], previous: int) -> str:
    """Text that replaces the ``previous`` lines drawn last time with ``lines`` (cursor ends below)."""
    up = f"\x1b[{previous}A\r" if previous else ""
    return up + "".join(f"{line}\x1b[K\n" for line in lines) + "\x1b[J"


def plain_line(snapshot: Snapshot) -> str:
    """One line for a log: status, counts in words, rate, and the latest failure."""
    counts = ", ".join(entry[2:] for entry in legend(snapshot.counts)) or "no executions yet"
    line = (
        f"{snapshot.job_id} {snapshot.status}: {counts}; {_rate_text(snapshot.rate_per_minute)}; "
        f"{elapsed_text(snapshot.elapsed)}"
    )
    if snapshot.failures:
        line += f"; latest failure {_failure_text(snapshot.failures[0], 80)}"
    return line


def json_line(snapshot: Snapshot, at: float, *, final: bool) -> str:
    """One JSON object: what a machine needs of the look; ``final`` on the line after which none follow."""
    rate = snapshot.rate_per_minute
    return json.dumps(
        {
            "jobId": snapshot.job_id,
            "status": snapshot.status,
            "counts": snapshot.counts,
            "rate_per_minute": None if rate is None else round(rate, 2),
            "failures": [
                {"thingName": f.thing_name, "status": f.status, "statusDetails": f.status_details}
                for f in snapshot.failures
            ],
            "at": round(at, 3),
            "final": final,
        }
    )
