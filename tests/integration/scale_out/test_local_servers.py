"""The servers `cluster up` starts pick other ports when one they picked is taken meanwhile."""

import socket

import pytest

from iot_jobs_bridge.broker.nats_cluster import LocalNatsCluster
from iot_jobs_bridge.jobs_service.local_postgres import LocalPostgres

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
