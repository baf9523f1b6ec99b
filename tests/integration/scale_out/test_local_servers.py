"""`cluster up`'s servers and its own process: ports taken meanwhile, signals in a burst."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from iot_jobs_bridge.broker.nats_cluster import LocalNatsCluster
from iot_jobs_bridge.jobs_service.local_postgres import LocalPostgres

from .conftest import environment

pytestmark = pytest.mark.integration


def _taken(port: int) -> socket.socket:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    return squatter


def test_a_nats_node_whose_port_was_taken_starts_on_another(tmp_path):
    cluster = LocalNatsCluster(tmp_path / "nats", 3, "")
    taken = cluster.nodes[2].route_port
    with _taken(taken):
        try:
            cluster.start()
            assert cluster.nodes[2].route_port != taken
            assert all(process.poll() is None for process in cluster.processes.values())
        finally:
            cluster.stop()


def test_postgresql_whose_port_was_taken_starts_on_another(tmp_path):
    server = LocalPostgres(tmp_path / "pg", durable=False)
    taken = server.port
    with _taken(taken):
        try:
            url = server.start()
            assert server.port != taken and f":{server.port}/" in url
        finally:
            server.stop()


def test_cluster_up_stops_cleanly_when_signals_come_in_a_burst(tmp_path):
    # Ctrl-C pressed again and again, or a supervisor's SIGTERM on top of one's own.
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "iot_jobs_bridge.jobs_service.cli", "cluster", "up", "--json"),
            *("--workers", "1", "--brokers", "1", "--data-dir", str(tmp_path / "cluster")),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment(),
    )
    try:
        assert process.stdout is not None
        where = json.loads(process.stdout.readline())
        for number in range(400):
            process.send_signal(signal.SIGTERM if number % 2 else signal.SIGINT)
            time.sleep(0.001)  # spread out, so some land while it handles the last one
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        rest = process.stdout.read() if process.stdout else ""
        if process.stdout:
            process.stdout.close()
    for pid in [*where["pids"]["workers"], *where["pids"]["brokers"], where["pids"]["store"]]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "iotjobs cluster stopping" in rest
