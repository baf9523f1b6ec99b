import pytest

from iot_jobs_bridge.jobs_service.errors import InvalidRequest
from iot_jobs_bridge.jobs_service.job_settings import check_job_settings, parse_schedule_time

NOW = 1_900_000_000.0  # 2030-03-17


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timeoutConfig": {"inProgressTimeoutInMinutes": 0}}, "between 1 and 10080, not 0"),
        ({"timeoutConfig": {"inProgressTimeoutInMinutes": 10081}}, "between 1 and 10080, not 10081"),
        (
            {
                "jobExecutionsRolloutConfig": {
                    "exponentialRate": {
                        "baseRatePerMinute": 5,
                        "incrementFactor": 1.25,
                        "rateIncreaseCriteria": {"numberOfNotifiedThings": 1},
                    }
                }
            },
            "one decimal place, not 1.25",
        ),
        (
            {
                "jobExecutionsRolloutConfig": {
                    "exponentialRate": {
                        "baseRatePerMinute": 5,
                        "incrementFactor": 2.0,
                        "rateIncreaseCriteria": {},
                    }
                }
            },
            "exactly one of numberOfNotifiedThings and numberOfSucceededThings",
        ),
        (
            {
                "abortConfig": {
                    "criteriaList": [
                        {
                            "failureType": "FAILED",
                            "action": "CANCEL",
                            "thresholdPercentage": 10.125,
                            "minNumberOfExecutedThings": 1,
                        }
                    ]
                }
            },
            "at most two decimal places, not 10.125",
        ),
        (
            {
                "jobExecutionsRetryConfig": {
                    "criteriaList": [
                        {"failureType": "FAILED", "numberOfRetries": 6},
                        {"failureType": "TIMED_OUT", "numberOfRetries": 5},
                    ]
                }
            },
            "at most 10 retries in all, not 11",
        ),
        (
            {
                "jobExecutionsRetryConfig": {
                    "criteriaList": [
                        {"failureType": "FAILED", "numberOfRetries": 1},
                        {"failureType": "FAILED", "numberOfRetries": 1},
                    ]
                }
            },
            "more than one criterion for the same failureType",
        ),
        ({"schedulingConfig": {"startTime": "2030-03-17T08:00"}}, "at least 30 minutes"),
        ({"schedulingConfig": {"startTime": "soon"}}, "not an ISO-8601 date and time"),
        (
            {"schedulingConfig": {"startTime": "2030-03-18T00:00", "endTime": "2030-03-18T00:10"}},
            "between 30 minutes and 2 years after startTime",
        ),
        (
            {"schedulingConfig": {"startTime": "2030-03-18T00:00", "endBehavior": "CANCEL"}},
            "endBehavior needs an endTime",
        ),
    ],
)
def test_documented_rules_the_model_leaves_out(settings, message):
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(".", r"\.")):
        check_job_settings(settings, now=NOW)


def test_valid_settings_pass():
    check_job_settings(
        {
            "timeoutConfig": {"inProgressTimeoutInMinutes": 10080},
            "jobExecutionsRolloutConfig": {
                "maximumPerMinute": 50,
                "exponentialRate": {
                    "baseRatePerMinute": 5,
                    "incrementFactor": 1.5,
                    "rateIncreaseCriteria": {"numberOfSucceededThings": 3},
                },
            },
            "abortConfig": {
                "criteriaList": [
                    {
                        "failureType": "ALL",
                        "action": "CANCEL",
                        "thresholdPercentage": 12.5,
                        "minNumberOfExecutedThings": 10,
                    }
                ]
            },
            "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "ALL", "numberOfRetries": 10}]},
            "schedulingConfig": {
                "startTime": "2030-03-18T00:00",
                "endTime": "2030-03-19T00:00Z",
                "endBehavior": "STOP_ROLLOUT",
            },
        },
        now=NOW,
    )


def test_schedule_times_are_utc_unless_an_offset_is_given():
    assert parse_schedule_time("2030-01-01T12:00", "startTime") == 1893499200.0
    assert parse_schedule_time("2030-01-01T13:00+01:00", "startTime") == 1893499200.0
