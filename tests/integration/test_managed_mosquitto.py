"""``iotjobs serve --broker mosquitto``: the Mosquitto the service configures, supervises and stops.

Devices here are what a fleet would run: the AWS IoT Device SDK's MQTT 5 client
with a certificate made by ``CreateKeysAndCertificate``, built the way the
official samples build it.
"""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from awscrt import mqtt_request_response
from awsiot import ServiceStreamOptions, V2ServiceException, iotjobs, mqtt5_client_builder
from cryptography import x509
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from iot_jobs_bridge.device_sdk import TlsOptions
from iot_jobs_bridge.device_sdk.testing import FakeDevice, Succeed

from .clients import Inbox, paho_client, provision_certificate, subscribe
from .conftest import ACCESS_KEY_ID, SECRET, start_server
from .device_sdk.helpers import wait_until

pytestmark = pytest.mark.integration

MOSQUITTO_ARGS = ["--broker", "mosquitto", "--mqtts-port", "0"]


def _mqtts_port(server) -> int:
    line = next(line for line in server.lines if line.startswith("mqtts listening on"))
    return int(re.search(r":(\d+) ", line)[1])


def _start(data_dir: Path):
    server = start_server(data_dir, extra_args=MOSQUITTO_ARGS)
    server.mqtts_port = _mqtts_port(server)
    return server


def _stop(server) -> int:
    """Stop ``server``; a Mosquitto it leaves behind is ended too, so it cannot outlive the test."""
    code = server.stop()
    for pid in mosquitto_pids(server):
        os.kill(pid, signal.SIGKILL)
    return code


@pytest.fixture(scope="module")
def mosquitto_server(tmp_path_factory):
    server = _start(tmp_path_factory.mktemp("managed-mosquitto"))
    yield server
    assert _stop(server) == 0, "\n".join(server.lines)


def mosquitto_pids(server) -> list[int]:
    """Live Mosquitto processes running on ``server``'s generated configuration."""
    config = str(server.data_dir / "mosquitto" / "mosquitto.conf")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if argv[0].endswith(b"mosquitto") and config.encode() in argv:
            pids.append(int(entry.name))
    return pids


def _answered(server, thing: str, timeout: float) -> bool:
    """Whether a plain device asking for ``thing``'s pending jobs gets a reply within ``timeout``."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=thing)
    replies, subscribed = Inbox(), Inbox()
    client.on_message = lambda _c, _u, message: replies.put(message.topic)
    client.on_subscribe = lambda *_: subscribed.put(True)
    try:
        client.connect(server.mqtt_host, server.mqtt_port, keepalive=30)
    except OSError:  # Mosquitto is not listening (yet)
        return False
    client.loop_start()
    try:
        client.subscribe(f"$aws/things/{thing}/jobs/get/+", 1)
        subscribed.wait_for(timeout=timeout)
        client.publish(f"$aws/things/{thing}/jobs/get", json.dumps({"clientToken": "probe"}), qos=1)
        replies.wait_for(timeout=timeout)
        return True
    except AssertionError:
        return False
    finally:
        client.disconnect()
        client.loop_stop()


def wait_for_service(server, thing: str, timeout: float = 15.0) -> None:
    """Wait until the jobs service answers device requests again, after its broker restarted.

    The service's own connection comes back some time after Mosquitto does, and
    a request published before then reaches no one, so devices are only driven
    once a probe is answered.
    """
    wait_until(lambda: _answered(server, thing, 0.3), timeout, what="the jobs service answering again")


@dataclass
class DeviceFiles:
    thing: str
    certificate_id: str
    common_name: str
    cert: Path
    key: Path
    ca: Path

    def tls(self) -> TlsOptions:
        return TlsOptions(ca_file=self.ca, cert_file=self.cert, key_file=self.key)


def device_files(server, tmp_path: Path, thing: str) -> DeviceFiles:
    """Register ``thing`` and give it a certificate made by the API, as a fleet operator would."""
    iot = server.iot()
    iot.create_thing(thingName=thing)
    made = provision_certificate(iot, tmp_path, thing, ca_file=server.data_dir / "ca.pem", thing=thing)
    cert, key = made.tls.cert_file, made.tls.key_file
    assert cert is not None and key is not None
    subject = x509.load_pem_x509_certificate(cert.read_bytes()).subject
    name = subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return DeviceFiles(thing, made.certificate_id, name, cert, key, server.data_dir / "ca.pem")


def _thing_arn(thing: str) -> str:
    return f"arn:aws:iot:us-east-1:123456789012:thing/{thing}"


class Mqtt5Device:
    """The SDK's MQTT 5 client over mutual TLS, its lifecycle events collected in ``events``."""

    def __init__(self, server, files: DeviceFiles, **overrides) -> None:
        self.events = Inbox()
        options = dict(
            endpoint="localhost",
            port=server.mqtts_port,
            cert_filepath=str(files.cert),
            pri_key_filepath=str(files.key),
            ca_filepath=str(files.ca),
            client_id=None,
            clean_session=True,
            keep_alive_secs=1200,
            on_lifecycle_connection_success=lambda data: self.events.put(("success", data)),
            on_lifecycle_connection_failure=lambda data: self.events.put(("failure", data)),
            on_lifecycle_disconnection=lambda data: self.events.put(("disconnection", data)),
            on_lifecycle_stopped=lambda data: self.events.put(("stopped", data)),
        )
        options.update(overrides)
        self.client = mqtt5_client_builder.mtls_from_path(**options)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in list(self.events.items)]

    def start(self) -> None:
        self.client.start()

    def stop(self) -> None:
        self.client.stop()
        self.events.wait_for(lambda e: e[0] == "stopped")

    def wait_connected(self, timeout: float = 10.0):
        """The CONNACK of the first successful connection; fails on a refused one."""
        kind, data = self.events.wait_for(lambda e: e[0] in ("success", "failure"), timeout)
        assert kind == "success", f"the connection failed: {data.exception!r}"
        return data


