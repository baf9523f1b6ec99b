"""The V1 ``IotJobsClient``: explicit subscriptions, and requests with no clientToken at all."""

import json
from dataclasses import dataclass

import pytest
from awscrt import mqtt
from awsiot import iotjobs

from ..clients import Inbox, crt_connection, subscribe
from ._support import admin_client, create_job, is_int, jobs_prefix, sdk_metrics_off

QOS = mqtt.QoS.AT_LEAST_ONCE


@dataclass
class V1Device:
    thing: str
    jobs: iotjobs.IotJobsClient
    inbox: Inbox  # (label, parsed model) from the SDK callbacks
    monitor: object  # an admin client seeing the raw payloads on the thing's jobs topics

    def send(self, publish, request, label: str, path: str):
        """Publish a request to ``jobs/<path>``; return (outcome, parsed model, raw reply payload)."""
        mark = len(self.inbox.items)
        raw_mark = len(self.monitor.inbox.items)
        publish(request, QOS).result(10)
        labels = (f"{label}-accepted", f"{label}-rejected")
        self.inbox.wait_for(lambda _: any(i[0] in labels for i in self.inbox.items[mark:]))
        outcome, model = next(i for i in self.inbox.items[mark:] if i[0] in labels)
        suffix = outcome.rsplit("-", 1)[1]
        reply_topic = f"{jobs_prefix(self.thing)}/{path}/{suffix}"
        self.monitor.inbox.wait_for(
            lambda _: any(t == reply_topic for t, _p in self.monitor.inbox.items[raw_mark:])
        )
        raw = json.loads(next(p for t, p in self.monitor.inbox.items[raw_mark:] if t == reply_topic))
        assert is_int(raw["timestamp"]), raw
        return suffix, model, raw

    def pending(self):
        return self.send(
            self.jobs.publish_get_pending_job_executions,
            iotjobs.GetPendingJobExecutionsRequest(thing_name=self.thing),
            "pending",
            "get",
        )

    def events(self, label: str) -> list:
        return [model for name, model in self.inbox.items if name == label]


@pytest.fixture
def v1(server, iot, unique):
    thing = f"{unique}-v1"
    iot.create_thing(thingName=thing)
    with (
        crt_connection(
            server.mqtt_host, server.mqtt_port, thing, disable_metrics=sdk_metrics_off(server)
        ) as connection,
        admin_client(server, f"{unique}-monitor") as monitor,
    ):
        assert not subscribe(monitor, f"{jobs_prefix(thing)}/+/+")[0].is_failure
        assert not subscribe(monitor, f"{jobs_prefix(thing)}/+/+/+")[0].is_failure
        jobs = iotjobs.IotJobsClient(connection)
        inbox = Inbox()

        def keep(label):
            return lambda model: inbox.put((label, model))

        thing_only = {"thing_name": thing}
        any_job = {"thing_name": thing, "job_id": "+"}
        replies = {
            "pending": (
                jobs.subscribe_to_get_pending_job_executions_accepted,
                jobs.subscribe_to_get_pending_job_executions_rejected,
                iotjobs.GetPendingJobExecutionsSubscriptionRequest(**thing_only),
            ),
            "start": (
                jobs.subscribe_to_start_next_pending_job_execution_accepted,
                jobs.subscribe_to_start_next_pending_job_execution_rejected,
                iotjobs.StartNextPendingJobExecutionSubscriptionRequest(**thing_only),
            ),
            "describe": (
                jobs.subscribe_to_describe_job_execution_accepted,
                jobs.subscribe_to_describe_job_execution_rejected,
                iotjobs.DescribeJobExecutionSubscriptionRequest(**any_job),
            ),
            "update": (
                jobs.subscribe_to_update_job_execution_accepted,
                jobs.subscribe_to_update_job_execution_rejected,
                iotjobs.UpdateJobExecutionSubscriptionRequest(**any_job),
            ),
        }
        futures = [
            jobs.subscribe_to_job_executions_changed_events(
                iotjobs.JobExecutionsChangedSubscriptionRequest(**thing_only), QOS, keep("notify")
            ),
            jobs.subscribe_to_next_job_execution_changed_events(
                iotjobs.NextJobExecutionChangedSubscriptionRequest(**thing_only), QOS, keep("notify-next")
            ),
        ]
        for label, (accepted, rejected, request) in replies.items():
            futures.append(accepted(request, QOS, keep(f"{label}-accepted")))
            futures.append(rejected(request, QOS, keep(f"{label}-rejected")))
        for future, _topic in futures:
            future.result(10)
        yield V1Device(thing, jobs, inbox, monitor)


