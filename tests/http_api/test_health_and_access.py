"""``GET /health`` (unsigned) and the access log of the control plane, on a real uvicorn server."""

from __future__ import annotations

import json
import logging
import threading

import httpx
import pytest

from iot_jobs_bridge.jobs_service.http_api import build_app
from iot_jobs_bridge.jobs_service.http_api.health import Health

from .conftest import KEY_ID, REGION, SECRET, Calls, client_for, make_handlers, serve, signed_request


class Parts:
    """Health checks whose answers a test sets: ``None`` (fine), a problem, an exception, or a hang."""

    def __init__(self) -> None:
        self.problems: dict[str, str | None] = {"broker": None, "store": None}
        self.errors: dict[str, Exception] = {}
        self.release = threading.Event()
        self.hang: set[str] = set()

    def check(self, name: str):
        def run() -> str | None:
            if name in self.hang:
                self.release.wait(10)
            if name in self.errors:
                raise self.errors[name]
            return self.problems[name]

        return run


@pytest.fixture
def parts():
    made = Parts()
    yield made
    made.release.set()


def serve_health(parts, within: float):
    health = Health({name: parts.check(name) for name in ("broker", "store")}, version="9.9.9", within=within)
    return serve(build_app(make_handlers(Calls()), {KEY_ID: SECRET}, region=REGION, health=health))


@pytest.fixture
def health_url(parts):
    # A generous deadline: on a loaded machine a fine check may take a while to get a thread.
    with serve_health(parts, within=10.0) as url:
        yield url


@pytest.fixture
def impatient_health_url(parts):
    with serve_health(parts, within=1.5) as url:
        yield url


def test_health_is_ok_without_a_signature(health_url):
    response = httpx.get(f"{health_url}/health")
    assert response.status_code == 200
    body = response.json()
    assert body.pop("uptimeSeconds") >= 0
    assert body == {"status": "ok", "broker": "ok", "store": "ok", "version": "9.9.9"}
    assert response.headers["cache-control"] == "no-store"


def test_a_failing_part_makes_it_503_and_is_named(health_url, parts, caplog):
    caplog.set_level(logging.INFO, logger="iot_jobs_bridge.jobs_service.http_api.health")
    parts.problems["broker"] = "the service's MQTT connection to 127.0.0.1:1 is down"
    for _ in range(2):
        response = httpx.get(f"{health_url}/health")
        assert response.status_code == 503
        body = response.json()
        assert (body["status"], body["broker"], body["store"]) == (
            "failing",
            "the service's MQTT connection to 127.0.0.1:1 is down",
            "ok",
        )
    parts.problems["broker"] = None
    assert httpx.get(f"{health_url}/health").status_code == 200
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.endswith("health")]
    # One line when it starts failing and one when it is back, not one per probe.
    assert lines == [
        ("WARNING", "health: broker is failing: the service's MQTT connection to 127.0.0.1:1 is down"),
        ("INFO", "health: broker is ok again"),
    ]


def test_a_check_that_raises_or_hangs_counts_as_failing(impatient_health_url, parts):
    parts.errors["store"] = RuntimeError("database disk image is malformed")
    parts.hang.add("broker")
    response = httpx.get(f"{impatient_health_url}/health", timeout=10)
    parts.release.set()
    assert response.status_code == 503
    body = response.json()
    assert body["store"] == "check failed: database disk image is malformed"
    assert body["broker"] == "no answer within 1.5 s"


def test_health_answers_get_and_head_only(health_url):
    assert httpx.head(f"{health_url}/health").status_code == 200
    # Any other method is an ordinary control-plane request, which must be signed.
    assert httpx.post(f"{health_url}/health").status_code == 403


@pytest.fixture
def access_app():
    def served(level: int | None):
        extra = {} if level is None else {"access_log_level": level}
        return serve(build_app(make_handlers(Calls()), {KEY_ID: SECRET}, region=REGION, **extra))

    return served


def access_records(caplog):
    return [r for r in caplog.records if r.name == "iotjobs.access"]


def test_each_request_is_one_access_line_at_the_level_asked_for(access_app, caplog):
    caplog.set_level(logging.DEBUG, logger="iotjobs.access")
    with access_app(logging.INFO) as url:
        client_for(url).describe_thing(thingName="t1")
        assert signed_request(url, "GET", "/no/such/path").status_code == 404
    first, second = access_records(caplog)
    assert first.levelno == logging.INFO
    assert first.getMessage().startswith("127.0.0.1 GET /things/t1 200 DescribeThing ")
    assert (first.method, first.path, first.status, first.operation) == (
        "GET",
        "/things/t1",
        200,
        "DescribeThing",
    )
    assert first.duration_ms >= 0 and first.request_id
    assert (second.status, second.operation) == (404, "-")
    json.dumps({k: getattr(second, k) for k in ("client", "method", "path", "status", "duration_ms")})


def test_the_access_line_is_debug_unless_asked_for(access_app, caplog):
    caplog.set_level(logging.DEBUG, logger="iotjobs.access")
    with access_app(None) as url:
        client_for(url).describe_thing(thingName="t1")
    (line,) = access_records(caplog)
    assert line.levelno == logging.DEBUG


def test_a_long_path_is_cut_in_the_access_line(access_app, caplog):
    caplog.set_level(logging.INFO, logger="iotjobs.access")
    with access_app(logging.INFO) as url:
        signed_request(url, "GET", "/things/" + "x" * 5000)
    (line,) = access_records(caplog)
    assert len(line.path) == 256