@contextmanager
def connected(server, files: DeviceFiles, **overrides):
    device = Mqtt5Device(server, files, **overrides)
    device.start()
    try:
        device.wait_connected()
        yield device
    finally:
        device.stop()


def jobs_client(device: Mqtt5Device) -> iotjobs.IotJobsClientV2:
    return iotjobs.IotJobsClientV2(
        device.client,
        mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=6,
            max_streaming_subscriptions=2,
            operation_timeout_in_seconds=5,
        ),
    )


def open_next_stream(client: iotjobs.IotJobsClientV2, thing: str, on_next):
    """The notify-next stream for ``thing``, once the broker has granted its subscription."""
    established = Inbox()

    def status(event) -> None:
        established.put(event.type)

    stream = client.create_next_job_execution_changed_stream(
        iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
        ServiceStreamOptions(incoming_event_listener=on_next, subscription_status_listener=status),
    )
    stream.open()
    kind = established.wait_for(
        lambda t: (
            t
            in (
                mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED,
                mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_HALTED,
            )
        )
    )
    assert kind == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED
    return stream


def pending_job_ids(client: iotjobs.IotJobsClientV2, thing: str) -> tuple[list[str], list[str]]:
    pending = client.get_pending_job_executions(
        iotjobs.GetPendingJobExecutionsRequest(thing_name=thing)
    ).result(10)
    return [j.job_id for j in pending.in_progress_jobs or []], [j.job_id for j in pending.queued_jobs or []]


# 1. The headline: the SDK's MQTT 5 client runs a job over mutual TLS.


def test_an_mqtt5_sdk_device_runs_a_job_end_to_end_over_mutual_tls(mosquitto_server, tmp_path, unique):
    iot = mosquitto_server.iot()
    files = device_files(mosquitto_server, tmp_path, f"{unique}-mqtt5")
    thing, job_id = files.thing, f"{unique}-job"
    with connected(mosquitto_server, files) as device:
        assert device.events.count(lambda e: e[0] == "success") == 1
        # No client id given: the SDK made one up, and the certificate says who the device is.
        assert device.events.items[0][1].negotiated_settings.client_id
        client = jobs_client(device)
        next_events = Inbox()
        stream = open_next_stream(client, thing, next_events.put)

        iot.create_job(
            jobId=job_id, targets=[_thing_arn(thing)], document=json.dumps({"operation": "reboot"})
        )
        announced = next_events.wait_for(lambda e: e.execution is not None)
        assert (announced.execution.job_id, announced.execution.status) == (job_id, "QUEUED")
        assert announced.execution.job_document == {"operation": "reboot"}

        started = client.start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name=thing)
        ).result(10)
        assert (started.execution.job_id, started.execution.status) == (job_id, "IN_PROGRESS")
        assert pending_job_ids(client, thing) == ([job_id], [])

        updated = client.update_job_execution(
            iotjobs.UpdateJobExecutionRequest(
                thing_name=thing,
                job_id=job_id,
                status="SUCCEEDED",
                expected_version=started.execution.version_number,
                status_details={"rebooted": "yes"},
                include_job_execution_state=True,
            )
        ).result(10)
        assert updated.execution_state.status == "SUCCEEDED"
        next_events.wait_for(lambda e: e.execution is None)
        del stream, client

    execution = iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
    assert execution["status"] == "SUCCEEDED"
    assert execution["statusDetails"] == {"detailsMap": {"rebooted": "yes"}}
    assert iot.describe_job(jobId=job_id)["job"]["status"] == "COMPLETED"


