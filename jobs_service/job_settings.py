"""Checks on job settings that the AWS API model does not express (spec §6.2, §7, §8).

The model already bounds most numbers (botocore's model drives the HTTP
layer's validation); these are the documented rules it leaves out.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from iot_jobs_bridge import schemas

from .errors import InvalidRequest
from .maintenance_windows import parse_windows

__all__ = ["check_job_settings", "check_status_details", "parse_schedule_time"]

MAX_IN_PROGRESS_MINUTES = 10080
MAX_TOTAL_RETRIES = 10
MINUTE = 60.0
DAY = 86400.0


def check_job_settings(settings: dict[str, Any], *, now: float) -> None:
    """Raise InvalidRequest for the first setting that breaks a documented rule."""
    _check_timeout(settings.get("timeoutConfig"))
    _check_rollout(settings.get("jobExecutionsRolloutConfig"))
    _check_abort(settings.get("abortConfig"))
    _check_retry(settings.get("jobExecutionsRetryConfig"))
    _check_schedule(settings.get("schedulingConfig"), now)


def check_status_details(details: dict[str, str]) -> None:
    """The statusDetails limits of both planes: 10 pairs, values of 1-1024 characters (D8)."""
    try:
        schemas.check("device_requests", "statusDetails", details)
    except schemas.SchemaError as exc:
        raise InvalidRequest(f"statusDetails: {exc}") from exc


def _check_timeout(config: dict[str, Any] | None) -> None:
    minutes = (config or {}).get("inProgressTimeoutInMinutes")
    if minutes is not None and not 1 <= minutes <= MAX_IN_PROGRESS_MINUTES:
        raise InvalidRequest(
            f"inProgressTimeoutInMinutes must be between 1 and {MAX_IN_PROGRESS_MINUTES}, not {minutes}"
        )


def _check_rollout(config: dict[str, Any] | None) -> None:
    rate = (config or {}).get("exponentialRate")
    if rate is None:
        return
    if _decimals(rate["incrementFactor"]) > 1:
        raise InvalidRequest(f"incrementFactor allows one decimal place, not {rate['incrementFactor']}")
    criteria = rate["rateIncreaseCriteria"]
    given = [key for key in ("numberOfNotifiedThings", "numberOfSucceededThings") if key in criteria]
    if len(given) != 1:
        raise InvalidRequest(
            "rateIncreaseCriteria needs exactly one of numberOfNotifiedThings and numberOfSucceededThings"
        )


def _check_abort(config: dict[str, Any] | None) -> None:
    for criterion in (config or {}).get("criteriaList", []):
        threshold = criterion["thresholdPercentage"]
        if threshold <= 0 or _decimals(threshold) > 2:
            raise InvalidRequest(
                f"thresholdPercentage must be above 0 with at most two decimal places, not {threshold}"
            )
    types = [c["failureType"] for c in (config or {}).get("criteriaList", [])]
    if len(types) != len(set(types)):
        raise InvalidRequest("abortConfig has more than one criterion for the same failureType")


def _check_retry(config: dict[str, Any] | None) -> None:
    criteria = (config or {}).get("criteriaList", [])
    if config is not None and not 1 <= len(criteria) <= 2:
        raise InvalidRequest(f"jobExecutionsRetryConfig needs 1 or 2 criteria, not {len(criteria)}")
    types = [c["failureType"] for c in criteria]
    if len(types) != len(set(types)):
        raise InvalidRequest("jobExecutionsRetryConfig has more than one criterion for the same failureType")
    total = sum(c["numberOfRetries"] for c in criteria)
    if total > MAX_TOTAL_RETRIES:
        raise InvalidRequest(f"A job allows at most {MAX_TOTAL_RETRIES} retries in all, not {total}")


def _check_schedule(config: dict[str, Any] | None, now: float) -> None:
    if not config:
        return
    start = parse_schedule_time(config["startTime"], "startTime") if "startTime" in config else None
    end = parse_schedule_time(config["endTime"], "endTime") if "endTime" in config else None
    if start is not None and not now + 30 * MINUTE <= start <= now + 366 * DAY:
        raise InvalidRequest("startTime must be at least 30 minutes and at most 1 year in the future")
    if end is not None:
        if not now + 30 * MINUTE <= end <= now + 2 * 366 * DAY:
            raise InvalidRequest("endTime must be at least 30 minutes and at most 2 years in the future")
        if start is not None and not 30 * MINUTE <= end - start <= 2 * 366 * DAY:
            raise InvalidRequest("endTime must be between 30 minutes and 2 years after startTime")
    if "endBehavior" in config and end is None:
        raise InvalidRequest("endBehavior needs an endTime")
    parse_windows(config.get("maintenanceWindows", []))


def parse_schedule_time(text: str, name: str) -> float:
    """An ISO-8601 date and time (e.g. ``2030-01-01T12:00``); UTC unless an offset is given."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} {text!r} is not an ISO-8601 date and time such as 2030-01-01T12:00"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _decimals(value: float) -> int:
    exponent = Decimal(repr(value)).normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0
