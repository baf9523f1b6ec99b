"""``GET /health`` on the real ``iotjobs serve``: unsigned, 200 when ok, 503 naming a broker that is down."""

import time

import httpx
import pytest

from iot_jobs_bridge.broker.mosquitto import free_port

from .brokers import start_mosquitto
from .conftest import start_server

pytestmark = pytest.mark.integration


def test_a_running_server_is_healthy(server):
    response = httpx.get(f"{server.http_url}/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["broker"], body["store"]) == ("ok", "ok", "ok")
    assert body["version"] and body["uptimeSeconds"] >= 0


def health_when(url: str, predicate, timeout: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{url}/health")
        if predicate(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_the_broker_going_away_is_503_until_it_is_back(tmp_path):
    port = free_port("127.0.0.1")
    config = f"listener {port} 127.0.0.1\nallow_anonymous true\n"
    mosquitto = start_mosquitto(config, tmp_path / "mosquitto", port)
    server = start_server(
        tmp_path / "data", extra_args=["--broker", "external", "--broker-url", f"mqtt://127.0.0.1:{port}"]
    )
    try:
        assert httpx.get(f"{server.http_url}/health").status_code == 200
        mosquitto.stop()
        down = health_when(server.http_url, lambda r: r.status_code == 503)
        assert down.status_code == 503, down.text
        body = down.json()
        assert body["status"] == "failing"
        assert body["broker"] == f"the service's MQTT connection to 127.0.0.1:{port} is down"
        assert body["store"] == "ok"
        mosquitto = start_mosquitto(config, tmp_path / "mosquitto", port)
        back = health_when(server.http_url, lambda r: r.status_code == 200)
        assert back.json()["broker"] == "ok"
    finally:
        server.stop()
        mosquitto.stop()
    output = "\n".join(server.lines)
    assert f"The service lost its connection to the broker at 127.0.0.1:{port}" in output
    assert f"The service is connected to the broker at 127.0.0.1:{port} again" in output
    assert "health: broker is failing" in output
