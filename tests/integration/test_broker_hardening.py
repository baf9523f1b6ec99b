"""A server with only its TLS listener (``--mqtt-port off``), on the embedded broker and the
managed Mosquitto: forged wills refused, access withdrawn from open connections at once."""

import asyncio
import json
import socket
import ssl
import threading
import time

import paho.mqtt.client as mqtt
import psutil
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from iot_jobs_bridge.device_sdk.testing import FakeDevice, Succeed

from .clients import provision_certificate
from .conftest import start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["embedded", "mosquitto"])
def tls_only(request, tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("tls-only"),
        extra_args=["--broker", request.param, "--mqtt-port", "off", "--mqtts-port", "0"],
    )
    server.broker = request.param
    line = next(line for line in server.lines if line.startswith("mqtts listening on"))
    server.mqtts_port = int(line.split(":")[1].split()[0])
    yield server
    assert server.stop() == 0, "\n".join(server.lines)


class Device:
    """A paho MQTT 3.1.1 client whose CONNACK and disconnection can be waited for."""

    def __init__(self, client_id: str, *, tls=None, will: tuple[str, str] | None = None) -> None:
        self.connack: str | None = None  # the CONNACK's reason, e.g. "Success" or "Not authorized"
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.disconnected = threading.Event()
        self.disconnected_at = 0.0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        if tls is not None:
            context = ssl.create_default_context(cafile=str(tls.ca_file))
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
            self.client.tls_set_context(context)
        if will is not None:
            self.client.will_set(*will, qos=1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, _client, _userdata, _flags, reason, _props) -> None:
        self.connack = str(reason)
        if not reason.is_failure:
            self.connected.set()
        self.answered.set()

    def _on_disconnect(self, *_args) -> None:
        self.disconnected_at = time.monotonic()
        self.disconnected.set()
        self.answered.set()

    def start(self, host: str, port: int) -> "Device":
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()
        assert self.answered.wait(10), "no CONNACK"
        return self

    def drop(self) -> None:
        """Vanish without DISCONNECT, so the broker publishes the will."""
        self.client.socket().shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _certificate(server, tmp_path, thing: str):
    iot = server.iot()
    iot.create_thing(thingName=thing)
    return provision_certificate(iot, tmp_path, thing, ca_file=server.data_dir / "ca.pem", thing=thing)


def _listening_ports(pid: int) -> set[int]:
    process = psutil.Process(pid)
    ports = set()
    for member in [process, *process.children(recursive=True)]:
        for connection in member.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN:
                ports.add(connection.laddr.port)
    return ports


def test_with_the_plain_listener_off_no_device_logs_in_by_client_id_anywhere(tls_only, unique):
    assert any(line.startswith("iotjobs ready mqtt=off http=") for line in tls_only.lines)
    thing = f"{unique}-plain"
    tls_only.iot().create_thing(thingName=thing)
    http_port = int(tls_only.http_url.rsplit(":", 1)[1])
    others = _listening_ports(tls_only.process.pid) - {http_port, tls_only.mqtts_port}
    assert others, "the service's own loopback listener"
    for port in others:
        device = Device(thing).start("127.0.0.1", port)
        try:
            assert device.connack == "Not authorized", f"a device logged in by client id on port {port}"
        finally:
            device.stop()


def test_with_the_plain_listener_off_a_device_runs_a_job_over_tls(tls_only, tmp_path, unique):
    thing = f"{unique}-tls"
    made = _certificate(tls_only, tmp_path, thing)
    iot = tls_only.iot()
    arn = iot.describe_thing(thingName=thing)["thingArn"]

    async def scenario():
        endpoint = f"mqtts://localhost:{tls_only.mqtts_port}"
        async with FakeDevice(thing, endpoint, [Succeed({"via": "tls only"})], tls=made.tls) as device:
            await device.client.wait_connected(10)
            iot.create_job(jobId=f"{unique}-job", targets=[arn], document=json.dumps({"operation": "x"}))
            return await device.wait_for_reports(1)

    reports = asyncio.run(scenario())
    assert [(r.job_id, r.status) for r in reports] == [(f"{unique}-job", "SUCCEEDED")]