def test_requests_without_a_client_token_get_replies_without_one(iot, v1, unique):
    outcome, pending, raw = v1.pending()
    assert outcome == "accepted" and pending is not None, "the SDK could not parse the reply"
    assert (pending.in_progress_jobs, pending.queued_jobs, pending.client_token) == ([], [], None)
    assert raw == {"inProgressJobs": [], "queuedJobs": [], "timestamp": raw["timestamp"]}

    job_id = create_job(iot, f"{unique}-a", [v1.thing], document='{"v": 1}')
    v1.inbox.wait_for(lambda item: item[0] == "notify-next" and item[1].execution is not None)

    outcome, described, raw = v1.send(
        v1.jobs.publish_describe_job_execution,
        iotjobs.DescribeJobExecutionRequest(thing_name=v1.thing, job_id=job_id),
        "describe",
        f"{job_id}/get",
    )
    assert outcome == "accepted" and "clientToken" not in raw
    assert (described.execution.job_id, described.execution.job_document) == (job_id, {"v": 1})

    outcome, started, raw = v1.send(
        v1.jobs.publish_start_next_pending_job_execution,
        iotjobs.StartNextPendingJobExecutionRequest(thing_name=v1.thing, status_details={"p": "0"}),
        "start",
        "start-next",
    )
    assert outcome == "accepted" and "clientToken" not in raw
    assert (started.execution.status, started.execution.version_number) == ("IN_PROGRESS", 2)

    def update(status, **fields):
        return v1.send(
            v1.jobs.publish_update_job_execution,
            iotjobs.UpdateJobExecutionRequest(thing_name=v1.thing, job_id=job_id, status=status, **fields),
            "update",
            f"{job_id}/update",
        )

    outcome, _, raw = update("IN_PROGRESS", status_details={"p": "50"})
    assert (outcome, set(raw)) == ("accepted", {"timestamp"})

    outcome, error, raw = update("SUCCEEDED", expected_version="2")
    assert (outcome, error.code, error.client_token) == ("rejected", "VersionMismatch", None)
    assert "clientToken" not in raw
    assert raw["executionState"] == {
        "status": "IN_PROGRESS",
        "statusDetails": {"p": "50"},
        "versionNumber": 3,
    }

    outcome, _, raw = update("SUCCEEDED", expected_version=3, include_job_execution_state=True)
    assert (outcome, raw["executionState"]["status"], "clientToken" in raw) == (
        "accepted",
        "SUCCEEDED",
        False,
    )
    v1.inbox.wait_for(lambda item: item[0] == "notify-next" and item[1].execution is None)
    v1.inbox.wait_for(lambda item: item[0] == "notify" and not item[1].jobs)

    outcome, error, raw = update("FAILED")
    assert (outcome, error.code, error.execution_state.status) == (
        "rejected",
        "InvalidStateTransition",
        "SUCCEEDED",
    )
    assert "clientToken" not in raw

    outcome, error, raw = v1.send(
        v1.jobs.publish_describe_job_execution,
        iotjobs.DescribeJobExecutionRequest(thing_name=v1.thing, job_id=job_id),
        "describe",
        f"{job_id}/get",
    )
    assert (outcome, error.code, "clientToken" in raw) == ("rejected", "TerminalStateReached", False)


def test_a_client_token_is_echoed_to_v1(iot, v1, unique):
    create_job(iot, f"{unique}-a", [v1.thing])
    outcome, started, raw = v1.send(
        v1.jobs.publish_start_next_pending_job_execution,
        iotjobs.StartNextPendingJobExecutionRequest(thing_name=v1.thing, client_token="v1-token"),
        "start",
        "start-next",
    )
    assert (outcome, started.client_token, raw["clientToken"]) == ("accepted", "v1-token", "v1-token")


def test_v1_notification_rows(iot, v1, unique):
    first = create_job(iot, f"{unique}-a", [v1.thing])  # nothing was pending: both
    v1.inbox.wait_for(lambda item: item[0] == "notify-next")
    second = create_job(iot, f"{unique}-b", [v1.thing])  # behind the head: notify only
    v1.inbox.wait_for(lambda item: item[0] == "notify" and len(item[1].jobs.get("QUEUED", [])) == 2)
    v1.send(
        v1.jobs.publish_start_next_pending_job_execution,
        iotjobs.StartNextPendingJobExecutionRequest(thing_name=v1.thing),
        "start",
        "start-next",
    )  # the head starts: nothing
    v1.pending()
    assert [e.execution.job_id for e in v1.events("notify-next")] == [first]
    assert [[s.job_id for s in e.jobs["QUEUED"]] for e in v1.events("notify")] == [[first], [first, second]]

    v1.send(
        v1.jobs.publish_update_job_execution,
        iotjobs.UpdateJobExecutionRequest(thing_name=v1.thing, job_id=first, status="SUCCEEDED"),
        "update",
        f"{first}/update",
    )  # the head ends: both
    v1.pending()
    assert [e.execution.job_id for e in v1.events("notify-next")] == [first, second]
    last = v1.events("notify")[-1]
    assert len(v1.events("notify")) == 3
    assert (list(last.jobs), [s.job_id for s in last.jobs["QUEUED"]]) == (["QUEUED"], [second])
