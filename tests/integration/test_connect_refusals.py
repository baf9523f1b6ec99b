"""A refused device connection: the server logs one line saying why, the device says what to check."""

import re

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from .clients import Inbox, provision_certificate
from .conftest import start_server
from .device_sdk.helpers import DeviceProcess, endpoint, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("refusals"), extra_args=["--mqtts-port", "0"])
    line = next(line for line in server.lines if line.startswith("mqtts listening on"))
    server.mqtts_port = int(re.search(r":(\d+) ", line)[1])
    yield server
    assert server.stop() == 0, "\n".join(server.lines)


def refusal_lines(server, client_id):
    return [line for line in server.lines if f"refused connection: client id {client_id!r} from" in line]


def test_an_unregistered_thing_is_told_once_what_to_check_and_keeps_trying(tls_server, unique):
    ghost = f"{unique}-ghost"
    device = DeviceProcess("--thing", ghost, "--endpoint", endpoint(tls_server))
    try:
        hint = device.wait_for_line(f"the broker refused thing '{ghost}': not authorized")
        assert f"is the thing registered (aws iot create-thing --thing-name {ghost})?" in hint
        assert " WARNING " in hint
        device.wait_for_line(f"{ghost}: still refused ([code:5] Not authorized); trying again in")
        device.wait_for_line(f"{ghost}: still refused", timeout=15)
        assert device.output.count(lambda line: "not authorized: is the thing registered" in line) == 1
        # The server's one line for each attempt says why.
        line = wait_until(lambda: refusal_lines(tls_server, ghost))[0]
        assert line.endswith(f": thing not registered (aws iot create-thing --thing-name {ghost})")
        assert " INFO iotjobs.devices: " in line
        # Registered later, it gets in with its backoff.
        tls_server.iot().create_thing(thingName=ghost)
        device.wait_for_line(f"{ghost}: connected to", timeout=40)
    finally:
        device.close()
    # One server line per refused attempt (the device says "refused" once per attempt too).
    attempts = device.output.count(lambda line: "refused" in line)
    wait_until(lambda: len(refusal_lines(tls_server, ghost)) == attempts, what=f"{attempts} refusal lines")
    assert not [line for line in tls_server.lines if f"client id {ghost!r}, username" in line]


def refused_over_tls(server, thing, tls) -> str:
    """Connect as ``thing`` with ``tls``; returns the CONNACK's reason (the broker must refuse)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=thing, reconnect_on_failure=False)
    client.tls_set_context(tls.context(server.mqtts_port))
    answers = Inbox()
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.put(reason)
    client.connect("localhost", server.mqtts_port)
    client.loop_start()
    try:
        reason = answers.wait_for()
    finally:
        client.disconnect()
        client.loop_stop()
    assert reason.is_failure, f"{thing} was accepted"
    return str(reason)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("revoked", "certificate revoked: {cert} is REVOKED"),
        ("inactive", "certificate inactive: {cert} is INACTIVE"),
        ("other-thing", "not attached to the thing: certificate {cert} is not attached to thing '{thing}'"),
        ("no-connect", "policy does not allow iot:Connect for client id '{thing}' (certificate {cert})"),
    ],
)
def test_a_refused_certificate_is_logged_with_its_reason(tls_server, tmp_path, unique, case, reason):
    iot = tls_server.iot()
    thing = f"{unique}-{case}"
    iot.create_thing(thingName=thing)
    attach_to = thing
    policy = None
    if case == "other-thing":
        attach_to = f"{unique}-else"
        iot.create_thing(thingName=attach_to)
    if case == "no-connect":
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}],
        }
    made = provision_certificate(
        iot, tmp_path, thing, ca_file=tls_server.data_dir / "ca.pem", thing=attach_to, policy=policy
    )
    if case in ("revoked", "inactive"):
        iot.update_certificate(certificateId=made.certificate_id, newStatus=case.upper())
    assert refused_over_tls(tls_server, thing, made.tls) == "Not authorized"
    line = wait_until(lambda: refusal_lines(tls_server, thing))[0]
    assert reason.format(cert=made.certificate_id, thing=thing) in line
