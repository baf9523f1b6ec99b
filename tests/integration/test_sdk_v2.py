"""A device on the official AWS IoT Device SDK (IotJobsClientV2) runs a job end to end."""

import datetime

import pytest
from awsiot import V2ServiceException, iotjobs

from .clients import Inbox, v2_jobs_client


def _thing_arn(name):
    return f"arn:aws:iot:us-east-1:123456789012:thing/{name}"


@pytest.fixture
def device(server, iot, unique):
    """A registered thing connected with IotJobsClientV2, with both streams open."""
    thing = f"{unique}-dev"
    iot.create_thing(thingName=thing)
    next_events, list_events = Inbox(), Inbox()
    with v2_jobs_client(
        server.mqtt_host, server.mqtt_port, thing, next_events.put, list_events.put
    ) as client:
        yield thing, client, next_events, list_events


def test_v2_device_runs_a_job_to_completion(iot, device, unique):
    thing, client, next_events, list_events = device
    pending = client.get_pending_job_executions(
        iotjobs.GetPendingJobExecutionsRequest(thing_name=thing)
    ).result(10)
    assert (pending.in_progress_jobs, pending.queued_jobs) == ([], [])
    assert (
        client.start_next_pending_job_execution(iotjobs.StartNextPendingJobExecutionRequest(thing_name=thing))
        .result(10)
        .execution
        is None
    )

    job_id = f"{unique}-job"
    iot.create_job(
        jobId=job_id, document='{"operation": "install", "version": "2.0"}', targets=[_thing_arn(thing)]
    )

    announced = next_events.wait_for(lambda e: e.execution is not None)
    assert (announced.execution.job_id, announced.execution.status) == (job_id, "QUEUED")
    assert announced.execution.job_document == {"operation": "install", "version": "2.0"}
    assert isinstance(announced.timestamp, datetime.datetime)
    listed = list_events.wait_for(lambda e: "QUEUED" in (e.jobs or {}))
    assert [s.job_id for s in listed.jobs["QUEUED"]] == [job_id]

    started = client.start_next_pending_job_execution(
        iotjobs.StartNextPendingJobExecutionRequest(thing_name=thing, status_details={"phase": "download"})
    ).result(10)
    assert (started.execution.job_id, started.execution.status, started.execution.version_number) == (
        job_id,
        "IN_PROGRESS",
        2,
    )
    assert started.execution.job_document["operation"] == "install"

    described = client.describe_job_execution(
        iotjobs.DescribeJobExecutionRequest(thing_name=thing, job_id="$next")
    ).result(10)
    assert (described.execution.status, described.execution.status_details) == (
        "IN_PROGRESS",
        {"phase": "download"},
    )

    updated = client.update_job_execution(
        iotjobs.UpdateJobExecutionRequest(
            thing_name=thing,
            job_id=job_id,
            status="SUCCEEDED",
            expected_version=2,
            status_details={"result": "installed 2.0"},
            include_job_execution_state=True,
        )
    ).result(10)
    assert (updated.execution_state.status, updated.execution_state.version_number) == ("SUCCEEDED", 3)

    next_events.wait_for(lambda e: e.execution is None)
    list_events.wait_for(lambda e: not e.jobs)

    job = iot.describe_job(jobId=job_id)["job"]
    assert job["status"] == "COMPLETED"
    assert job["jobProcessDetails"]["numberOfSucceededThings"] == 1
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 0
    assert "completedAt" in job
    execution = iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
    assert execution["statusDetails"] == {"detailsMap": {"result": "installed 2.0"}}
    assert execution["versionNumber"] == 3


def test_v2_rejections_are_modeled(iot, device, unique):
    thing, client, _next_events, _list_events = device
    job_id = f"{unique}-job"
    iot.create_job(jobId=job_id, document="{}", targets=[_thing_arn(thing)])
    with pytest.raises(V2ServiceException) as mismatch:
        client.update_job_execution(
            iotjobs.UpdateJobExecutionRequest(
                thing_name=thing, job_id=job_id, status="IN_PROGRESS", expected_version=42
            )
        ).result(10)
    error = mismatch.value.modeled_error
    assert (error.code, error.execution_state.status, error.execution_state.version_number) == (
        "VersionMismatch",
        "QUEUED",
        1,
    )

    with pytest.raises(V2ServiceException) as missing:
        client.describe_job_execution(
            iotjobs.DescribeJobExecutionRequest(thing_name=thing, job_id="no-such-job")
        ).result(10)
    assert missing.value.modeled_error.code == "ResourceNotFound"
    assert missing.value.modeled_error.execution_state is None
