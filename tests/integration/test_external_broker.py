"""`iotjobs serve --broker external`: the jobs service on Mosquitto, devices connecting to Mosquitto."""

import asyncio
import getpass
import json
import time

import pytest

from iot_jobs_bridge.broker.mosquitto import free_port
from iot_jobs_bridge.device_sdk import AsyncJobsClient, RequestTimedOut
from iot_jobs_bridge.device_sdk.mqtt import connect
from iot_jobs_bridge.device_sdk.testing import FakeDevice, Succeed
from iot_jobs_bridge.jobs_service.ca import CertificateAuthority
from iot_jobs_bridge.jobs_service.device_plane.mqtt_bridge import MqttBridge
from tests.certs import TestCA

from .brokers import start_mosquitto
from .clients import paho_client, provision_certificate, subscribe
from .conftest import start_server

pytestmark = pytest.mark.integration


@pytest.fixture
def mosquitto_port(tmp_path):
    port = free_port("127.0.0.1")
    running = start_mosquitto(f"listener {port} 127.0.0.1\nallow_anonymous true\n", tmp_path / "plain", port)
    yield port
    running.stop()


def test_the_service_runs_jobs_through_mosquitto(tmp_path, mosquitto_port):
    server = start_server(
        tmp_path / "data",
        extra_args=["--broker", "external", "--broker-url", f"mqtt://127.0.0.1:{mosquitto_port}"],
    )
    try:
        assert server.mqtt_port == mosquitto_port, "the ready line names the broker devices use"
        iot = server.iot()
        arn = iot.create_thing(thingName="mosq-dev")["thingArn"]
        endpoint = f"mqtt://127.0.0.1:{mosquitto_port}"
        with paho_client("127.0.0.1", mosquitto_port, "mosq-monitor") as monitor:
            subscribe(monitor, "$aws/things/mosq-dev/jobs/#")

            async def scenario():
                async with FakeDevice("mosq-dev", endpoint, [Succeed({"via": "mosquitto"})]) as device:
                    await device.client.wait_connected(10)
                    await asyncio.to_thread(
                        iot.create_job,
                        jobId="mosq-job",
                        targets=[arn],
                        document=json.dumps({"operation": "x"}),
                    )
                    return await device.wait_for_reports(1)

            reports = asyncio.run(scenario())
            time.sleep(0.5)  # let any stray answer to the service's own replies arrive
            topics = [topic for topic, _ in monitor.inbox.items]
        assert [(r.job_id, r.status) for r in reports] == [("mosq-job", "SUCCEEDED")]
        record = iot.describe_job_execution(jobId="mosq-job", thingName="mosq-dev")["execution"]
        assert record["status"] == "SUCCEEDED"
        assert record["statusDetails"]["detailsMap"] == {"via": "mosquitto"}
        # The service sees its own replies on Mosquitto and must not answer them.
        assert not [t for t in topics if t.endswith("/rejected")], topics
        assert any(t.endswith("/update/accepted") for t in topics)
    finally:
        server.stop()


def test_the_service_reads_requests_only_not_its_own_replies_back(mosquitto_port):
    # With a jobs/# subscription Mosquitto sends the service every message it publishes:
    # twice the traffic, and past Mosquitto's queue limit requests were dropped with them.
    async def scenario():
        delivered: list[str] = []
        request_in = asyncio.Event()

        def deliver(topic: str, _payload: bytes) -> None:
            delivered.append(topic)
            if topic.endswith("/jobs/get"):
                request_in.set()

        bridge = MqttBridge("127.0.0.1", mosquitto_port, username=None, password=None, deliver=deliver)
        await bridge.start()
        try:
            prefix = "$aws/things/echo-dev/jobs"
            replies = [f"{prefix}/notify", f"{prefix}/notify-next", f"{prefix}/get/accepted"]
            replies += [f"{prefix}/j1/update/accepted", f"{prefix}/start-next/rejected"]
            # Published as the service would; Mosquitto routes each before it acknowledges it.
            replier = await connect(
                "127.0.0.1", mosquitto_port, client_id="replier", on_message=lambda *_: None
            )
            for topic in replies:
                await replier.publish_acked(topic, b"{}")
            await replier.disconnect()
            device = await connect(
                "127.0.0.1", mosquitto_port, client_id="echo-dev", on_message=lambda *_: None
            )
            await device.publish_acked(f"{prefix}/get", b"{}")
            async with asyncio.timeout(10):
                await request_in.wait()
            await device.disconnect()
        finally:
            await bridge.close()
        return delivered

    assert asyncio.run(scenario()) == ["$aws/things/echo-dev/jobs/get"]


def test_a_bad_broker_url_is_refused(tmp_path):
    command = ["--broker", "external", "--broker-url", "http://127.0.0.1:1"]
    server_error = None
    try:
        start_server(tmp_path / "data", extra_args=command, timeout=10)
    except AssertionError as exc:
        server_error = str(exc)
    assert server_error is not None and "must start with mqtt:// or mqtts://" in server_error


