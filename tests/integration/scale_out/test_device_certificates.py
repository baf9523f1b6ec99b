"""Devices with certificates on the NATS cluster: the service's CA, the registry's attachments, revocation."""

from __future__ import annotations

import ssl
from contextlib import contextmanager

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ..clients import Inbox, provision_certificate, subscribe
from .conftest import run_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from run_cluster(tmp_path_factory.mktemp("tls-cluster"), 2, 3, "--device-tls")


@contextmanager
def tls_client(cluster, node: int, client_id: str, tls):
    """A paho client over TLS with a client certificate; raises ConnectionRefusedError when refused."""
    host, port = cluster.node(node)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.inbox, client.events = Inbox(), Inbox()
    client.tls_set(ca_certs=str(tls.ca_file), certfile=str(tls.cert_file), keyfile=str(tls.key_file))
    client.on_message = lambda _c, _u, msg: client.inbox.put((msg.topic, msg.payload))
    client.on_connect = lambda _c, _u, _f, reason, _p: client.events.put(("connect", reason))
    client.on_subscribe = lambda _c, _u, mid, reasons, _p: client.events.put(("suback", mid, reasons))
    client.on_disconnect = lambda _c, _u, _f, reason, _p: client.events.put(("connect", reason))
    try:
        client.connect(host, port, keepalive=30)
    except (ssl.SSLError, OSError) as exc:
        raise ConnectionRefusedError(str(exc)) from exc
    client.loop_start()
    try:
        _, reason = client.events.wait_for(lambda e: e[0] == "connect", timeout=20)
        if reason.is_failure:
            raise ConnectionRefusedError(str(reason))
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


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