# 2. Usernames do not matter on the TLS listener: the certificate is the identity.


def test_an_sdk_username_with_metrics_still_connects_by_its_certificate(mosquitto_server, tmp_path, unique):
    files = device_files(mosquitto_server, tmp_path, f"{unique}-named")
    job_id = f"{unique}-named-job"
    mosquitto_server.iot().create_job(jobId=job_id, targets=[_thing_arn(files.thing)], document="{}")
    # The SDK sends "aws-iot-device-sdk-sample?SDK=IoTDeviceSDK/Python&Platform=...&Metadata=(...)".
    with connected(mosquitto_server, files, username="aws-iot-device-sdk-sample", client_id="") as device:
        client = jobs_client(device)
        # Its topics are granted to the certificate, not to that username.
        assert pending_job_ids(client, files.thing) == ([], [job_id])


def test_a_username_naming_another_certificate_gains_nothing(mosquitto_server, tmp_path, unique):
    mine = device_files(mosquitto_server, tmp_path, f"{unique}-mine")
    victim = device_files(mosquitto_server, tmp_path, f"{unique}-victim")
    mosquitto_server.iot().create_job(
        jobId=f"{unique}-v-job", targets=[_thing_arn(victim.thing)], document="{}"
    )
    with connected(
        mosquitto_server, mine, username=victim.common_name, enable_metrics_collection=False
    ) as device:
        client = jobs_client(device)
        assert pending_job_ids(client, mine.thing) == ([], [])
        with pytest.raises(V2ServiceException) as refused:
            pending_job_ids(client, victim.thing)
    # The broker refused the request's publish (an MQTT 5 PUBACK with "not authorized").
    assert refused.value.inner_error.name == "AWS_ERROR_MQTT_REQUEST_RESPONSE_PUBLISH_FAILURE"


# 3. Revocation reaches the broker before UpdateCertificate answers.


def test_revoking_a_connected_devices_certificate_takes_effect(mosquitto_server, tmp_path, unique):
    iot = mosquitto_server.iot()
    revoked = device_files(mosquitto_server, tmp_path, f"{unique}-revoked")
    other = device_files(mosquitto_server, tmp_path, f"{unique}-other")
    job_id = f"{unique}-revoked-job"
    iot.create_job(jobId=job_id, targets=[_thing_arn(revoked.thing)], document="{}")
    quick = {"min_reconnect_delay_ms": 100, "max_reconnect_delay_ms": 500}

    with (
        connected(mosquitto_server, revoked, **quick) as device,
        connected(mosquitto_server, other, **quick) as bystander,
    ):
        client = jobs_client(device)  # kept: the client shuts down when dropped
        started = client.start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(
                thing_name=revoked.thing, status_details={"step": "1"}
            )
        ).result(10)
        assert started.execution.status == "IN_PROGRESS"
        before = iot.describe_job_execution(jobId=job_id, thingName=revoked.thing)["execution"]

        iot.update_certificate(certificateId=revoked.certificate_id, newStatus="REVOKED")

        # Once the call has returned, the certificate opens no new connection...
        fresh = Mqtt5Device(mosquitto_server, revoked)
        fresh.start()
        try:
            kind, data = fresh.events.wait_for(lambda e: e[0] in ("success", "failure"))
            assert kind == "failure", "a revoked certificate connected"
            assert data.connack_packet is None, "refused in the TLS handshake, before any CONNACK"
        finally:
            fresh.stop()
        assert "success" not in fresh.kinds()

        # ... the connected device lost its connection and cannot get it back ...
        device.events.wait_for(lambda e: e[0] == "disconnection")
        seen = len(device.kinds())
        device.events.wait_for(lambda _: "failure" in device.kinds()[seen:])
        assert device.kinds().count("success") == 1

        # ... while another device's certificate still works. A request sent while the service
        # itself reconnects is kept for it by its persistent session, and answered.
        assert _answered(mosquitto_server, f"{unique}-probe", 10), "a request was lost over the restart"
        bystander.events.wait_for(lambda _: bystander.events.count(lambda e: e[0] == "success") >= 2)
        bystander_client = jobs_client(bystander)
        assert pending_job_ids(bystander_client, other.thing) == ([], [])
        with connected(mosquitto_server, other) as second:
            second_client = jobs_client(second)
            assert pending_job_ids(second_client, other.thing) == ([], [])
        assert device.kinds().count("success") == 1

    after = iot.describe_job_execution(jobId=job_id, thingName=revoked.thing)["execution"]
    assert after == before
    assert (after["status"], after["statusDetails"]) == ("IN_PROGRESS", {"detailsMap": {"step": "1"}})
    assert (
        iot.describe_certificate(certificateId=revoked.certificate_id)["certificateDescription"]["status"]
        == "REVOKED"
    )


