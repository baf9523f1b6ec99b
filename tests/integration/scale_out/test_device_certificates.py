"""Devices with certificates on the NATS cluster: the service's CA, the registry's attachments, revocation."""

from __future__ import annotations

import pytest

from ..clients import paho_client, provision_certificate, subscribe
from .conftest import run_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from run_cluster(tmp_path_factory.mktemp("tls-cluster"), 2, 3, "--device-tls")


def tls_client(cluster, node: int, client_id: str, tls):
    return paho_client(*cluster.node(node), client_id, tls=tls)


def test_the_nodes_take_devices_over_tls(cluster):
    assert all(url.startswith("mqtts://127.0.0.1:") for url in cluster.where["mqtt"])


def test_a_certificate_made_on_one_worker_and_attached_on_the_other_logs_its_thing_in_on_any_node(
    cluster, tmp_path, unique
):
    thing = f"{unique}-dev"
    cluster.iot(0).create_thing(thingName=thing)
    made = provision_certificate(cluster.iot(0), tmp_path, unique, ca_file=cluster.data_dir / "ca.pem")
    cluster.iot(1).attach_thing_principal(thingName=thing, principal=made.certificate_arn)
    with tls_client(cluster, 2, thing, made.tls) as device:
        assert not subscribe(device, f"$aws/things/{thing}/jobs/get/+")[0].is_failure
        assert subscribe(device, "$aws/things/someone-else/jobs/get/+")[0].is_failure
        device.publish(f"$aws/things/{thing}/jobs/get", '{"clientToken": "tls"}', qos=1)
        device.inbox.wait_for(lambda m: m[0] == f"$aws/things/{thing}/jobs/get/accepted")


def test_a_certificate_is_refused_for_a_thing_it_is_not_attached_to(cluster, tmp_path, unique):
    for name in ("mine", "theirs"):
        cluster.iot(0).create_thing(thingName=f"{unique}-{name}")
    made = provision_certificate(cluster.iot(0), tmp_path, unique, ca_file=cluster.data_dir / "ca.pem")
    cluster.iot(0).attach_thing_principal(thingName=f"{unique}-mine", principal=made.certificate_arn)
    with pytest.raises(ConnectionRefusedError), tls_client(cluster, 0, f"{unique}-theirs", made.tls):
        pass


def test_a_revoked_certificate_is_refused(cluster, tmp_path, unique):
    thing = f"{unique}-dev"
    cluster.iot(1).create_thing(thingName=thing)
    made = provision_certificate(
        cluster.iot(1), tmp_path, unique, ca_file=cluster.data_dir / "ca.pem", thing=thing
    )
    with tls_client(cluster, 1, thing, made.tls):
        pass  # let in while ACTIVE
    cluster.iot(0).update_certificate(certificateId=made.certificate_id, newStatus="REVOKED")
    with pytest.raises(ConnectionRefusedError), tls_client(cluster, 1, thing, made.tls):
        pass
