"""Runs the real ``iotjobs serve`` process on loopback with ephemeral ports."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from tests.stores import serve_store_args

READY = re.compile(
    r"iotjobs ready mqtt=(?:(?P<mqtt_host>[^:\s]+):(?P<mqtt_port>\d+)|off) "
    r"http=(?P<http_host>[^:]+):(?P<http_port>\d+)"
)
# Servers started and not yet stopped: a failing test's report shows the end of their logs.
RUNNING: dict[int, "Server"] = {}  # by process id
LOG_LINES_IN_REPORTS = 60
ACCESS_KEY_ID = "AKIAINTEGRATIONTEST1"
SECRET = "integration-test-secret-key-0123456789ab"


@dataclass
class Server:
    process: subprocess.Popen
    data_dir: Path
    mqtt_host: str
    mqtt_port: int
    http_url: str
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    store: str = ""  # where its store is: --store's URL, or the SQLite file in the data dir

    def iot(self, **overrides):
        return boto3.client(
            "iot",
            endpoint_url=self.http_url,
            region_name=overrides.get("region", "us-east-1"),
            aws_access_key_id=overrides.get("key_id", ACCESS_KEY_ID),
            aws_secret_access_key=overrides.get("secret", SECRET),
            config=Config(retries={"max_attempts": 1}),
        )

    def stop(self, timeout: float = 15.0) -> int:
        """SIGINT, as Ctrl-C would; returns the exit code."""
        RUNNING.pop(self.process.pid, None)
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            if self.reader is not None:
                self.reader.join(5)
            if self.process.stdout is not None:
                self.process.stdout.close()
        return self.process.returncode


def start_server(
    data_dir: Path,
    *,
    env_credentials: bool = True,
    timeout: float = 30.0,
    extra_args: tuple[str, ...] | list[str] = (),
    extra_env: dict[str, str] | None = None,
) -> Server:
    """``iotjobs serve`` on ephemeral ports; returns once it printed its ready line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTJOBS_")}
    if env_credentials:
        env["IOTJOBS_ACCESS_KEY_ID"] = ACCESS_KEY_ID
        env["IOTJOBS_SECRET_ACCESS_KEY"] = SECRET
    env.update(extra_env or {})
    command = [
        sys.executable,
        "-m",
        "iot_jobs_bridge.jobs_service.cli",
        "serve",
        "--mqtt-port",
        "0",
        "--http-port",
        "0",
    ]
    if "--store" not in extra_args:
        extra_args = [*extra_args, *serve_store_args(data_dir)]
    process = subprocess.Popen(
        [*command, "--data-dir", str(data_dir), *extra_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    ready: dict[str, str] = {}
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            match = READY.fullmatch(line.strip())
            if match and not found.is_set():
                ready.update(match.groupdict())
                found.set()
        found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    arguments = list(extra_args)
    store = (
        arguments[arguments.index("--store") + 1]
        if "--store" in arguments
        else str(data_dir / "jobs.sqlite3")
    )
    server = Server(process, data_dir, "", 0, "", lines, reader, store)
    RUNNING[process.pid] = server
    deadline = time.monotonic() + timeout
    while not found.wait(0.1):
        if time.monotonic() > deadline:
            server.stop(timeout=1)
            raise AssertionError("server did not become ready:\n" + "\n".join(lines))
    if not ready:
        server.stop(timeout=1)
        raise AssertionError("server exited before it was ready:\n" + "\n".join(lines))
    # With --mqtt-port off there is no plain listener: mqtt_host is "" and mqtt_port 0.
    server.mqtt_host, server.mqtt_port = ready["mqtt_host"] or "", int(ready["mqtt_port"] or 0)
    server.http_url = f"http://{ready['http_host']}:{ready['http_port']}"
    return server


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("server-data"))
    yield running
    assert running.stop() == 0, "\n".join(running.lines)


@pytest.fixture
def iot(server):
    return server.iot()


@pytest.fixture
def unique():
    """A fresh name prefix per test, so tests sharing one server never collide."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report ends with the last lines each running server logged."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for server in list(RUNNING.values()):
        tail = "\n".join(server.lines[-LOG_LINES_IN_REPORTS:])
        report.sections.append((f"server log ({server.data_dir.name}, last lines)", tail))
