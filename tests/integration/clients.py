"""Small helpers to drive real MQTT clients (awscrt and paho) from tests."""

import json
import ssl
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from awscrt import io, mqtt, mqtt_request_response
from awsiot import ServiceStreamOptions, iotjobs
from paho.mqtt.enums import CallbackAPIVersion

from iot_jobs_bridge.device_sdk import TlsOptions


class Inbox:
    """Collects items from client callbacks (any thread) and waits for them."""

    def __init__(self) -> None:
        self.items: list = []
        self._cond = threading.Condition()

    def put(self, item) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable = lambda item: True, timeout: float = 10.0):
        """The first item matching ``predicate``; fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for item in self.items:
                    if predicate(item):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"nothing matched within {timeout}s; got {self.items!r}")
                self._cond.wait(remaining)

    def count(self, predicate: Callable = lambda item: True) -> int:
        with self._cond:
            return sum(1 for item in self.items if predicate(item))


@contextmanager
def crt_connection(host: str, port: int, client_id: str, *, disable_metrics: bool = False):
    """An awscrt MQTT 3.1.1 connection over plain TCP, as a device would open it.

    The SDK sends its metrics as the username unless ``disable_metrics``.
    """
    elg = io.EventLoopGroup(1)
    bootstrap = io.ClientBootstrap(elg, io.DefaultHostResolver(elg))
    connection = mqtt.Connection(
        client=mqtt.Client(bootstrap),
        host_name=host,
        port=port,
        client_id=client_id,
        clean_session=True,
        keep_alive_secs=60,
        disable_metrics=disable_metrics,
    )
    connection.connect().result(10)
    try:
        yield connection
    finally:
        connection.disconnect().result(10)


@contextmanager
def paho_client(host: str, port: int, client_id: str, *, username=None, password=None, tls=None):
    """A connected paho client whose messages land in ``client.inbox``; fails if refused.

    With ``tls`` (a `TlsOptions`) it connects over TLS with that client certificate;
    a refusal during the handshake or at CONNECT raises ConnectionRefusedError.
    """
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.inbox = Inbox()
    client.events = Inbox()
    if username is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set(ca_certs=str(tls.ca_file), certfile=str(tls.cert_file), keyfile=str(tls.key_file))
        # A broker that closes the connection instead of answering CONNECT refused it too.
        client.on_disconnect = lambda _c, _u, _f, reason, _p: client.events.put(("connect", reason))
    client.on_message = lambda _c, _u, msg: client.inbox.put((msg.topic, msg.payload))
    client.on_connect = lambda _c, _u, _f, reason, _p: client.events.put(("connect", reason))
    client.on_subscribe = lambda _c, _u, mid, reasons, _p: client.events.put(("suback", mid, reasons))
    try:
        client.connect(host, port, keepalive=30)
    except (ssl.SSLError, ConnectionResetError) as exc:
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


def subscribe(client, topic_filter: str, qos: int = 1):
    """Subscribe and wait for the SUBACK; returns the granted reason codes."""
    _, mid = client.subscribe(topic_filter, qos)
    _, _, reasons = client.events.wait_for(lambda e: e[0] == "suback" and e[1] == mid)
    return reasons


@contextmanager
def v2_jobs_client(
    host: str,
    port: int,
    thing: str,
    on_next: Callable,
    on_changed: Callable,
    *,
    disable_metrics: bool = False,
):
    """An ``IotJobsClientV2`` for ``thing`` whose notify-next and notify streams are established.

    ``on_next`` and ``on_changed`` receive the stream events, from the SDK's threads.
    """
    with crt_connection(host, port, thing, disable_metrics=disable_metrics) as connection:
        client = iotjobs.IotJobsClientV2(
            connection,
            mqtt_request_response.ClientOptions(
                max_request_response_subscriptions=6,
                max_streaming_subscriptions=2,
                operation_timeout_in_seconds=10,
            ),
        )
        established = Inbox()

        def status(event) -> None:
            if event.type == mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED:
                established.put(event)

        streams = [
            client.create_next_job_execution_changed_stream(
                iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
                ServiceStreamOptions(incoming_event_listener=on_next, subscription_status_listener=status),
            ),
            client.create_job_executions_changed_stream(
                iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=thing),
                ServiceStreamOptions(incoming_event_listener=on_changed, subscription_status_listener=status),
            ),
        ]
        for stream in streams:
            stream.open()
        established.wait_for(lambda _: established.count() == 2)
        yield client
        # Streams and the client have no close(); dropping them releases them.
        del streams, client


@dataclass(frozen=True)
class Provisioned:
    """A certificate made through the control plane, its files written where a device reads them."""

    certificate_id: str
    certificate_arn: str
    tls: TlsOptions


def provision_certificate(
    iot, directory: Path, name: str, *, ca_file: Path, thing=None, policy=None
) -> Provisioned:
    """CreateKeysAndCertificate (ACTIVE), with ``policy`` attached and attached to ``thing`` if given."""
    made = iot.create_keys_and_certificate(setAsActive=True)
    arn = made["certificateArn"]
    if policy is not None:
        iot.create_policy(policyName=name, policyDocument=json.dumps(policy))
        iot.attach_policy(policyName=name, target=arn)
    if thing is not None:
        iot.attach_thing_principal(thingName=thing, principal=arn)
    cert, key = directory / f"{name}.pem.crt", directory / f"{name}-private.pem.key"
    cert.write_text(made["certificatePem"])
    key.write_text(made["keyPair"]["PrivateKey"])
    return Provisioned(made["certificateId"], arn, TlsOptions(ca_file=ca_file, cert_file=cert, key_file=key))
