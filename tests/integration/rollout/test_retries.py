"""Retries (``jobExecutionsRetryConfig``, spec §3.5, decisions.md D34), driven by official-SDK devices.

A retry is a new QUEUED execution, numbered after the one that ended, with
``retryAttempt`` one higher; the device hears of it through notify-next.
"""

from ._support import arns, next_job, sdk_devices

TIME_SCALE = 120


def retries(*criteria: tuple[str, int]) -> dict:
    return {"criteriaList": [{"failureType": kind, "numberOfRetries": count} for kind, count in criteria]}


def attempts(iot, job_id: str, thing: str) -> list[tuple[int, int, str]]:
    """(executionNumber, retryAttempt, status) of every attempt, as both listings show them
    (called once nothing changes any more)."""
    by_job = [
        summary["jobExecutionSummary"]
        for summary in iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]
        if summary["thingArn"].endswith(f"/{thing}")
    ]
    by_thing = [
        summary["jobExecutionSummary"]
        for summary in iot.list_job_executions_for_thing(thingName=thing)["executionSummaries"]
        if summary["jobId"] == job_id
    ]
    listed = sorted((s["executionNumber"], s["retryAttempt"], s["status"]) for s in by_job)
    assert sorted((s["executionNumber"], s["retryAttempt"], s["status"]) for s in by_thing) == listed
    return listed


def test_failed_executions_are_retried_until_the_budget_is_spent(server, iot, unique):
    job_id = f"{unique}-job"
    with sdk_devices(server, iot, [f"{unique}-dev"]) as (device,):
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns([device.thing]),
            jobExecutionsRetryConfig=retries(("FAILED", 2)),
        )
        for number in (1, 2, 3):
            next_job(device, job_id, number=number)
            started = device.start_next().result(10).execution
            assert (started.job_id, started.execution_number, started.status) == (
                job_id,
                number,
                "IN_PROGRESS",
            )
            device.update(job_id, "FAILED", execution_number=number).result(10)
        device.next_events.wait_for(lambda item: item[1].execution is None)
        assert device.start_next().result(10).execution is None

    assert attempts(iot, job_id, device.thing) == [(1, 0, "FAILED"), (2, 1, "FAILED"), (3, 2, "FAILED")]
    second = iot.describe_job_execution(jobId=job_id, thingName=device.thing, executionNumber=2)["execution"]
    first = iot.describe_job_execution(jobId=job_id, thingName=device.thing, executionNumber=1)["execution"]
    assert second["queuedAt"] == first["lastUpdatedAt"]  # queued at once
    job = iot.describe_job(jobId=job_id)["job"]
    assert (job["status"], job["jobProcessDetails"]["numberOfFailedThings"]) == ("COMPLETED", 1)


def test_a_timed_out_execution_is_retried(server, iot, unique):
    job_id = f"{unique}-job"
    with sdk_devices(server, iot, [f"{unique}-dev"]) as (device,):
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns([device.thing]),
            timeoutConfig={"inProgressTimeoutInMinutes": 1},
            jobExecutionsRetryConfig=retries(("TIMED_OUT", 1)),
        )
        device.start_next().result(10)
        _, retry = next_job(device, job_id, timeout=5, number=2)
        assert retry.version_number == 1
        started = device.start_next().result(10).execution
        assert (started.execution_number, started.status) == (2, "IN_PROGRESS")
        device.update(job_id, "SUCCEEDED").result(10)

    assert attempts(iot, job_id, device.thing) == [(1, 0, "TIMED_OUT"), (2, 1, "SUCCEEDED")]
    job = iot.describe_job(jobId=job_id)["job"]
    assert (job["status"], job["jobProcessDetails"]["numberOfSucceededThings"]) == ("COMPLETED", 1)
    assert job["jobProcessDetails"]["numberOfTimedOutThings"] == 0


def test_all_shares_one_budget_between_failed_and_timed_out(server, iot, unique):
    job_id = f"{unique}-job"
    with sdk_devices(server, iot, [f"{unique}-dev"]) as (device,):
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns([device.thing]),
            timeoutConfig={"inProgressTimeoutInMinutes": 1},
            jobExecutionsRetryConfig=retries(("ALL", 2)),
        )
        device.update(job_id, "FAILED").result(10)
        next_job(device, job_id, timeout=5, number=2)
        device.start_next().result(10)  # attempt 2 times out
        next_job(device, job_id, timeout=5, number=3)
        device.update(job_id, "FAILED", execution_number=3).result(10)
        device.next_events.wait_for(lambda item: item[1].execution is None)

    assert attempts(iot, job_id, device.thing) == [(1, 0, "FAILED"), (2, 1, "TIMED_OUT"), (3, 2, "FAILED")]
    assert iot.describe_job(jobId=job_id)["job"]["status"] == "COMPLETED"


def test_rejected_and_uncovered_failures_are_not_retried(server, iot, unique):
    job_id = f"{unique}-job"
    names = [f"{unique}-rejects", f"{unique}-fails"]
    with sdk_devices(server, iot, names) as (rejecting, failing):
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns(names),
            timeoutConfig={"inProgressTimeoutInMinutes": 10},
            jobExecutionsRetryConfig=retries(("TIMED_OUT", 3)),
        )
        rejecting.update(job_id, "REJECTED").result(10)
        failing.update(job_id, "FAILED").result(10)
        for device in (rejecting, failing):
            device.next_events.wait_for(lambda item: item[1].execution is None)

    assert attempts(iot, job_id, rejecting.thing) == [(1, 0, "REJECTED")]
    assert attempts(iot, job_id, failing.thing) == [(1, 0, "FAILED")]
    assert iot.describe_job(jobId=job_id)["job"]["status"] == "COMPLETED"


def test_rejected_is_not_retried_even_under_all(server, iot, unique):
    job_id = f"{unique}-job"
    with sdk_devices(server, iot, [f"{unique}-dev"]) as (device,):
        iot.create_job(
            jobId=job_id,
            document="{}",
            targets=arns([device.thing]),
            jobExecutionsRetryConfig=retries(("ALL", 5)),
        )
        device.update(job_id, "REJECTED").result(10)
        device.next_events.wait_for(lambda item: item[1].execution is None)
    assert attempts(iot, job_id, device.thing) == [(1, 0, "REJECTED")]