# 4. and 5. Supervision and shutdown, on servers of their own.


def test_a_killed_mosquitto_is_started_again_and_devices_carry_on(tmp_path_factory, tmp_path, unique):
    server = _start(tmp_path_factory.mktemp("supervised"))
    try:
        [first] = wait_until(lambda: mosquitto_pids(server), 5, what="a running Mosquitto")
        os.kill(first, signal.SIGKILL)
        [second] = wait_until(
            lambda: [p for p in mosquitto_pids(server) if p != first], 10, what="Mosquitto started again"
        )
        assert second != first
        wait_for_service(server, f"{unique}-probe")

        files = device_files(server, tmp_path, f"{unique}-after")
        endpoint = f"mqtts://localhost:{server.mqtts_port}"

        async def scenario():
            async with FakeDevice(
                files.thing, endpoint, [Succeed({"after": "restart"})], tls=files.tls()
            ) as dev:
                await dev.client.wait_connected(10)
                await asyncio.to_thread(
                    server.iot().create_job,
                    jobId=f"{unique}-after-job",
                    targets=[_thing_arn(files.thing)],
                    document="{}",
                )
                return await dev.wait_for_reports(1)

        reports = asyncio.run(scenario())
        assert [(r.job_id, r.status) for r in reports] == [(f"{unique}-after-job", "SUCCEEDED")]
        execution = server.iot().describe_job_execution(jobId=f"{unique}-after-job", thingName=files.thing)
        assert execution["execution"]["statusDetails"] == {"detailsMap": {"after": "restart"}}
        assert mosquitto_pids(server) == [second]
        assert any("mosquitto exited with status" in line for line in server.lines), "\n".join(server.lines)
    finally:
        code = _stop(server)
    assert code == 0, "\n".join(server.lines)


def test_stopping_the_service_stops_its_mosquitto(tmp_path_factory):
    server = _start(tmp_path_factory.mktemp("shutdown"))
    try:
        pids = wait_until(lambda: mosquitto_pids(server), 5, what="a running Mosquitto")
        assert len(pids) == 1
    finally:
        code = server.stop()
    leftover = mosquitto_pids(server)
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert code == 0, "\n".join(server.lines)
    assert leftover == [], "Mosquitto outlived the service"


# 6. and 7. The plain listener: the admin account sees everything, devices only their own topics.


def test_a_monitoring_tool_with_the_admin_key_sees_device_traffic(mosquitto_server, unique):
    host, port = mosquitto_server.mqtt_host, mosquitto_server.mqtt_port
    thing = f"{unique}-watched"
    mosquitto_server.iot().create_thing(thingName=thing)
    wrong = {"username": ACCESS_KEY_ID, "password": "not-the-secret"}
    with pytest.raises(ConnectionRefusedError), paho_client(host, port, f"{unique}-intruder", **wrong):
        pass
    with paho_client(host, port, f"{unique}-monitor", username=ACCESS_KEY_ID, password=SECRET) as monitor:
        [granted] = subscribe(monitor, "$aws/things/+/jobs/#")
        assert not granted.is_failure
        with paho_client(host, port, thing) as device:
            [own] = subscribe(device, f"$aws/things/{thing}/jobs/get/+")
            assert not own.is_failure
            device.publish(f"$aws/things/{thing}/jobs/get", json.dumps({"clientToken": "watched"}), qos=1)
            device.inbox.wait_for(lambda m: m[0] == f"$aws/things/{thing}/jobs/get/accepted")
        monitor.inbox.wait_for(lambda m: m[0] == f"$aws/things/{thing}/jobs/get")
        _topic, payload = monitor.inbox.wait_for(lambda m: m[0] == f"$aws/things/{thing}/jobs/get/accepted")
        assert json.loads(payload)["clientToken"] == "watched"