@pytest.fixture
def tls_broker(tmp_path):
    """The operator's Mosquitto over TLS, with the service's registry writing its device ACL and CRL.

    The service reaches it as ``iotjobs-service`` with a client certificate from
    the operator's own CA; devices use certificates from the service's CA.
    """
    data_dir, acl_dir = tmp_path / "data", tmp_path / "acl"
    acl_dir.mkdir()
    ca = CertificateAuthority(data_dir)  # made before the broker, which must trust it
    (acl_dir / "acl-devices").write_text("")
    (acl_dir / "crl.pem").write_bytes(ca.revocation_list([]))
    operator = TestCA(tmp_path / "operator")
    server_cert, service_cert = operator.issue("localhost", server=True), operator.issue("iotjobs-service")
    (tmp_path / "acl-service").write_text("user iotjobs-service\ntopic readwrite $aws/#\n")
    service_port, device_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    tls = f"certfile {server_cert.cert}\nkeyfile {server_cert.key}\nrequire_certificate true\n"
    tls += "use_identity_as_username true\n"
    config = (
        f"per_listener_settings true\nuser {getpass.getuser()}\n"
        f"listener {service_port} 127.0.0.1\ncafile {operator.cert}\n{tls}"
        f"acl_file {tmp_path / 'acl-service'}\n"
        f"listener {device_port} 127.0.0.1\ncafile {ca.cert_path}\n{tls}"
        f"acl_file {acl_dir / 'acl-devices'}\ncrlfile {acl_dir / 'crl.pem'}\n"
    )
    mosquitto = start_mosquitto(config, tmp_path / "broker", device_port)
    server = start_server(
        data_dir,
        extra_args=[
            "--broker", "external",
            "--broker-url", f"mqtts://localhost:{service_port}",
            "--broker-ca-file", str(operator.cert),
            "--broker-cert-file", str(service_cert.cert),
            "--broker-key-file", str(service_cert.key),
            "--broker-acl-dir", str(acl_dir),
            "--broker-reload-command", f"kill -HUP {mosquitto.process.pid}",
        ],
    )  # fmt: skip
    server.device_port, server.operator_ca, server.acl_dir = device_port, operator.cert, acl_dir
    yield server
    assert server.stop() == 0
    mosquitto.stop()


def certificate(server, tmp_path, name, *, thing=None, policy=None):
    """A certificate from the control plane (with ``policy`` attached), as device TLS options."""
    made = provision_certificate(
        server.iot(), tmp_path, name, ca_file=server.operator_ca, thing=thing, policy=policy
    )
    return made.tls


def test_over_tls_devices_run_jobs_under_the_acl_the_registry_writes(tmp_path, tls_broker):
    iot = tls_broker.iot()
    arn = iot.create_thing(thingName="ext-dev")["thingArn"]
    tls = certificate(tls_broker, tmp_path, "ext-dev", thing="ext-dev")
    assert "$aws/things/ext-dev/jobs/get" in (tls_broker.acl_dir / "acl-devices").read_text()
    endpoint = f"mqtts://localhost:{tls_broker.device_port}"

    async def scenario():
        async with FakeDevice("ext-dev", endpoint, [Succeed({"via": "mqtts"})], tls=tls) as device:
            await device.client.wait_connected(10)
            await asyncio.to_thread(
                iot.create_job, jobId="ext-job", targets=[arn], document=json.dumps({"operation": "x"})
            )
            return await device.wait_for_reports(1)

    reports = asyncio.run(scenario())
    assert [(r.job_id, r.status) for r in reports] == [("ext-job", "SUCCEEDED")]
    record = iot.describe_job_execution(jobId="ext-job", thingName="ext-dev")["execution"]
    assert record["statusDetails"]["detailsMap"] == {"via": "mqtts"}


def test_over_tls_a_policy_that_denies_a_topic_is_enforced_by_the_external_broker(tmp_path, tls_broker):
    iot = tls_broker.iot()
    arn = iot.create_thing(thingName="ext-denied")["thingArn"]
    iot.create_job(jobId="ext-deny-job", targets=[arn], document=json.dumps({"operation": "x"}))
    prefix = "arn:aws:iot:us-east-1:123456789012"
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "iot:Publish",
                "Resource": f"{prefix}:topic/$aws/things/*/jobs/start-next",
            },
        ]
    }
    tls = certificate(tls_broker, tmp_path, "ext-deny", thing="ext-denied", policy=policy)
    endpoint = f"mqtts://localhost:{tls_broker.device_port}"

    async def scenario():
        async with AsyncJobsClient("ext-denied", endpoint, tls=tls, client_id="any-tool") as client:
            pending = await client.get_pending(timeout=10)
            with pytest.raises(RequestTimedOut):
                await client.start_next(timeout=2)
            return pending

    pending = asyncio.run(scenario())
    assert [s.job_id for s in pending.queued] == ["ext-deny-job"], "allowed topics still work"
    status = iot.describe_job_execution(jobId="ext-deny-job", thingName="ext-denied")["execution"]["status"]
    assert status == "QUEUED", "the denied start-next never reached the service"


def test_broker_files_need_an_external_broker(tmp_path):
    server_error = None
    try:
        start_server(tmp_path / "data", extra_args=["--broker-acl-dir", str(tmp_path)], timeout=10)
    except AssertionError as exc:
        server_error = str(exc)
    assert server_error is not None and "need --broker external" in server_error
