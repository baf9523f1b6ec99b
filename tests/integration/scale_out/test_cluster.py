"""``iotjobs cluster up``: two workers on one PostgreSQL store, devices on a three-node NATS cluster."""

from __future__ import annotations

import json
import os
import threading
from types import SimpleNamespace

import pytest

from ..clients import Inbox, paho_client, subscribe
from ..conftest import ACCESS_KEY_ID, SECRET
from ..console.helpers import signed_in
from .conftest import run_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from run_cluster(tmp_path_factory.mktemp("cluster"))


def test_the_first_line_says_where_every_worker_and_node_is(cluster):
    where = cluster.where
    assert len(where["http"]) == 2 and all(url.startswith("http://127.0.0.1:") for url in where["http"])
    assert len(where["mqtt"]) == 3 and all(url.startswith("mqtt://127.0.0.1:") for url in where["mqtt"])
    pids = where["pids"]
    assert len(pids["workers"]) == 2 and len(pids["brokers"]) == 3
    for pid in [*pids["workers"], *pids["brokers"], pids["store"]]:
        os.kill(pid, 0)  # alive


def test_a_job_created_through_one_worker_is_seen_and_canceled_through_the_other(cluster, unique):
    first, second = cluster.iot(0), cluster.iot(1)
    thing = first.create_thing(thingName=f"{unique}-dev")
    first.create_job(jobId=f"{unique}-job", targets=[thing["thingArn"]], document='{"step": 1}')
    described = second.describe_job(jobId=f"{unique}-job")["job"]
    assert described["status"] == "IN_PROGRESS"
    assert second.get_job_document(jobId=f"{unique}-job")["document"] == '{"step": 1}'
    second.cancel_job(jobId=f"{unique}-job")
    assert first.describe_job(jobId=f"{unique}-job")["job"]["status"] == "CANCELED"


def test_a_device_on_any_node_gets_its_jobs_through_any_worker(cluster, unique):
    iot = cluster.iot(1)
    arns = [iot.create_thing(thingName=f"{unique}-{n}")["thingArn"] for n in range(3)]
    iot.create_job(jobId=f"{unique}-job", targets=arns, document='{"go": true}')
    for node in range(3):
        name = f"{unique}-{node}"
        with paho_client(*cluster.node(node), name) as device:
            own = f"$aws/things/{name}/jobs"
            assert not subscribe(device, f"{own}/#")[0].is_failure
            update = {"status": "SUCCEEDED", "includeJobExecutionState": True}
            device.publish(f"{own}/{unique}-job/update", json.dumps(update), qos=1)
            _, payload = device.inbox.wait_for(
                lambda m, own=own: m[0] == f"{own}/{unique}-job/update/accepted"
            )
            assert json.loads(payload)["executionState"]["status"] == "SUCCEEDED"
    assert cluster.iot(0).describe_job(jobId=f"{unique}-job")["job"]["status"] == "COMPLETED"


def test_a_device_is_kept_to_its_own_topics_and_an_unknown_client_is_refused(cluster, unique):
    iot = cluster.iot(0)
    for name in ("a", "b"):
        iot.create_thing(thingName=f"{unique}-{name}")
    a_name, b_name = f"{unique}-a", f"{unique}-b"
    with paho_client(*cluster.node(0), a_name) as a, paho_client(*cluster.node(1), b_name) as b:
        assert subscribe(a, f"$aws/things/{b_name}/jobs/#")[0].is_failure
        assert not subscribe(b, f"$aws/things/{b_name}/jobs/#")[0].is_failure
        a.publish(f"$aws/things/{b_name}/jobs/get", json.dumps({"clientToken": "from-a"}), qos=1)
        # b's own request, answered after a's publish reached the cluster, shows the way is open.
        b.publish(f"$aws/things/{b_name}/jobs/get", json.dumps({"clientToken": "own"}), qos=1)
        b.inbox.wait_for(lambda m: m[0].endswith("/get/accepted") and b"own" in m[1])
        assert not [m for m in b.inbox.items if b"from-a" in m[1]]
    with pytest.raises(ConnectionRefusedError), paho_client(*cluster.node(2), f"{unique}-nobody"):
        pass


def test_the_admin_key_over_mqtt_sees_every_thing(cluster, unique):
    iot = cluster.iot(0)
    name = f"{unique}-watched"
    iot.create_thing(thingName=name)
    with paho_client(*cluster.node(2), "monitor", username=ACCESS_KEY_ID, password=SECRET) as monitor:
        assert not subscribe(monitor, "$aws/things/+/jobs/#")[0].is_failure
        with paho_client(*cluster.node(0), name) as device:
            device.publish(f"$aws/things/{name}/jobs/get", json.dumps({"clientToken": "seen"}), qos=1)
            monitor.inbox.wait_for(lambda m: m[0] == f"$aws/things/{name}/jobs/get/accepted")


def test_every_workers_console_follows_a_job_whichever_worker_changes_it(cluster, unique):
    iot = cluster.iot(0)
    name = f"{unique}-live"
    arn = iot.create_thing(thingName=name)["thingArn"]
    iot.create_job(jobId=f"{unique}-job", targets=[arn], document="{}")
    consoles = [signed_in(SimpleNamespace(http_url=url)) for url in cluster.where["http"]]
    updates = [Inbox() for _ in consoles]

    def follow(console, inbox) -> None:
        with console.stream("GET", f"/console/jobs/{unique}-job/live", timeout=60) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    inbox.put(json.loads(line[6:]))
                    if inbox.items[-1]["status"] == "COMPLETED":
                        return

    readers = [
        threading.Thread(target=follow, args=pair, daemon=True)
        for pair in zip(consoles, updates, strict=True)
    ]
    for reader in readers:
        reader.start()
    for inbox in updates:
        inbox.wait_for(lambda update: "Queued <strong>1</strong>" in update["parts"]["job-summary"])
    with paho_client(*cluster.node(0), name) as device:
        own = f"$aws/things/{name}/jobs"
        assert not subscribe(device, f"{own}/#")[0].is_failure
        device.publish(f"{own}/{unique}-job/update", json.dumps({"status": "SUCCEEDED"}), qos=1)
        device.inbox.wait_for(lambda m: m[0] == f"{own}/{unique}-job/update/accepted")
    for inbox in updates:
        done = inbox.wait_for(lambda update: update["status"] == "COMPLETED")
        assert "Succeeded <strong>1</strong>" in done["parts"]["job-summary"]
    for reader, console in zip(readers, consoles, strict=True):
        reader.join(10)
        console.close()
