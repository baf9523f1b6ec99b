import datetime as dt

import pytest

from iot_jobs_bridge.jobs_service.errors import InvalidRequest
from iot_jobs_bridge.jobs_service.job_policies import abort_trip, rate_per_minute, retry_allowed
from iot_jobs_bridge.jobs_service.maintenance_windows import (
    next_open,
    open_window,
    parse_windows,
    upcoming_starts,
)
from iot_jobs_bridge.jobs_service.models import ExecutionStatus as S


def at(text):
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def test_rates():
    assert rate_per_minute(None, notified=0, succeeded=0) is None
    assert rate_per_minute({"maximumPerMinute": 30}, notified=99, succeeded=0) == 30
    exponential = {
        "baseRatePerMinute": 50,
        "incrementFactor": 2.0,
        "rateIncreaseCriteria": {"numberOfNotifiedThings": 1000},
    }
    # The documented table: 50 -> 100 -> 200 -> 400 after 1000, 2000, 3000 notified things.
    assert [
        rate_per_minute({"exponentialRate": exponential}, notified=n, succeeded=0)
        for n in (0, 999, 1000, 2000, 3000)
    ] == [50, 50, 100, 200, 400]
    capped = {"maximumPerMinute": 150, "exponentialRate": exponential}
    assert rate_per_minute(capped, notified=3000, succeeded=0) == 150
    by_success = {"exponentialRate": {**exponential, "rateIncreaseCriteria": {"numberOfSucceededThings": 2}}}
    assert rate_per_minute(by_success, notified=500, succeeded=5) == 200


def test_abort_needs_the_minimum_and_the_threshold():
    config = {
        "criteriaList": [
            {
                "failureType": "FAILED",
                "action": "CANCEL",
                "thresholdPercentage": 50,
                "minNumberOfExecutedThings": 4,
            }
        ]
    }
    assert abort_trip(config, executed=3, outcomes={S.FAILED: 3}) is None
    assert abort_trip(config, executed=4, outcomes={S.FAILED: 1, S.REJECTED: 3}) is None
    trip = abort_trip(config, executed=4, outcomes={S.FAILED: 2})
    assert (trip.failure_type, trip.failures, trip.executed) == ("FAILED", 2, 4)
    assert trip.comment == "Job canceled: 2 of 4 executed things ended FAILED, reaching the 50% threshold"
    every = {
        "criteriaList": [
            {
                "failureType": "ALL",
                "action": "CANCEL",
                "thresholdPercentage": 12.5,
                "minNumberOfExecutedThings": 1,
            }
        ]
    }
    assert abort_trip(every, executed=8, outcomes={S.TIMED_OUT: 1}).failures == 1
    assert abort_trip(every, executed=9, outcomes={S.TIMED_OUT: 1}) is None


def test_retries():
    failed_twice = {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]}
    assert retry_allowed(failed_twice, S.FAILED, {}) is True
    assert retry_allowed(failed_twice, S.FAILED, {S.FAILED: 2}) is False
    assert retry_allowed(failed_twice, S.TIMED_OUT, {}) is False
    assert retry_allowed(failed_twice, S.REJECTED, {}) is False
    both = {"criteriaList": [{"failureType": "ALL", "numberOfRetries": 3}]}
    assert retry_allowed(both, S.TIMED_OUT, {S.FAILED: 2}) is True
    assert retry_allowed(both, S.TIMED_OUT, {S.FAILED: 2, S.TIMED_OUT: 1}) is False
    assert retry_allowed(None, S.FAILED, {}) is False


def test_windows_aws_and_plain_cron():
    windows = parse_windows(
        [
            {"startTime": "cron(0 2 ? * MON *)", "durationInMinutes": 60},
            {"startTime": "30 4 * * *", "durationInMinutes": 10},
        ]
    )
    monday = at("2030-01-07T02:30")
    assert open_window(windows, monday) == (at("2030-01-07T02:00"), at("2030-01-07T03:00"))
    assert open_window(windows, at("2030-01-07T03:00")) is None
    assert next_open(windows, at("2030-01-07T03:00")) == at("2030-01-07T04:30")
    assert upcoming_starts(windows, monday, 3) == [
        at("2030-01-07T04:30"),
        at("2030-01-08T04:30"),
        at("2030-01-09T04:30"),
    ]
    only_2031 = parse_windows([{"startTime": "cron(0 0 1 * ? 2031)", "durationInMinutes": 5}])
    assert next_open(only_2031, at("2030-06-01T00:00")) == at("2031-01-01T00:00")


@pytest.mark.parametrize(
    "expression", ["cron(0 2 * *)", "not cron", "61 * * * *", "cron(0 0 * * ? nineteen)"]
)
def test_bad_windows_are_refused(expression):
    with pytest.raises(InvalidRequest, match="Maintenance window"):
        parse_windows([{"startTime": expression, "durationInMinutes": 5}])
