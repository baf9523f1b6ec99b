"""The arithmetic of rollout pacing, abort criteria and retries (spec §3.5, §7.2, §7.3): pure, no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .models import ExecutionStatus

__all__ = [
    "ABORT_COMMENT",
    "ABORT_REASON",
    "AbortStanding",
    "AbortTrip",
    "abort_standings",
    "abort_trip",
    "paced_by_succeeded_things",
    "rate_per_minute",
    "retry_allowed",
]

# What CancelJob records when an abort criterion trips (decisions.md D33).
ABORT_REASON = "ABORT_CONFIG_TRIPPED"
ABORT_COMMENT = (
    "Job canceled: {failures} of {executed} executed things ended {kind}, reaching the {threshold}% threshold"
)

_FAILURE_TYPES: dict[str, frozenset[ExecutionStatus]] = {
    "FAILED": frozenset({ExecutionStatus.FAILED}),
    "REJECTED": frozenset({ExecutionStatus.REJECTED}),
    "TIMED_OUT": frozenset({ExecutionStatus.TIMED_OUT}),
    "ALL": frozenset({ExecutionStatus.FAILED, ExecutionStatus.REJECTED, ExecutionStatus.TIMED_OUT}),
}


def rate_per_minute(config: Mapping[str, Any] | None, *, notified: int, succeeded: int) -> float | None:
    """Executions to release per minute now; None when the job is not paced.

    With ``exponentialRate`` the rate starts at ``baseRatePerMinute`` and is
    multiplied by ``incrementFactor`` each time another ``numberOfNotifiedThings``
    (or ``numberOfSucceededThings``) things are reached; it never exceeds
    ``maximumPerMinute``.
    """
    if not config:
        return None
    maximum = config.get("maximumPerMinute")
    exponential = config.get("exponentialRate")
    if exponential is None:
        return float(maximum) if maximum is not None else None
    criteria = exponential["rateIncreaseCriteria"]
    if "numberOfNotifiedThings" in criteria:
        steps = notified // int(criteria["numberOfNotifiedThings"])
    else:
        steps = succeeded // int(criteria["numberOfSucceededThings"])
    rate = float(exponential["baseRatePerMinute"]) * float(exponential["incrementFactor"]) ** steps
    return min(rate, float(maximum)) if maximum is not None else rate


def paced_by_succeeded_things(config: Mapping[str, Any] | None) -> bool:
    """Whether the job's rate grows with its succeeded things (so releasing needs their count)."""
    exponential = (config or {}).get("exponentialRate") or {}
    return "numberOfSucceededThings" in exponential.get("rateIncreaseCriteria", {})


@dataclass(frozen=True)
class AbortTrip:
    failure_type: str
    failures: int
    executed: int
    threshold: float

    @property
    def comment(self) -> str:
        kind = "in FAILED, REJECTED or TIMED_OUT" if self.failure_type == "ALL" else self.failure_type
        return ABORT_COMMENT.format(
            failures=self.failures, executed=self.executed, kind=kind, threshold=_plain(self.threshold)
        )


def abort_trip(
    config: Mapping[str, Any] | None, *, executed: int, outcomes: Mapping[ExecutionStatus, int]
) -> AbortTrip | None:
    """The first criterion met, if any.

    ``executed`` counts the things notified of their execution; ``outcomes``
    counts things by the status of their latest execution (decisions.md D33).
    """
    for criterion in (config or {}).get("criteriaList", []):
        if executed < int(criterion["minNumberOfExecutedThings"]):
            continue
        failure_type = str(criterion["failureType"])
        failures = sum(outcomes.get(status, 0) for status in _FAILURE_TYPES[failure_type])
        threshold = float(criterion["thresholdPercentage"])
        if failures * 100 >= threshold * executed and failures > 0:
            return AbortTrip(failure_type, failures, executed, threshold)
    return None


@dataclass(frozen=True)
class AbortStanding:
    """How far a job is from one abort criterion."""

    failure_type: str
    failures: int
    executed: int
    min_executed: int
    threshold: float

    @property
    def percentage(self) -> float:
        """Failures among the executed things, in percent (0 before any has executed)."""
        return 100.0 * self.failures / self.executed if self.executed else 0.0

    @property
    def armed(self) -> bool:
        """Whether enough things have executed for the criterion to count."""
        return self.executed >= self.min_executed


def abort_standings(
    config: Mapping[str, Any] | None, *, executed: int, outcomes: Mapping[ExecutionStatus, int]
) -> list[AbortStanding]:
    """Each criterion of ``config`` with the figures :func:`abort_trip` compares, in order."""
    return [
        AbortStanding(
            failure_type=str(criterion["failureType"]),
            failures=sum(outcomes.get(s, 0) for s in _FAILURE_TYPES[str(criterion["failureType"])]),
            executed=executed,
            min_executed=int(criterion["minNumberOfExecutedThings"]),
            threshold=float(criterion["thresholdPercentage"]),
        )
        for criterion in (config or {}).get("criteriaList", [])
    ]


def retry_allowed(
    config: Mapping[str, Any] | None, status: ExecutionStatus, failures_so_far: Mapping[ExecutionStatus, int]
) -> bool:
    """May a thing whose execution just ended ``status`` get another attempt?

    ``failures_so_far`` counts this thing's earlier attempts of the job by
    status, not including the one that just ended. A FAILED criterion limits
    FAILED attempts, TIMED_OUT limits TIMED_OUT ones, and ALL limits both
    together; all the thing's retries never exceed 10.
    """
    if status not in (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT):
        return False
    criteria = {
        str(c["failureType"]): int(c["numberOfRetries"]) for c in (config or {}).get("criteriaList", [])
    }
    used = failures_so_far.get(ExecutionStatus.FAILED, 0) + failures_so_far.get(ExecutionStatus.TIMED_OUT, 0)
    if used >= 10:
        return False
    if status.value in criteria:
        return failures_so_far.get(status, 0) < criteria[status.value]
    if "ALL" in criteria:
        return used < criteria["ALL"]
    return False


def _plain(number: float) -> str:
    return str(int(number)) if math.isclose(number, round(number)) else str(number)
