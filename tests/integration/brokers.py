"""``iotjobs serve`` on each broker it supports: embedded, a Mosquitto it runs, a Mosquitto run beside it.

`start_on_broker` returns a started `BrokerServer` whose ``broker`` names the
broker (``embedded-mqtt`` is the embedded broker reached by the service over
MQTT, ``--service-transport mqtt``, instead of in process; its ``broker`` is
``embedded``). For ``external`` it first starts a Mosquitto configured from the
documented recipe (``docs/recipes/mosquitto/``, its local listener), and the
server's `stop` stops that Mosquitto too.
"""

from __future__ import annotations

import dataclasses
import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from iot_jobs_bridge.broker.mosquitto import free_port, password_line

from .conftest import ACCESS_KEY_ID, SECRET, Server, start_server

__all__ = [
    "BROKERS",
    "SERVICE_USERNAME",
    "BrokerServer",
    "MosquittoProcess",
    "external_config",
    "start_mosquitto",
    "start_on_broker",
]

BROKERS = ("embedded", "embedded-mqtt", "mosquitto", "external")
RECIPE = Path(__file__).resolve().parents[2] / "docs" / "recipes" / "mosquitto"
SERVICE_USERNAME = "iotjobs-service"
SERVICE_PASSWORD = "external-service-password-0123456789"
PASSWORD_VARIABLE = "TEST_EXTERNAL_BROKER_PASSWORD"


def mosquitto_binary() -> str:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    assert Path(binary).exists(), "Mosquitto is missing: `make test` installs it (scripts/system-deps.sh)"
    return binary


@dataclass
class MosquittoProcess:
    process: subprocess.Popen
    port: int
    log: Path

    def stop(self, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_mosquitto(config: str, directory: Path, port: int, timeout: float = 10.0) -> MosquittoProcess:
    """Run Mosquitto with ``config`` (written to ``directory``) and wait until ``port`` accepts."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "mosquitto.conf"
    path.write_text(config)
    log = directory / "mosquitto.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = MosquittoProcess(process, port, log)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return running
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                running.stop()
                raise AssertionError(f"Mosquitto did not start:\n{log.read_text(errors='replace')}") from None
            time.sleep(0.05)


def external_config(directory: Path, port: int) -> str:
    """The recipe's local listener on ``port``: its ACL as documented, plus an account for the admin key.

    The admin key's account may publish too (device-plane tests' admin clients do),
    where the recipe's commented monitoring example only reads.
    """
    directory.mkdir(parents=True, exist_ok=True)
    passwd = directory / "passwd"
    passwd.write_text(
        password_line(SERVICE_USERNAME, SERVICE_PASSWORD) + "\n" + password_line(ACCESS_KEY_ID, SECRET) + "\n"
    )
    passwd.chmod(0o600)
    acl = directory / "acl-local"
    recipe = (RECIPE / "acl-local").read_text()
    acl.write_text(f"{recipe.rstrip()}\n\nuser {ACCESS_KEY_ID}\ntopic readwrite $aws/#\n")
    return "\n".join(
        [
            "per_listener_settings true",
            # Mosquitto started as root would otherwise switch to a user that cannot read these files.
            f"user {getpass.getuser()}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "max_packet_size 131337",  # as the recipe's mosquitto.conf
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            f"password_file {passwd}",
            f"acl_file {acl}",
            "",
        ]
    )


@dataclass
class BrokerServer(Server):
    """A started server, the broker it runs on, and the external Mosquitto it owns (if any)."""

    broker: str = "embedded"
    mosquitto: MosquittoProcess | None = None

    def stop(self, timeout: float = 15.0) -> int:
        try:
            return super().stop(timeout)
        finally:
            if self.mosquitto is not None:
                self.mosquitto.stop()


def start_on_broker(
    kind: str, tmp_dir: Path, *, extra_args: Sequence[str] = (), timeout: float = 30.0
) -> BrokerServer:
    """``iotjobs serve`` on ``kind`` (one of `BROKERS`), data in ``tmp_dir/data``; returns once ready."""
    data_dir = tmp_dir / "data"
    mosquitto: MosquittoProcess | None = None
    env: dict[str, str] = {}
    if kind == "embedded":
        args: list[str] = []
    elif kind == "embedded-mqtt":
        args = ["--service-transport", "mqtt"]
    elif kind == "mosquitto":
        args = ["--broker", "mosquitto", "--mqtts-port", "0"]
    elif kind == "external":
        port = free_port("127.0.0.1")
        folder = tmp_dir / "external-mosquitto"
        mosquitto = start_mosquitto(external_config(folder, port), folder, port)
        args = [
            "--broker",
            "external",
            "--broker-url",
            f"mqtt://127.0.0.1:{port}",
            "--broker-username",
            SERVICE_USERNAME,
            "--broker-password-env",
            PASSWORD_VARIABLE,
        ]
        env[PASSWORD_VARIABLE] = SERVICE_PASSWORD
    else:
        raise ValueError(f"unknown broker {kind!r}; expected one of {BROKERS}")
    try:
        server = start_server(data_dir, extra_args=[*args, *extra_args], extra_env=env, timeout=timeout)
    except BaseException:
        if mosquitto is not None:
            mosquitto.stop()
        raise
    fields = {f.name: getattr(server, f.name) for f in dataclasses.fields(Server)}
    broker = "embedded" if kind == "embedded-mqtt" else kind
    return BrokerServer(**fields, broker=broker, mosquitto=mosquitto)
