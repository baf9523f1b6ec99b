"""Start a real `iotjobs serve` for a benchmark, and clients for it."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

KEY_ID = "AKIABENCHMARKKEY0001"
SECRET = "benchmark-secret-0123456789abcdefghijkl"
READY = re.compile(r"iotjobs ready mqtt=(?P<mqtt>[^ :]+):(?P<mqtt_port>\d+) http=(?P<http>\S+)")


@dataclass
class Server:
    mqtt_host: str
    mqtt_port: int
    http_url: str
    pid: int = 0

    def peak_rss_mb(self) -> float:
        """The server process's peak resident memory so far (VmHWM), in MiB."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process has used."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def iot(self):
        return boto3.client(
            "iot",
            endpoint_url=self.http_url,
            region_name="us-east-1",
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )

    def monitor(self, topic_filter: str, on_message) -> paho.Client:
        """An admin MQTT client subscribed to ``topic_filter``; ``on_message(topic, payload, t)``."""
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-monitor-{time.monotonic_ns()}")
        client.username_pw_set(KEY_ID, SECRET)
        subscribed = threading.Event()
        client.on_connect = lambda c, *_: c.subscribe(topic_filter, 1)
        client.on_subscribe = lambda *_: subscribed.set()
        client.on_message = lambda _c, _u, m: on_message(m.topic, m.payload, time.time())
        client.connect(self.mqtt_host, self.mqtt_port)
        client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("the monitor could not subscribe")
        return client


@contextmanager
def running_server(*, time_scale: float = 1.0, extra_args: tuple[str, ...] = ()) -> Iterator[Server]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTJOBS_")}
    env.update(
        IOTJOBS_ACCESS_KEY_ID=KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET, IOTJOBS_TIME_SCALE=str(time_scale)
    )
    with tempfile.TemporaryDirectory() as data_dir:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "iot_jobs_bridge.jobs_service.cli",
                "serve",
                "--mqtt-port",
                "0",
                "--http-port",
                "0",
                "--data-dir",
                data_dir,
                "--log-level",
                "WARNING",
                *extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                match = READY.search(line)
                if match:
                    break
            else:
                raise RuntimeError("the server did not start")
            threading.Thread(target=process.stdout.read, daemon=True).start()
            yield Server(match["mqtt"], int(match["mqtt_port"]), f"http://{match['http']}", process.pid)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def mosquitto() -> Iterator[tuple[int, int]]:
    """A plain Mosquitto on a free loopback port (installed if missing): (port, pid)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        subprocess.run(["apt-get", "install", "-y", "-q", "mosquitto"], check=True, capture_output=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "mosquitto.conf"
        # The queue limit of docs/recipes/mosquitto/mosquitto.conf: Mosquitto's default
        # (1000) drops requests queued for the service when a large fleet asks at once.
        settings = [f"listener {port} 127.0.0.1", "allow_anonymous true", "max_keepalive 120"]
        config.write_text("\n".join([*settings, "max_queued_messages 100000", ""]))
        process = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                    break
                time.sleep(0.05)
            yield port, process.pid
        finally:
            process.terminate()
            process.wait(10)
