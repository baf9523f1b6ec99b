"""``$aws/events/...`` as an admin client sees them, each checked against the control plane on arrival."""

import time
import uuid

import pytest

from ..clients import subscribe
from ._support import create_job, group_arn, is_int, thing_arn

JOB_COUNTERS = {
    "numberOfCanceledThings",
    "numberOfRejectedThings",
    "numberOfFailedThings",
    "numberOfRemovedThings",
    "numberOfSucceededThings",
}


def execution_topic(job_id, operation):
    return f"$aws/events/jobExecution/{job_id}/{operation}"


def job_topic(job_id, operation):
    return f"$aws/events/job/{job_id}/{operation}"


def check_execution_event(event, job_id, thing, status, details=None):
    body = event.body
    expected = {"eventType", "eventId", "timestamp", "operation", "jobId", "thingArn", "status"}
    assert set(body) == expected | ({"statusDetails"} if details else set()), body
    assert body["eventType"] == "JOB_EXECUTION"
    uuid.UUID(body["eventId"])
    assert is_int(body["timestamp"]) and abs(body["timestamp"] - time.time()) < 600
    assert body["operation"] == event.topic.rsplit("/", 1)[1]
    assert (body["jobId"], body["thingArn"], body["status"]) == (job_id, thing_arn(thing), status)
    if details:
        assert body["statusDetails"] == details


def check_job_event(event, job_id, status, *, created_at_ms, targets, description):
    body = event.body
    assert body["eventType"] == "JOB"
    uuid.UUID(body["eventId"])
    assert is_int(body["timestamp"]) and abs(body["timestamp"] - time.time()) < 600  # seconds
    assert body["operation"] == event.topic.rsplit("/", 1)[1]
    assert (body["jobId"], body["status"]) == (job_id, status)
    assert (body["targets"], body["description"]) == (targets, description)
    assert body["targetSelection"] in ("SNAPSHOT", "CONTINUOUS")
    assert is_int(body["createdAt"]) and body["createdAt"] == created_at_ms  # milliseconds
    assert is_int(body["lastUpdatedAt"]) and body["lastUpdatedAt"] >= body["createdAt"]
    assert abs(body["lastUpdatedAt"] / 1000 - time.time()) < 600


def created_ms(iot, job_id):
    return int(iot.describe_job(jobId=job_id)["job"]["createdAt"].timestamp() * 1000)


def test_succeeded_then_completed(iot, connect, watcher, unique):
    device = connect("dev")
    job_id = create_job(iot, f"{unique}-a", [device.thing], description="firmware 2.0")
    created_at = created_ms(iot, job_id)
    device.accepted("start-next")
    device.accepted(f"{job_id}/update", {"status": "IN_PROGRESS", "statusDetails": {"p": "50"}})

    device.accepted(f"{job_id}/update", {"status": "SUCCEEDED", "statusDetails": {"result": "ok"}})

    succeeded = watcher.wait(execution_topic(job_id, "succeeded"))
    check_execution_event(succeeded, job_id, device.thing, "SUCCEEDED", {"result": "ok"})
    assert (succeeded.seen["status"], succeeded.seen["versionNumber"]) == ("SUCCEEDED", 4)

    completed = watcher.wait(job_topic(job_id, "completed"))
    check_job_event(
        completed,
        job_id,
        "COMPLETED",
        created_at_ms=created_at,
        targets=[thing_arn(device.thing)],
        description="firmware 2.0",
    )
    assert completed.body["targetSelection"] == "SNAPSHOT"
    assert is_int(completed.body["completedAt"]) and completed.body["completedAt"] >= created_at
    assert completed.body["jobProcessDetails"] == {
        name: int(name == "numberOfSucceededThings") for name in JOB_COUNTERS
    }
    assert "comment" not in completed.body
    assert completed.seen["status"] == "COMPLETED"
    # No events for QUEUED or IN_PROGRESS: only these two were published for the job.
    device.marker()
    assert watcher.topics() == [execution_topic(job_id, "succeeded"), job_topic(job_id, "completed")]


def test_failed_and_rejected_are_counted_on_completion(iot, connect, watcher, unique):
    failing, rejecting = connect("f"), connect("r")
    job_id = create_job(iot, f"{unique}-a", [failing.thing, rejecting.thing], description="d")

    failing.accepted(f"{job_id}/update", {"status": "FAILED"})
    failed = watcher.wait(execution_topic(job_id, "failed"))
    check_execution_event(failed, job_id, failing.thing, "FAILED")
    assert failed.seen["status"] == "FAILED"
    rejecting.accepted(f"{job_id}/update", {"status": "REJECTED", "statusDetails": {"why": "low battery"}})
    rejected = watcher.wait(execution_topic(job_id, "rejected"))
    check_execution_event(rejected, job_id, rejecting.thing, "REJECTED", {"why": "low battery"})
    assert rejected.seen["status"] == "REJECTED"

    completed = watcher.wait(job_topic(job_id, "completed"))
    assert completed.body["jobProcessDetails"] == {
        name: int(name in ("numberOfFailedThings", "numberOfRejectedThings")) for name in JOB_COUNTERS
    }
    assert completed.seen["status"] == "COMPLETED"
    assert completed.seen["jobProcessDetails"]["numberOfFailedThings"] == 1


