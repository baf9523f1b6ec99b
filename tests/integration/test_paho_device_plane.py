"""paho-mqtt devices against the running service: the $aws path and the topic ACL."""

import json

import pytest

from iot_jobs_bridge.jobs_service.store import Store

from .clients import paho_client, subscribe
from .conftest import ACCESS_KEY_ID, SECRET


def _reply(client, topic, timeout=10.0):
    _, payload = client.inbox.wait_for(lambda m: m[0] == topic, timeout)
    return json.loads(payload)


def test_start_next_then_update_on_one_connection_are_both_answered(server, iot, unique):
    thing = f"{unique}-p"
    iot.create_thing(thingName=thing)
    iot.create_job(
        jobId=f"{unique}-j",
        document='{"a": 1}',
        targets=[f"arn:aws:iot:us-east-1:123456789012:thing/{thing}"],
    )
    prefix = f"$aws/things/{thing}/jobs"
    with paho_client(server.mqtt_host, server.mqtt_port, thing) as device:
        assert subscribe(device, f"{prefix}/#")[0].value == 1
        device.publish(f"{prefix}/start-next", json.dumps({"clientToken": "s1"}), qos=1)
        started = _reply(device, f"{prefix}/start-next/accepted")
        assert started["execution"]["status"] == "IN_PROGRESS"
        # The change was committed before the reply went out: another reader sees it now.
        assert _stored_status(server, f"{unique}-j", thing) == ("IN_PROGRESS", 2)
        device.publish(
            f"{prefix}/{unique}-j/update", json.dumps({"status": "SUCCEEDED", "clientToken": "u1"}), qos=1
        )
        assert _reply(device, f"{prefix}/{unique}-j/update/accepted")["clientToken"] == "u1"
        # A jobs/# subscription never delivers the device's own request topics.
        assert (
            device.inbox.count(lambda m: m[0] in (f"{prefix}/start-next", f"{prefix}/{unique}-j/update")) == 0
        )


def _stored_status(server, job_id, thing):
    store = Store(server.store)  # read past the service, straight from its store
    try:
        row = store.db.row(
            "SELECT status, version_number FROM job_executions WHERE job_id = ? AND thing_name = ?",
            (job_id, thing),
        )
        return (row["status"], row["version_number"])
    finally:
        store.close()


def test_a_device_cannot_touch_another_things_jobs(server, iot, unique):
    mine, theirs = f"{unique}-me", f"{unique}-them"
    for name in (mine, theirs):
        iot.create_thing(thingName=name)
    iot.create_job(
        jobId=f"{unique}-j", document="{}", targets=[f"arn:aws:iot:us-east-1:123456789012:thing/{theirs}"]
    )
    with (
        paho_client(server.mqtt_host, server.mqtt_port, mine) as intruder,
        paho_client(
            server.mqtt_host, server.mqtt_port, f"{unique}-monitor", username=ACCESS_KEY_ID, password=SECRET
        ) as monitor,
    ):
        assert subscribe(monitor, f"$aws/things/{theirs}/jobs/#")[0].value == 1
        assert subscribe(intruder, f"$aws/things/{theirs}/jobs/#")[0].is_failure
        assert subscribe(intruder, "$aws/things/+/jobs/notify")[0].is_failure
        intruder.publish(
            f"$aws/things/{theirs}/jobs/{unique}-j/update", json.dumps({"status": "SUCCEEDED"}), qos=1
        )
        intruder.publish(f"$aws/things/{theirs}/jobs/notify-next", "{}", qos=1)
        # The intruder's own, allowed request is still served after the refusals.
        assert subscribe(intruder, f"$aws/things/{mine}/jobs/get/+")[0].value == 1
        intruder.publish(f"$aws/things/{mine}/jobs/get", json.dumps({"clientToken": "g"}), qos=1)
        assert _reply(intruder, f"$aws/things/{mine}/jobs/get/accepted")["clientToken"] == "g"
        # Nothing the intruder sent reached the owner's topics (the job's own
        # creation notifications may still arrive and carry an execution).
        assert monitor.inbox.count(lambda m: m[1] == b"{}" or m[0].endswith("/update")) == 0
    execution = iot.describe_job_execution(jobId=f"{unique}-j", thingName=theirs)["execution"]
    assert (execution["status"], execution["versionNumber"]) == ("QUEUED", 1)


def test_unregistered_client_and_wrong_admin_password_are_refused(server, unique):
    with (
        pytest.raises(ConnectionRefusedError),
        paho_client(server.mqtt_host, server.mqtt_port, f"{unique}-nobody"),
    ):
        pass
    with (
        pytest.raises(ConnectionRefusedError),
        paho_client(server.mqtt_host, server.mqtt_port, "x", username=ACCESS_KEY_ID, password="wrong"),
    ):
        pass


def test_monitor_with_admin_key_sees_replies_and_notifications(server, iot, unique):
    thing = f"{unique}-m"
    iot.create_thing(thingName=thing)
    with paho_client(
        server.mqtt_host, server.mqtt_port, f"{unique}-mon", username=ACCESS_KEY_ID, password=SECRET
    ) as monitor:
        subscribe(monitor, f"$aws/things/{thing}/jobs/#")
        iot.create_job(
            jobId=f"{unique}-j",
            document='{"k": "v"}',
            targets=[f"arn:aws:iot:us-east-1:123456789012:thing/{thing}"],
        )
        notify_next = _reply(monitor, f"$aws/things/{thing}/jobs/notify-next")
        assert notify_next["execution"]["jobDocument"] == {"k": "v"}
        assert isinstance(notify_next["timestamp"], int)