def test_a_will_on_another_things_update_topic_never_completes_its_job(tls_only, tmp_path, unique):
    iot = tls_only.iot()
    victim = f"{unique}-victim"
    victim_arn = iot.create_thing(thingName=victim)["thingArn"]
    job_id = f"{unique}-job"
    iot.create_job(jobId=job_id, targets=[victim_arn], document=json.dumps({"operation": "x"}))
    attacker = f"{unique}-attacker"
    made = _certificate(tls_only, tmp_path, attacker)
    forged = json.dumps({"status": "SUCCEEDED", "statusDetails": {"by": attacker}})
    device = Device(attacker, tls=made.tls, will=(f"$aws/things/{victim}/jobs/{job_id}/update", forged))
    device.start("localhost", tls_only.mqtts_port)
    if tls_only.broker == "embedded":
        assert device.connack == "Not authorized", "the CONNECT with a forbidden will was accepted"
    if device.connected.is_set():
        device.drop()  # Mosquitto accepts it; its ACL keeps the will from being published
        assert device.disconnected.wait(5)
    device.client.loop_stop()
    # The victim's own request after the attacker is gone: replies come in order, so had the
    # will reached the service, the execution would no longer be QUEUED by now.
    execution = iot.describe_job_execution(jobId=job_id, thingName=victim)["execution"]
    assert execution["status"] == "QUEUED"
    assert "statusDetails" not in execution or not execution["statusDetails"].get("detailsMap")


@pytest.mark.parametrize("change", ["REVOKED", "INACTIVE", "detach"])
def test_withdrawing_a_connected_devices_certificate_closes_its_connection_within_a_second(
    change, tls_only, tmp_path, unique
):
    thing = f"{unique}-{change.lower()}"
    made = _certificate(tls_only, tmp_path, thing)
    device = Device(thing, tls=made.tls).start("localhost", tls_only.mqtts_port)
    iot = tls_only.iot()
    try:
        assert device.connected.is_set()
        if change == "detach":
            iot.detach_thing_principal(thingName=thing, principal=made.certificate_arn)
        else:
            iot.update_certificate(certificateId=made.certificate_id, newStatus=change)
        answered_at = time.monotonic()
        assert device.disconnected.wait(5), "the connection stayed open"
        assert device.disconnected_at - answered_at < 1.0
    finally:
        device.stop()
    again = Device(thing, tls=made.tls)
    try:
        again.client.connect_async("localhost", tls_only.mqtts_port)
        again.client.loop_start()
        assert again.answered.wait(10)
        if change != "detach" or tls_only.broker == "embedded":
            assert not again.connected.is_set(), "it connected again"
    finally:
        again.stop()


def test_deleting_a_connected_things_record_closes_its_plain_connection(server, unique):
    thing = f"{unique}-deleted"
    iot = server.iot()
    iot.create_thing(thingName=thing)
    device = Device(thing).start(server.mqtt_host, server.mqtt_port)
    try:
        assert device.connected.is_set()
        iot.delete_thing(thingName=thing)
        answered_at = time.monotonic()
        assert device.disconnected.wait(5)
        assert device.disconnected_at - answered_at < 1.0
    finally:
        device.stop()


def test_a_plain_listener_open_beyond_loopback_is_announced_loudly(tmp_path):
    server = start_server(tmp_path / "exposed", extra_args=["--host", "0.0.0.0"])
    try:
        assert any("THE PLAIN MQTT LISTENER ON 0.0.0.0:" in line for line in server.lines)
        assert any("--mqtt-port off --mqtts-port 8883" in line for line in server.lines)
    finally:
        assert server.stop() == 0