def test_cancel_job_and_cancel_job_execution(iot, connect, watcher, unique):
    queued, running, other = connect("q"), connect("r"), connect("o")
    targets = [queued.thing, running.thing]
    job_id = create_job(iot, f"{unique}-a", targets, description="to cancel")
    created_at = created_ms(iot, job_id)
    running.accepted(f"{job_id}/update", {"status": "IN_PROGRESS"})

    iot.cancel_job(jobId=job_id, comment="maintenance window", reasonCode="OPS_1")

    canceled_execution = watcher.wait(execution_topic(job_id, "canceled"))
    check_execution_event(canceled_execution, job_id, queued.thing, "CANCELED")
    assert canceled_execution.seen["status"] == "CANCELED"
    for operation, status in (
        ("cancellation_in_progress", "CANCELLATION_IN_PROGRESS"),
        ("canceled", "CANCELED"),
    ):
        event = watcher.wait(job_topic(job_id, operation))
        check_job_event(
            event,
            job_id,
            status,
            created_at_ms=created_at,
            targets=[thing_arn(t) for t in targets],
            description="to cancel",
        )
        assert event.body["comment"] == "maintenance window"
        assert "jobProcessDetails" not in event.body and "completedAt" not in event.body
        assert (event.seen["comment"], event.seen["reasonCode"]) == ("maintenance window", "OPS_1")
        if operation == "canceled":
            assert event.seen["status"] == "CANCELED"

    # Left running by a cancel without force, the execution still ends on the device's word.
    running.accepted(f"{job_id}/update", {"status": "SUCCEEDED"})
    watcher.wait(execution_topic(job_id, "succeeded"))

    single = create_job(iot, f"{unique}-b", [other.thing], description="one")
    iot.cancel_job_execution(jobId=single, thingName=other.thing, statusDetails={"by": "ops"})
    event = watcher.wait(execution_topic(single, "canceled"))
    check_execution_event(event, single, other.thing, "CANCELED", {"by": "ops"})
    assert event.seen["status"] == "CANCELED"


def test_removed_from_a_continuous_jobs_group(iot, connect, watcher, unique):
    device = connect("dev")
    group = f"{unique}-g"
    iot.create_thing_group(thingGroupName=group)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=device.thing)
    job_id = f"{unique}-cont"
    iot.create_job(
        jobId=job_id, document="{}", targets=[group_arn(group)], targetSelection="CONTINUOUS", description="c"
    )

    iot.remove_thing_from_thing_group(thingGroupName=group, thingName=device.thing)

    removed = watcher.wait(execution_topic(job_id, "removed"))
    check_execution_event(removed, job_id, device.thing, "REMOVED")
    assert removed.seen["status"] == "REMOVED"


@pytest.mark.parametrize("cancel_first", [False, True], ids=["forced", "after-cancel"])
def test_delete_job_and_delete_job_execution(iot, connect, watcher, unique, cancel_first):
    first, second = connect("one"), connect("two")
    targets = [first.thing, second.thing]
    job_id = create_job(iot, f"{unique}-a", targets, description="to delete")
    created_at = created_ms(iot, job_id)
    first.accepted(f"{job_id}/update", {"status": "IN_PROGRESS"})
    if cancel_first:
        iot.cancel_job(jobId=job_id, force=True, comment="replaced")
        watcher.wait(job_topic(job_id, "canceled"))

    iot.delete_job(jobId=job_id, force=not cancel_first)

    for device, status in ((first, "IN_PROGRESS"), (second, "QUEUED")):
        deleted = watcher.events.wait_for(
            lambda e, d=device: (
                e.topic == execution_topic(job_id, "deleted") and e.body["thingArn"] == thing_arn(d.thing)
            )
        )
        check_execution_event(deleted, job_id, device.thing, "CANCELED" if cancel_first else status)
        assert deleted.seen == {"error": "ResourceNotFoundException"}
    for operation, status in (("deletion_in_progress", "DELETION_IN_PROGRESS"), ("deleted", "DELETED")):
        event = watcher.wait(job_topic(job_id, operation))
        check_job_event(
            event,
            job_id,
            status,
            created_at_ms=created_at,
            targets=[thing_arn(t) for t in targets],
            description="to delete",
        )
        if cancel_first:
            assert event.body["comment"] == "replaced"
        else:
            assert "comment" not in event.body
    assert watcher.wait(job_topic(job_id, "deletion_in_progress")).seen.get("status", "gone") in (
        "DELETION_IN_PROGRESS",
        "gone",
    )
    assert watcher.wait(job_topic(job_id, "deleted")).seen == {"error": "ResourceNotFoundException"}

    single = create_job(iot, f"{unique}-b", [first.thing], description="one")
    iot.delete_job_execution(jobId=single, thingName=first.thing, executionNumber=1)
    deleted = watcher.wait(execution_topic(single, "deleted"))
    check_execution_event(deleted, single, first.thing, "QUEUED")
    assert deleted.seen == {"error": "ResourceNotFoundException"}


def test_a_device_cannot_subscribe_to_events(server, iot, device, watcher, unique):
    for topic_filter in ("$aws/events/#", "$aws/events/job/+/completed", "$aws/events/jobExecution/#"):
        granted = subscribe(device.client, topic_filter)[0]
        if server.broker == "embedded":
            assert granted.is_failure, topic_filter
    if server.broker != "embedded":
        # Mosquitto may grant the SUBACK and apply its ACL on delivery: no event reaches the device.
        mark = device.settle()
        job_id = create_job(iot, f"{unique}-a", [device.thing])
        device.accepted(f"{job_id}/update", {"status": "SUCCEEDED"})
        watcher.wait(job_topic(job_id, "completed"))
        device.marker()  # published after the events
        assert not device.since(mark, lambda m: m[0].startswith("$aws/events/"))
