"""Devices known by their certificates: the embedded broker's TLS listener with client certificates."""

import asyncio
import ipaddress
import json
import re
import socket

import pytest
from awscrt import mqtt_request_response
from awsiot import iotjobs, mqtt_connection_builder
from cryptography import x509

from iot_jobs_bridge.device_sdk import AsyncJobsClient, RequestTimedOut, TlsOptions
from iot_jobs_bridge.device_sdk.testing import FakeDevice, Succeed
from tests.certs import TestCA

from .clients import provision_certificate
from .conftest import start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["embedded", "mosquitto"])
def tls_server(request, tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("mtls"),
        extra_args=["--broker", request.param, "--mqtts-port", "0", "--tls-name", "iotjobs.test"],
    )
    server.broker = request.param
    line = next(line for line in server.lines if line.startswith("mqtts listening on"))
    server.mqtts_port = int(re.search(r":(\d+) ", line)[1])
    yield server
    assert server.stop() == 0


def device_files(server, tmp_path, thing, *, status="ACTIVE", attach_to=None):
    """Register ``thing``, make it a certificate through the API and write the files a device needs."""
    iot = server.iot()
    iot.create_thing(thingName=thing)
    made = provision_certificate(
        iot, tmp_path, thing, ca_file=server.data_dir / "ca.pem", thing=attach_to or thing
    )
    if status != "ACTIVE":
        iot.update_certificate(certificateId=made.certificate_id, newStatus=status)
    return made.tls


def endpoint(server):
    return f"mqtts://localhost:{server.mqtts_port}"


def test_a_device_with_its_certificate_runs_a_job_over_mutual_tls(tls_server, tmp_path, unique):
    thing = f"{unique}-cert"
    tls = device_files(tls_server, tmp_path, thing)
    iot = tls_server.iot()
    arn = iot.describe_thing(thingName=thing)["thingArn"]

    async def scenario():
        async with FakeDevice(thing, endpoint(tls_server), [Succeed({"via": "mtls"})], tls=tls) as device:
            await device.client.wait_connected(10)
            await asyncio.to_thread(
                iot.create_job, jobId=f"{unique}-job", targets=[arn], document=json.dumps({"operation": "x"})
            )
            return await device.wait_for_reports(1)

    reports = asyncio.run(scenario())
    assert [(r.job_id, r.status) for r in reports] == [(f"{unique}-job", "SUCCEEDED")]


def refused(server, thing, tls, *, at_connect=True):
    """Whether the broker refuses ``tls`` for ``thing``: no answer to a request, and no connection.

    Mosquitto cannot check a certificate's thing or ``iot:Connect`` when it
    connects (``at_connect=False``); it refuses every topic instead.
    """

    async def attempt():
        async with AsyncJobsClient(thing, endpoint(server), tls=tls, request_timeout=2.0) as client:
            with pytest.raises(RequestTimedOut):
                await client.get_pending()
            return client.connected

    connected = asyncio.run(attempt())
    return connected is False or (not at_connect and server.broker == "mosquitto")


def test_a_revoked_certificate_is_refused(tls_server, tmp_path, unique):
    thing = f"{unique}-revoked"
    assert refused(tls_server, thing, device_files(tls_server, tmp_path, thing, status="REVOKED"))


def test_an_inactive_certificate_is_refused(tls_server, tmp_path, unique):
    thing = f"{unique}-inactive"
    assert refused(tls_server, thing, device_files(tls_server, tmp_path, thing, status="INACTIVE"))


def test_a_certificate_attached_to_another_thing_is_refused(tls_server, tmp_path, unique):
    other = f"{unique}-other"
    tls_server.iot().create_thing(thingName=other)
    thing = f"{unique}-mine"
    tls = device_files(tls_server, tmp_path, thing, attach_to=other)
    assert refused(tls_server, thing, tls, at_connect=False)


def test_a_certificate_from_another_ca_is_refused(tls_server, tmp_path, unique):
    thing = f"{unique}-foreign"
    tls_server.iot().create_thing(thingName=thing)
    foreign = TestCA(tmp_path / "foreign").issue(thing)
    tls = TlsOptions(ca_file=tls_server.data_dir / "ca.pem", cert_file=foreign.cert, key_file=foreign.key)
    assert refused(tls_server, thing, tls)


def test_no_client_certificate_is_refused(tls_server, unique):
    thing = f"{unique}-anonymous"
    tls_server.iot().create_thing(thingName=thing)
    assert refused(tls_server, thing, TlsOptions(ca_file=tls_server.data_dir / "ca.pem"))