def test_a_plain_device_cannot_use_another_things_topics(mosquitto_server, unique):
    iot = mosquitto_server.iot()
    host, port = mosquitto_server.mqtt_host, mosquitto_server.mqtt_port
    mine, theirs = f"{unique}-a", f"{unique}-b"
    iot.create_thing(thingName=mine)
    iot.create_thing(thingName=theirs)
    job_id = f"{unique}-b-job"

    admin = {"username": ACCESS_KEY_ID, "password": SECRET}
    with (
        paho_client(host, port, f"{unique}-monitor", **admin) as monitor,
        paho_client(host, port, mine) as device,
    ):
        subscribe(monitor, f"$aws/things/{theirs}/jobs/#")
        # Mosquitto 2.0's acl_file answers every SUBSCRIBE with success and applies
        # the read right to each message it would deliver instead.
        for topic in (
            f"$aws/things/{theirs}/jobs/notify-next",
            f"$aws/things/{theirs}/jobs/#",
            "$aws/things/+/jobs/#",
        ):
            subscribe(device, topic)
        [own] = subscribe(device, f"$aws/things/{mine}/jobs/#")
        assert not own.is_failure

        iot.create_job(jobId=job_id, targets=[_thing_arn(theirs)], document="{}")
        monitor.inbox.wait_for(lambda m: m[0] == f"$aws/things/{theirs}/jobs/notify-next")

        device.publish(f"$aws/things/{theirs}/jobs/get", json.dumps({"clientToken": "t1"}), qos=1)
        device.publish(f"$aws/things/{theirs}/jobs/start-next", json.dumps({"clientToken": "t2"}), qos=1)
        # A request on its own topics, sent after those, comes back: the others had their chance.
        device.publish(f"$aws/things/{mine}/jobs/get", json.dumps({"clientToken": "t3"}), qos=1)
        device.inbox.wait_for(lambda m: m[0] == f"$aws/things/{mine}/jobs/get/accepted")
        assert [m for m in device.inbox.items if theirs in m[0]] == [], (
            "it received the other thing's messages"
        )
    # The monitor saw the job's notifications, but no request to the other thing's topics and no answer.
    assert [m for m in monitor.inbox.items if "/notify" not in m[0]] == []

    execution = iot.describe_job_execution(jobId=job_id, thingName=theirs)["execution"]
    assert (execution["status"], execution["versionNumber"]) == ("QUEUED", 1)


# The official sample's set-up: trust from SSL_CERT_FILE, the control plane from AWS_ENDPOINT_URL_IOT.


def test_a_device_set_up_like_the_official_sample_finds_the_server_through_the_environment(
    mosquitto_server, tmp_path, unique
):
    files = device_files(mosquitto_server, tmp_path, f"{unique}-sample")
    iot = mosquitto_server.iot()
    iot.create_job(jobId=f"{unique}-sample-job", targets=[_thing_arn(files.thing)], document="{}")
    script = Path(__file__).parent / "scripts" / "sample_like_device.py"
    command = [sys.executable, str(script), "localhost", str(mosquitto_server.mqtts_port)]
    command += [str(files.cert), str(files.key), files.thing]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SSL_CERT"))}
    environment |= {
        "SSL_CERT_FILE": str(mosquitto_server.data_dir / "ca.pem"),
        "AWS_ENDPOINT_URL_IOT": mosquitto_server.http_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
    }
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"arn": _thing_arn(files.thing), "queued": [f"{unique}-sample-job"]}

    # Without SSL_CERT_FILE the server's CA is unknown, and the TLS handshake fails.
    del environment["SSL_CERT_FILE"]
    refused = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "queued" not in refused.stdout
