"""The older IotJobsClient (V1) flow: explicit subscriptions, publishes, callbacks."""

from awscrt import mqtt
from awsiot import iotjobs

from .clients import Inbox, crt_connection


def test_v1_device_runs_a_job_to_completion(server, iot, unique):
    thing = f"{unique}-v1"
    iot.create_thing(thingName=thing)
    with crt_connection(server.mqtt_host, server.mqtt_port, thing) as connection:
        jobs = iotjobs.IotJobsClient(connection)
        inbox = Inbox()
        qos = mqtt.QoS.AT_LEAST_ONCE
        subscriptions = [
            jobs.subscribe_to_next_job_execution_changed_events(
                iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
                qos,
                lambda event: inbox.put(("notify-next", event)),
            ),
            jobs.subscribe_to_get_pending_job_executions_accepted(
                iotjobs.GetPendingJobExecutionsSubscriptionRequest(thing_name=thing),
                qos,
                lambda response: inbox.put(("pending", response)),
            ),
            jobs.subscribe_to_start_next_pending_job_execution_accepted(
                iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing),
                qos,
                lambda response: inbox.put(("started", response)),
            ),
            jobs.subscribe_to_update_job_execution_accepted(
                iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+"),
                qos,
                lambda response: inbox.put(("updated", response)),
            ),
            jobs.subscribe_to_update_job_execution_rejected(
                iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+"),
                qos,
                lambda error: inbox.put(("update-rejected", error)),
            ),
        ]
        for future, _topic in subscriptions:
            future.result(10)

        # V1 requests may carry no clientToken at all.
        jobs.publish_get_pending_job_executions(
            iotjobs.GetPendingJobExecutionsRequest(thing_name=thing), qos
        ).result(10)
        _, pending = inbox.wait_for(lambda item: item[0] == "pending")
        assert pending is not None, "the SDK could not parse the reply"
        assert (pending.queued_jobs, pending.in_progress_jobs, pending.client_token) == ([], [], None)

        job_id = f"{unique}-job"
        iot.create_job(
            jobId=job_id,
            document='{"step": "one"}',
            targets=[f"arn:aws:iot:us-east-1:123456789012:thing/{thing}"],
        )
        _, event = inbox.wait_for(lambda item: item[0] == "notify-next" and item[1].execution)
        assert event.execution.job_id == job_id

        jobs.publish_start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name=thing, client_token="start-1"), qos
        ).result(10)
        _, started = inbox.wait_for(lambda item: item[0] == "started")
        assert (started.client_token, started.execution.status, started.execution.job_document) == (
            "start-1",
            "IN_PROGRESS",
            {"step": "one"},
        )

        jobs.publish_update_job_execution(
            iotjobs.UpdateJobExecutionRequest(
                thing_name=thing,
                job_id=job_id,
                status="FAILED",
                expected_version=str(started.execution.version_number),
                status_details={"reason": "disk full"},
                client_token="upd-1",
            ),
            qos,
        ).result(10)
        _, updated = inbox.wait_for(lambda item: item[0] == "updated")
        assert updated.client_token == "upd-1"
        inbox.wait_for(lambda item: item[0] == "notify-next" and item[1].execution is None)

        # A terminal execution cannot move again.
        jobs.publish_update_job_execution(
            iotjobs.UpdateJobExecutionRequest(
                thing_name=thing, job_id=job_id, status="SUCCEEDED", client_token="upd-2"
            ),
            qos,
        ).result(10)
        _, rejected = inbox.wait_for(lambda item: item[0] == "update-rejected")
        assert (rejected.code, rejected.client_token, rejected.execution_state.status) == (
            "InvalidStateTransition",
            "upd-2",
            "FAILED",
        )

    job = iot.describe_job(jobId=job_id)["job"]
    assert job["status"] == "COMPLETED"
    assert job["jobProcessDetails"]["numberOfFailedThings"] == 1
