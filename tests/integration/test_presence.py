"""Presence on the real server: $aws/events/presence/... for the admin key, and GetThingConnectivityData."""

import json
import os
import subprocess
import sys

import pytest

from iot_jobs_bridge.broker.mosquitto import free_port

from .brokers import start_mosquitto
from .clients import paho_client, subscribe
from .conftest import ACCESS_KEY_ID, SECRET, start_server
from .device_sdk.helpers import wait_until

pytestmark = pytest.mark.integration


def test_the_admin_key_sees_devices_come_and_go(server, iot, unique):
    thing = f"{unique}-p"
    iot.create_thing(thingName=thing)
    with paho_client(
        server.mqtt_host, server.mqtt_port, f"{unique}-mon", username=ACCESS_KEY_ID, password=SECRET
    ) as monitor:
        subscribe(monitor, f"$aws/events/presence/+/{thing}")
        with paho_client(server.mqtt_host, server.mqtt_port, thing):
            topic, payload = monitor.inbox.wait_for()
            assert topic == f"$aws/events/presence/connected/{thing}"
            connected = json.loads(payload)
        topic, payload = monitor.inbox.wait_for(lambda item: "disconnected" in item[0])
    disconnected = json.loads(payload)
    assert (connected["clientId"], connected["eventType"], connected["ipAddress"]) == (
        thing,
        "connected",
        "127.0.0.1",
    )
    assert (disconnected["eventType"], disconnected["disconnectReason"]) == (
        "disconnected",
        "CLIENT_INITIATED_DISCONNECT",
    )
    assert disconnected["versionNumber"] == connected["versionNumber"]


def test_a_device_may_not_watch_presence(server, iot, unique):
    thing = f"{unique}-nosy"
    iot.create_thing(thingName=thing)
    with paho_client(server.mqtt_host, server.mqtt_port, thing) as device:
        assert [reason.value for reason in subscribe(device, "$aws/events/presence/#")] == [0x80]


def connectivity(iot, thing, **options):
    answer = iot.get_thing_connectivity_data(thingName=thing, **options)
    answer.pop("ResponseMetadata")
    return answer


def test_get_thing_connectivity_data_follows_the_device(server, iot, unique):
    thing = f"{unique}-c"
    iot.create_thing(thingName=thing)
    assert connectivity(iot, thing) == {"thingName": thing, "connected": False}  # never connected
    with paho_client(server.mqtt_host, server.mqtt_port, thing):
        now = connectivity(iot, thing, includeSocketInformation=True)  # CONNACK came after the record
        assert now["connected"] is True
        assert (now["sourceIp"], now["clientId"], now["cleanSession"]) == ("127.0.0.1", thing, True)
        assert now["keepAliveDuration"] == 30 and now["sourcePort"] > 0

    def disconnected():
        answer = connectivity(iot, thing)
        return None if answer["connected"] else answer

    gone = wait_until(disconnected)
    assert gone["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert gone["timestamp"] >= now["timestamp"]
    assert "sourceIp" not in gone


def test_connectivity_of_an_unknown_thing_is_not_found(iot, unique):
    with pytest.raises(iot.exceptions.ResourceNotFoundException, match=f"Thing {unique}-none does not exist"):
        iot.get_thing_connectivity_data(thingName=f"{unique}-none")


def test_on_another_broker_connectivity_is_unknown_and_run_says_so(tmp_path):
    port = free_port("127.0.0.1")
    mosquitto = start_mosquitto(f"listener {port} 127.0.0.1\nallow_anonymous true\n", tmp_path / "mq", port)
    server = start_server(
        tmp_path / "data", extra_args=["--broker", "external", "--broker-url", f"mqtt://127.0.0.1:{port}"]
    )
    try:
        iot = server.iot()
        iot.create_thing(thingName="elsewhere")
        message = (
            "Whether elsewhere is connected is not known: the external broker does not report"
            " connections to this server (the embedded broker does)"
        )
        with pytest.raises(iot.exceptions.InvalidRequestException) as refused:
            iot.get_thing_connectivity_data(thingName="elsewhere")
        assert refused.value.response["Error"]["Message"] == message
        env = {k: v for k, v in os.environ.items() if not k.startswith("IOTJOBS_")}
        env.update(IOTJOBS_ACCESS_KEY_ID=ACCESS_KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
        command = [
            sys.executable,
            "-m",
            "iot_jobs_bridge.jobs_service.cli",
            "run",
            "--endpoint",
            server.http_url,
        ]
        result = subprocess.run(
            [*command, "--thing", "elsewhere", "--timeout", "1", "--", "true"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.stop()
        mosquitto.stop()
    assert result.returncode == 124  # as before: it waited for the whole timeout
    assert f"note: {message}; waiting up to 1s for a result" in result.stderr.splitlines()
