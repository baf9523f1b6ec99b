"""Shared helpers: ARNs, error assertions, MQTT devices and polling with a deadline."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ..clients import paho_client, subscribe
from ..conftest import ACCESS_KEY_ID, SECRET

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = f"arn:aws:iot:{REGION}:{ACCOUNT}"

COUNTERS = (
    "numberOfCanceledThings",
    "numberOfSucceededThings",
    "numberOfFailedThings",
    "numberOfRejectedThings",
    "numberOfQueuedThings",
    "numberOfInProgressThings",
    "numberOfRemovedThings",
    "numberOfTimedOutThings",
)


def thing_arn(name: str) -> str:
    return f"{PREFIX}:thing/{name}"


def group_arn(name: str) -> str:
    return f"{PREFIX}:thinggroup/{name}"


def job_arn(job_id: str) -> str:
    return f"{PREFIX}:job/{job_id}"


def template_arn(template_id: str) -> str:
    return f"{PREFIX}:jobtemplate/{template_id}"


def managed_template_arn(name: str, version: str = "1.0") -> str:
    return f"arn:aws:iot:{REGION}::jobtemplate/{name}:{version}"


@contextmanager
def fails_with(iot, code: str, status: int, message: str | None = None, match: str | None = None):
    """Expect ``iot.exceptions.<code>`` with HTTP ``status``.

    ``message`` pins the whole error message; ``match`` is a regular expression
    searched for in it.
    """
    with pytest.raises(getattr(iot.exceptions, code)) as caught:
        yield caught
    response = caught.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["ResponseMetadata"]["RequestId"]  # from x-amzn-RequestId
    if message is not None:
        assert response["Error"]["Message"] == message
    if match is not None:
        assert re.search(match, response["Error"]["Message"]), response["Error"]["Message"]


def signed_request(
    server, method: str, path: str, body: bytes = b"", *, region: str = REGION
) -> httpx.Response:
    """A request signed by botocore's SigV4 signer with the admin key, for bodies boto3 never sends."""
    request = AWSRequest(method=method, url=server.http_url + path, data=body)
    SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET), "iot", region).add_auth(request)
    return httpx.request(method, request.url, content=body, headers=dict(request.headers.items()))


def create_things(iot, *names: str, **attributes: str) -> list[str]:
    """Create things (with the same attributes) and return their ARNs."""
    payload = {"attributePayload": {"attributes": attributes}} if attributes else {}
    return [iot.create_thing(thingName=name, **payload)["thingArn"] for name in names]


def process_details(**nonzero: int) -> dict[str, int]:
    """All eight ``jobProcessDetails`` counters: the given ones, every other one 0."""
    unknown = set(nonzero) - set(COUNTERS)
    assert not unknown, unknown
    return {name: nonzero.get(name, 0) for name in COUNTERS}


def executions_by_thing(iot, job_id: str) -> dict[str, list[tuple[int, str]]]:
    """Every execution of a job: thing name -> [(executionNumber, status)], in number order."""
    found: dict[str, list[tuple[int, str]]] = {}
    for page in iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id):
        for item in page["executionSummaries"]:
            summary = item["jobExecutionSummary"]
            name = item["thingArn"].rsplit("/", 1)[1]
            found.setdefault(name, []).append((summary["executionNumber"], summary["status"]))
    return {name: sorted(rows) for name, rows in found.items()}


def wait_until(check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``check`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout}s")
        time.sleep(0.02)


def job_gone(iot, job_id: str) -> bool:
    try:
        iot.describe_job(jobId=job_id)
    except iot.exceptions.ResourceNotFoundException:
        return True
    return False


def wait_until_deleted(iot, job_id: str, timeout: float = 5.0) -> None:
    """DeleteJob finishes asynchronously: wait for DescribeJob to answer ResourceNotFound."""
    wait_until(lambda: job_gone(iot, job_id), timeout, f"deletion of job {job_id}")


class Device:
    """A registered thing connected over MQTT that sends jobs requests and waits for the replies."""

    def __init__(self, client, thing: str) -> None:
        self.client = client
        self.thing = thing
        self.prefix = f"$aws/things/{thing}/jobs"
        self._tokens = itertools.count(1)

    def request(self, operation: str, body: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Publish to ``$aws/things/<thing>/jobs/<operation>``; returns ("accepted"|"rejected", payload)."""
        token = f"{self.thing}-{next(self._tokens)}"
        topic = f"{self.prefix}/{operation}"
        self.client.publish(topic, json.dumps({**(body or {}), "clientToken": token}), qos=1)
        replies = (f"{topic}/accepted", f"{topic}/rejected")

        def answer(message) -> bool:
            return message[0] in replies and json.loads(message[1]).get("clientToken") == token

        reply_topic, payload = self.client.inbox.wait_for(answer)
        return reply_topic.rsplit("/", 1)[1], json.loads(payload)

    def start_next(self, status_details: dict[str, str] | None = None) -> dict[str, Any] | None:
        """StartNextPendingJobExecution; the started execution, or None when nothing is pending."""
        body = {} if status_details is None else {"statusDetails": status_details}
        outcome, reply = self.request("start-next", body)
        assert outcome == "accepted", reply
        return reply.get("execution")

    def update(self, job_id: str, status: str, status_details: dict[str, str] | None = None) -> None:
        body: dict[str, Any] = {"status": status}
        if status_details is not None:
            body["statusDetails"] = status_details
        outcome, reply = self.request(f"{job_id}/update", body)
        assert outcome == "accepted", reply

    def finish(self, job_id: str, status: str) -> None:
        """Start the next pending execution (which must be ``job_id``) and end it with ``status``."""
        started = self.start_next()
        assert started is not None and started["jobId"] == job_id, started
        self.update(job_id, status)


@contextmanager
def device(server, thing: str) -> Iterator[Device]:
    """A paho MQTT device whose client id is ``thing`` (a thing created beforehand)."""
    with paho_client(server.mqtt_host, server.mqtt_port, thing) as client:
        subscribe(client, f"$aws/things/{thing}/jobs/#")
        yield Device(client, thing)


def start(server, thing: str, job_id: str) -> dict[str, Any]:
    """Connect as ``thing`` and move its next pending execution (``job_id``) to IN_PROGRESS."""
    with device(server, thing) as dev:
        started = dev.start_next()
    assert started is not None and started["jobId"] == job_id, started
    return started


def finish(server, thing: str, job_id: str, status: str) -> None:
    """Connect as ``thing``, start ``job_id`` and end it with ``status``."""
    with device(server, thing) as dev:
        dev.finish(job_id, status)