def test_the_aws_iot_device_sdk_connects_with_mutual_tls(tls_server, tmp_path, unique):
    thing = f"{unique}-sdk"
    tls = device_files(tls_server, tmp_path, thing)
    iot = tls_server.iot()
    arn = iot.describe_thing(thingName=thing)["thingArn"]
    iot.create_job(jobId=f"{unique}-sdk-job", targets=[arn], document=json.dumps({"operation": "x"}))
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint="localhost",
        port=tls_server.mqtts_port,
        cert_filepath=str(tls.cert_file),
        pri_key_filepath=str(tls.key_file),
        ca_filepath=str(tls.ca_file),
        client_id=thing,
        clean_session=True,
        keep_alive_secs=30,
    )
    connection.connect().result(10)
    try:
        client = iotjobs.IotJobsClientV2(
            connection,
            mqtt_request_response.ClientOptions(
                max_request_response_subscriptions=4,
                max_streaming_subscriptions=2,
                operation_timeout_in_seconds=10,
            ),
        )
        pending = client.get_pending_job_executions(
            iotjobs.GetPendingJobExecutionsRequest(thing_name=thing)
        ).result(10)
        assert [job.job_id for job in pending.queued_jobs] == [f"{unique}-sdk-job"]
        del client
    finally:
        connection.disconnect().result(10)


def policy_files(server, tmp_path, name, document, *, thing=None):
    """A certificate with the policy ``document`` attached (and attached to ``thing``, if given)."""
    ca_file = server.data_dir / "ca.pem"
    return provision_certificate(
        server.iot(), tmp_path, name, ca_file=ca_file, thing=thing, policy=document
    ).tls


EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}


def test_an_allow_everything_policy_connects_with_any_client_id_and_drives_any_thing(
    tls_server, tmp_path, unique
):
    iot = tls_server.iot()
    other = f"{unique}-driven"
    arn = iot.create_thing(thingName=other)["thingArn"]
    iot.create_job(jobId=f"{unique}-ops-job", targets=[arn], document=json.dumps({"operation": "x"}))
    tls = policy_files(tls_server, tmp_path, f"{unique}-ops", EVERYTHING)

    async def scenario():
        # An operator tool: its client id is no thing, and it acts on another thing's jobs topics.
        async with AsyncJobsClient(
            other, endpoint(tls_server), tls=tls, client_id=f"{unique}-ops-tool"
        ) as client:
            return await client.get_pending(timeout=10)

    pending = asyncio.run(scenario())
    assert [s.job_id for s in pending.queued] == [f"{unique}-ops-job"]


def test_a_policy_that_denies_a_topic_is_enforced(tls_server, tmp_path, unique):
    iot = tls_server.iot()
    thing = f"{unique}-denied"
    arn = iot.create_thing(thingName=thing)["thingArn"]
    iot.create_job(jobId=f"{unique}-deny-job", targets=[arn], document=json.dumps({"operation": "x"}))
    prefix = "arn:aws:iot:us-east-1:123456789012"
    document = {
        "Statement": [
            {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "iot:Publish",
                "Resource": f"{prefix}:topic/$aws/things/*/jobs/start-next",
            },
        ]
    }
    tls = policy_files(tls_server, tmp_path, f"{unique}-deny", document, thing=thing)

    async def scenario():
        async with AsyncJobsClient(thing, endpoint(tls_server), tls=tls) as client:
            pending = await client.get_pending(timeout=10)
            with pytest.raises(RequestTimedOut):
                await client.start_next(timeout=2)
            return pending

    pending = asyncio.run(scenario())
    assert [s.job_id for s in pending.queued] == [f"{unique}-deny-job"], "allowed topics still work"
    status = iot.describe_job_execution(jobId=f"{unique}-deny-job", thingName=thing)["execution"]["status"]
    assert status == "QUEUED", "the denied start-next never reached the service"


def test_a_policy_that_does_not_allow_connect_refuses_the_connection(tls_server, tmp_path, unique):
    thing = f"{unique}-noconnect"
    tls_server.iot().create_thing(thingName=thing)
    document = {"Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}]}
    tls = policy_files(tls_server, tmp_path, f"{unique}-noconnect", document, thing=thing)
    assert refused(tls_server, thing, tls, at_connect=False)


def test_the_server_certificate_names_the_host_and_the_tls_names(tls_server):
    cert = x509.load_pem_x509_certificate((tls_server.data_dir / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns, ips = names.get_values_for_type(x509.DNSName), names.get_values_for_type(x509.IPAddress)
    assert {"iotjobs.test", "localhost", socket.gethostname()} <= set(dns)
    assert ipaddress.ip_address("127.0.0.1") in ips
