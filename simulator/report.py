"""The simulation report: what happened, measured, and whether it matched the profiles."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Latency", "Report", "percentile"]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Latency:
    """p50/p95/p99 of a set of durations, in seconds."""

    count: int
    p50: float | None
    p95: float | None
    p99: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Latency:
        return cls(len(values), *(_round(percentile(values, f)) for f in (0.50, 0.95, 0.99)))


@dataclass
class Report:
    """Everything ``iotjobs simulate`` prints (``--json`` prints exactly these keys)."""

    things: int
    job_id: str | None
    jobs: int
    connect_seconds: float
    connections_per_second: float
    seconds: float
    executions_per_second: float
    notify_to_start: Latency
    start_to_terminal: Latency
    notify_to_terminal: Latency
    statuses: dict[str, int]
    expected_statuses: dict[str, int]
    mismatched: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    profiles: dict[str, int] = field(default_factory=dict)
    # User + system CPU of the simulator's own processes (controller and workers) over the
    # run, registration included, so a reader can tell which side was the limit.
    cpu_seconds: float = 0.0
    cpu_per_execution_ms: float = 0.0

    @property
    def ok(self) -> bool:
        """Every thing ended exactly as its profile predicts: none lost, none run twice."""
        return not (self.mismatched or self.lost or self.duplicated)

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["ok"] = self.ok
        data["lost"] = len(self.lost)
        data["duplicated"] = len(self.duplicated)
        data["mismatched"] = len(self.mismatched)
        data["lost_things"] = self.lost[:100]
        data["duplicated_things"] = self.duplicated[:100]
        data["mismatched_things"] = self.mismatched[:100]
        return json.dumps(data, sort_keys=True)

    def to_text(self) -> str:
        lines = [
            f"things            {self.things} ({_counts(self.profiles)})",
            f"jobs              {self.jobs} ({self.job_id or 'created by an operator'}"
            + (" and more)" if self.jobs > 1 else ")"),
            f"connected         {self.connect_seconds:.2f} s ({self.connections_per_second:.0f}/s)",
            f"create → last end {self.seconds:.2f} s ({self.executions_per_second:.1f} executions/s)",
            f"notify → start    {_latency(self.notify_to_start)}",
            f"start → terminal  {_latency(self.start_to_terminal)}",
            f"notify → terminal {_latency(self.notify_to_terminal)}",
            f"statuses          {_counts(self.statuses)}",
            f"expected          {_counts(self.expected_statuses)}",
            f"lost              {len(self.lost)}{_some(self.lost)}",
            f"duplicated        {len(self.duplicated)}{_some(self.duplicated)}",
            f"mismatched        {len(self.mismatched)}{_some(self.mismatched)}",
            f"simulator CPU     {self.cpu_seconds:.2f} s ({self.cpu_per_execution_ms:.2f} ms per execution)",
            "result            " + ("every thing ended as its profile predicts" if self.ok else "MISMATCH"),
        ]
        return "\n".join(lines)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _latency(latency: Latency) -> str:
    if latency.count == 0:
        return "-"
    return f"p50 {latency.p50:.3f} s  p95 {latency.p95:.3f} s  p99 {latency.p99:.3f} s  (n={latency.count})"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "-"


def _some(things: list[str]) -> str:
    return f": {', '.join(things[:5])}{' …' if len(things) > 5 else ''}" if things else ""
