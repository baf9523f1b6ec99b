"""``iotjobs cluster up``: the scale-out shape on one machine, for trying it and testing it.

It starts, on loopback, a PostgreSQL store, an M-node NATS cluster whose nodes
take devices over MQTT, and N ``iotjobs serve`` workers sharing both; prints
one JSON line saying where everything is, then a readable summary; and runs
until SIGINT or SIGTERM, when it stops all it started. Everything lives in the
data dir, so a second ``cluster up`` on it finds the same store and streams.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from iot_jobs_bridge.broker.nats_cluster import DeviceTls, LocalNatsCluster, NatsNotInstalled

from .ca import CA_CERT_FILE, CA_KEY_FILE, CertificateAuthority
from .credentials import AdminKey, load_admin_key
from .device_plane.nats_auth import cluster_security
from .local_postgres import LocalPostgres, PostgresNotInstalled

__all__ = ["add_arguments", "run_cluster"]

DATABASE = "iotjobs"
_READY = re.compile(r"^iotjobs ready mqtt=\S+ http=(\S+):(\d+)$")
_WORKER_START_WITHIN = 60.0
_SIGNAL_POLL = 0.2  # seconds between looks for SIGINT/SIGTERM


def add_arguments(cluster: argparse.ArgumentParser) -> None:
    actions = cluster.add_subparsers(dest="action", required=True)
    up = actions.add_parser(
        "up",
        help="start a PostgreSQL store, a NATS cluster and N workers on this machine",
        description="Start a PostgreSQL store, an M-node NATS cluster with MQTT listeners and N "
        "workers on loopback; print one JSON line with their addresses and process ids, then a "
        "summary; stop them all on SIGINT or SIGTERM.",
    )
    up.add_argument("--workers", type=_positive, default=2, help="jobs service workers (default %(default)s)")
    up.add_argument("--brokers", type=_positive, default=3, help="NATS nodes (default %(default)s)")
    up.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./cluster"),
        help="where everything keeps its state (default ./cluster)",
    )
    up.add_argument("--json", action="store_true", help="print only the JSON line, no summary")
    up.add_argument(
        "--device-tls",
        action="store_true",
        help="the brokers take devices over TLS with client certificates (mqtts://) instead of plain "
        "MQTT by client id (default: plain)",
    )
    up.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the workers' lowest level logged, in DATA_DIR/workers/wN/serve.log (default %(default)s)",
    )


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


class Cluster:
    """What ``cluster up`` runs, started and stopped in order."""

    def __init__(
        self, data_dir: Path, workers: int, brokers: int, log_level: str, *, device_tls: bool = False
    ) -> None:
        self.data_dir = data_dir
        self.worker_count = workers
        self.log_level = log_level
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.key: AdminKey = load_admin_key(data_dir)[0]
        # One CA for every worker: a certificate one issues is one every other accepts.
        self.ca = CertificateAuthority(data_dir)
        tls = None
        if device_tls:
            (data_dir / "nats").mkdir(mode=0o700, exist_ok=True)
            cert, key = self.ca.write_server_certificate(data_dir / "nats", ["127.0.0.1", "localhost"])
            tls = DeviceTls(cert, key, self.ca.cert_path)
        self.postgres = LocalPostgres(data_dir / "postgres")
        self.nats = LocalNatsCluster(data_dir / "nats", brokers, cluster_security(self.key), device_tls=tls)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.http: list[str] = []
        self.store_url = ""

    def start(self) -> None:
        self.postgres.start()
        self.store_url = self._database()
        self.nats.start()
        for index in range(1, self.worker_count + 1):
            self._start_worker(index)

    def _database(self) -> str:
        import psycopg

        with psycopg.connect(self.postgres.url, autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
        if exists:
            return self.postgres.url_of(DATABASE)
        return self.postgres.create_database(DATABASE)

    def _start_worker(self, index: int) -> None:
        folder = self.data_dir / "workers" / f"w{index}"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in (CA_CERT_FILE, CA_KEY_FILE):
            shutil.copy2(self.data_dir / name, folder / name)
        log_path = folder / "serve.log"
        environ = {
            **os.environ,
            "IOTJOBS_ACCESS_KEY_ID": self.key.access_key_id,
            "IOTJOBS_SECRET_ACCESS_KEY": self.key.secret_access_key,
        }
        start_at = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "iot_jobs_bridge.jobs_service.cli",
                    "serve",
                    "--http-port",
                    "0",
                    "--mqtt-port",
                    "off",
                    "--data-dir",
                    str(folder),
                    "--store",
                    self.store_url,
                    "--broker",
                    "nats",
                    "--broker-url",
                    ",".join(self.nats.urls),
                    "--log-level",
                    self.log_level,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environ,
                start_new_session=True,
            )
        self.workers.append(process)
        self.http.append(_wait_for_ready(process, log_path, start_at))

    def summary(self) -> dict[str, Any]:
        assert self.postgres.process is not None
        return {
            "http": self.http,
            "mqtt": self.nats.device_urls,
            "pids": {
                "workers": [process.pid for process in self.workers],
                "brokers": [self.nats.pid(node.name) for node in self.nats.nodes],
                "store": self.postgres.process.pid,
            },
        }

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.nats.stop()
        self.postgres.stop()


def _wait_for_ready(process: subprocess.Popen[bytes], log_path: Path, start_at: int) -> str:
    """The worker's control-plane URL, once its log says it is ready."""
    deadline = time.monotonic() + _WORKER_START_WITHIN
    while True:
        text = log_path.read_bytes()[start_at:].decode("utf-8", "replace")
        for line in text.splitlines():
            ready = _READY.match(line.strip())
            if ready:
                return f"http://{ready.group(1)}:{ready.group(2)}"
        if process.poll() is not None:
            raise RuntimeError(f"a worker stopped while starting; its log ({log_path}) ends:\n{text[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"a worker was not ready within {_WORKER_START_WITHIN:.0f} s; see {log_path}")
        time.sleep(0.05)


def run_cluster(args: argparse.Namespace) -> int:
    # Only a list append in the handler: a threading.Event set from a signal handler can
    # deadlock when a second signal lands while the main thread holds the Event's lock.
    received: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: received.append(number))
    try:
        cluster = Cluster(
            args.data_dir, args.workers, args.brokers, args.log_level, device_tls=args.device_tls
        )
    except (NatsNotInstalled, PostgresNotInstalled, ValueError, OSError) as exc:
        print(f"iotjobs cluster: {exc}", file=sys.stderr)
        return 2
    try:
        cluster.start()
        summary = cluster.summary()
        print(json.dumps(summary, separators=(",", ":")), flush=True)
        if not args.json:
            _print_summary(cluster, summary)
        while not received:
            time.sleep(_SIGNAL_POLL)
        print("iotjobs cluster stopping", flush=True)
    except (RuntimeError, OSError) as exc:
        print(f"iotjobs cluster: {exc}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(Exception):
            cluster.stop()
    return 0


def _print_summary(cluster: Cluster, summary: dict[str, Any]) -> None:
    pids = summary["pids"]
    lines = [f"store       {cluster.store_url}  (pid {pids['store']}, data in {cluster.postgres.data_dir})"]
    for node, device, pid in zip(cluster.nats.nodes, summary["mqtt"], pids["brokers"], strict=True):
        lines.append(f"broker {node.name:<4} {device} for devices, {node.url} for workers  (pid {pid})")
    for index, (url, pid) in enumerate(zip(summary["http"], pids["workers"], strict=True), start=1):
        lines.append(
            f"worker w{index:<3} {url}  (pid {pid}, log in {cluster.data_dir}/workers/w{index}/serve.log)"
        )
    lines.append(
        f"admin key   {cluster.key.access_key_id} ({cluster.key.source}); devices connect to any broker"
    )
    lines.append("Ctrl-C stops everything")
    print("\n".join(lines), flush=True)
