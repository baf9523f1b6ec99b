"""A device reaches only its own jobs topics, in the allowed direction; refused publishes change nothing."""

import json

import pytest

from ..clients import subscribe
from ._support import NOTIFY_NEXT, admin_client, client_token, create_job, jobs_prefix


def execution_state(iot, job_id, thing):
    execution = iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
    return execution["status"], execution["versionNumber"]


@pytest.mark.parametrize(
    "topic_filter",
    [
        "{other}/jobs/#",
        "{other}/jobs/notify",
        "{other}/jobs/notify-next",
        "{other}/jobs/get/accepted",
        "{other}/jobs/+/update/rejected",
        "+/jobs/notify",
        "+/jobs/notify-next",
        "+/jobs/#",
        "+/jobs/get/+",
        "#",
    ],
)
def test_a_device_cannot_subscribe_to_other_things_topics(server, iot, unique, connect, topic_filter):
    mine, other = connect("me"), connect("them")
    full = "$aws/things/" + topic_filter.format(other=other.thing)

    granted = subscribe(mine.client, full)[0]
    if server.broker == "embedded":
        assert granted.is_failure, full
    # The refusal leaves the connection usable.
    assert mine.marker()["queuedJobs"] == []
    if server.broker != "embedded":
        # Mosquitto may grant the SUBACK and apply its ACL on delivery: none of the other's traffic arrives.
        mark, other_mark = mine.settle(), other.settle()
        job_id = create_job(iot, f"{unique}-theirs", [other.thing])
        other.wait_notification(other_mark, NOTIFY_NEXT)
        other.rejected(f"{job_id}/update", {"status": "CANCELED"})
        other.accepted(f"{job_id}/update", {"status": "SUCCEEDED"})
        other.marker()
        mine.marker()  # published after all of the other's traffic
        assert [topic for topic, _ in mine.since(mark) if not topic.startswith(mine.prefix + "/")] == []


def test_refused_publishes_change_nothing(server, iot, connect, unique):
    intruder, victim = connect("me"), connect("them")
    theirs = create_job(iot, f"{unique}-theirs", [victim.thing])
    mine = create_job(iot, f"{unique}-mine", [intruder.thing])
    forged = {"clientToken": "forged", "status": "SUCCEEDED"}
    refused = [
        # another thing's requests, including one that would be InvalidTopic for it
        *(f"{victim.prefix}/{path}" for path in ("get", "start-next", f"{theirs}/get", "$next/get")),
        f"{victim.prefix}/{theirs}/update",
        f"{victim.prefix}/nothing/here",
        # reply topics, its own and another thing's
        *(
            intruder.topic(path)
            for path in (
                "get/accepted",
                "get/rejected",
                "start-next/accepted",
                f"{mine}/get/accepted",
                "$next/get/rejected",
                f"{mine}/update/accepted",
                f"{mine}/update/rejected",
                "notify",
                "notify-next",
                "nothing/here/rejected",
            )
        ),
        victim.topic("notify-next"),
        victim.topic(f"{theirs}/update/accepted"),
        # events
        f"$aws/events/job/{mine}/completed",
        f"$aws/events/jobExecution/{mine}/succeeded",
        f"$aws/events/jobExecution/{theirs}/canceled",
    ]
    with admin_client(server, f"{unique}-observer") as observer:
        for topic_filter in (f"{jobs_prefix(intruder.thing)}/#", f"{victim.prefix}/#", "$aws/events/#"):
            assert not subscribe(observer, topic_filter)[0].is_failure
        # The observer has its own delivery queue: let it see those round trips too.
        for device in (intruder, victim):
            settled = device.request("get").body["clientToken"]
            observer.inbox.wait_for(lambda m, token=settled: client_token(m[1]) == token and "/get/" in m[0])
        intruder_mark, victim_mark = intruder.mark(), victim.mark()
        observer_mark = len(observer.inbox.items)

        for topic in refused:
            intruder.client.publish(topic, json.dumps(forged), qos=1)
        marker = intruder.request("get")  # allowed, and published after every refused one

        # The observer sees the allowed request and its reply, and nothing before them.
        get, accepted = intruder.topic("get"), intruder.topic("get/accepted")
        observer.inbox.wait_for(
            lambda m: m[0] == accepted and json.loads(m[1]).get("clientToken") == marker.body["clientToken"]
        )
        seen = [
            (topic, json.loads(payload))
            for topic, payload in observer.inbox.items[observer_mark:]
            if unique in topic
        ]
        assert [topic for topic, _ in seen] == [get, accepted], seen
        assert all(body.get("clientToken") != "forged" for _, body in seen)

    # (on Mosquitto a device's requests come back to it too: not_echo leaves them out)
    assert intruder.since(intruder_mark, intruder.not_echo) == [
        (accepted, json.dumps(marker.body, separators=(",", ":")).encode())
    ]
    victim.marker()
    assert len(victim.since(victim_mark, victim.not_echo)) == 1  # its own marker reply, nothing else
    assert execution_state(iot, theirs, victim.thing) == ("QUEUED", 1)
    assert execution_state(iot, mine, intruder.thing) == ("QUEUED", 1)
    assert iot.describe_job(jobId=mine)["job"]["status"] == "IN_PROGRESS"
    assert iot.describe_job(jobId=theirs)["job"]["status"] == "IN_PROGRESS"


def test_a_device_receives_only_its_own_replies(iot, connect, unique):
    first, second = connect("one"), connect("two")
    job_id = create_job(iot, f"{unique}-a", [first.thing, second.thing])
    first_mark, second_mark = first.settle(), second.settle()

    first.accepted(f"{job_id}/update", {"status": "SUCCEEDED"})
    first.accepted("start-next")
    second.marker()

    assert all(topic.startswith(first.prefix + "/") for topic, _ in first.since(first_mark))
    # (on Mosquitto a device's requests come back to it too: not_echo leaves them out)
    assert [topic for topic, _ in second.since(second_mark, second.not_echo)] == [
        second.topic("get/accepted")
    ]
