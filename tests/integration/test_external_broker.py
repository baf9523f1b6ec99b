"""`iotjobs serve --broker external`: the jobs service on Mosquitto, devices connecting to Mosquitto."""

import asyncio
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from device_sdk.testing import FakeDevice, Succeed

from .clients import paho_client, subscribe
from .conftest import start_server

pytestmark = pytest.mark.integration


@pytest.fixture
def mosquitto_port(tmp_path):
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    assert Path(binary).exists(), "Mosquitto is missing: `make test` installs it (scripts/system-deps.sh)"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    process = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "Mosquitto did not start"
            time.sleep(0.05)
    yield port
    process.terminate()
    process.wait(10)


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


def test_a_bad_broker_url_is_refused(tmp_path):
    command = ["--broker", "external", "--broker-url", "http://127.0.0.1:1"]
    server_error = None
    try:
        start_server(tmp_path / "data", extra_args=command, timeout=10)
    except AssertionError as exc:
        server_error = str(exc)
    assert server_error is not None and "must start with mqtt:// or mqtts://" in server_error
