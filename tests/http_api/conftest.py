"""A real uvicorn server on loopback with small operation handlers, and clients for it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from starlette.applications import Starlette

from iot_jobs_bridge.jobs_service.errors import ResourceAlreadyExists, ResourceNotFound
from iot_jobs_bridge.jobs_service.http_api import build_app

KEY_ID = "AKIDTESTADMIN"
SECRET = "test-secret-key"
REGION = "us-east-1"
ARN_PREFIX = "arn:aws:iot:us-east-1:123456789012"
TARGETS_FOR_ERRORS = [f"{ARN_PREFIX}:thing/t1"]


class Calls:
    """What each handler was called with, in order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, dict[str, Any]]] = []

    def record(self, operation: str, params: dict[str, Any]) -> None:
        self.log.append((operation, params))

    def last(self, operation: str) -> dict[str, Any]:
        return next(params for name, params in reversed(self.log) if name == operation)


def make_handlers(calls: Calls) -> dict[str, Any]:
    def create_thing(params: dict[str, Any]) -> dict[str, Any]:
        calls.record("CreateThing", params)
        name = params["thingName"]
        return {"thingName": name, "thingArn": f"{ARN_PREFIX}:thing/{name}", "thingId": "0001"}

    def describe_thing(params: dict[str, Any]) -> dict[str, Any]:
        calls.record("DescribeThing", params)
        return {"thingName": params["thingName"], "attributes": {"colour": "red", "gone": None}}

    def describe_job(params: dict[str, Any]) -> dict[str, Any]:
        calls.record("DescribeJob", params)
        job_id = params["jobId"]
        if job_id == "j9":
            raise ResourceNotFound("Job j9 does not exist")
        if job_id == "boom":
            raise RuntimeError("secret internals: /var/lib/db")
        return {
            "documentSource": None,
            "job": {
                "jobId": job_id,
                "jobArn": f"{ARN_PREFIX}:job/{job_id}",
                "status": "IN_PROGRESS",
                "targets": [f"{ARN_PREFIX}:thing/t1", None],
                "createdAt": 1486687079.743,
                "description": None,
                "jobProcessDetails": {"numberOfQueuedThings": 1, "processingTargets": None},
            },
        }

    def list_jobs(params: dict[str, Any]) -> dict[str, Any]:
        calls.record("ListJobs", params)
        return {
            "jobs": [{"jobId": "j1", "status": "IN_PROGRESS", "createdAt": 1700000000}],
            "nextToken": None,
        }

    def create_job(params: dict[str, Any]) -> dict[str, Any]:
        calls.record("CreateJob", params)
        job_id = params["jobId"]
        if job_id == "dup":
            arn = f"{ARN_PREFIX}:job/dup"
            raise ResourceAlreadyExists(
                "Job dup already exists", extra={"resourceId": "dup", "resourceArn": arn}
            )
        return {"jobArn": f"{ARN_PREFIX}:job/{job_id}", "jobId": job_id, "description": None}

    def add_thing_to_thing_group(params: dict[str, Any]) -> None:
        calls.record("AddThingToThingGroup", params)

    def create_thing_group(params: dict[str, Any]) -> dict[str, Any]:
        calls.record("CreateThingGroup", params)
        name = params["thingGroupName"]
        return {"thingGroupName": name, "thingGroupArn": f"{ARN_PREFIX}:thinggroup/{name}"}

    def delete_job_execution(params: dict[str, Any]) -> None:
        calls.record("DeleteJobExecution", params)

    def list_job_executions_for_thing(params: dict[str, Any]) -> dict[str, Any]:
        calls.record("ListJobExecutionsForThing", params)
        return {"executionSummaries": [{"jobId": "j1"}]}

    return {
        "CreateThing": create_thing,
        "DescribeThing": describe_thing,
        "DescribeJob": describe_job,
        "ListJobs": list_jobs,
        "CreateJob": create_job,
        "AddThingToThingGroup": add_thing_to_thing_group,
        "CreateThingGroup": create_thing_group,
        "DeleteJobExecution": delete_job_execution,
        "ListJobExecutionsForThing": list_job_executions_for_thing,
    }


@contextlib.contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 with an OS-chosen port in a thread; yield its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def client_for(base_url: str, service: str = "iot", *, key_id: str = KEY_ID, secret: str = SECRET) -> Any:
    """A boto3 client that never retries, so every error surfaces at once."""
    session = boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=REGION
    )
    return session.client(
        service,
        endpoint_url=base_url,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def signed_request(
    base_url: str,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    service: str = "iot",
    key_id: str = KEY_ID,
    secret: str = SECRET,
) -> httpx.Response:
    """Send a raw request signed with botocore's SigV4 signer (for shapes boto3 never sends)."""
    request = AWSRequest(method=method, url=base_url + path, data=body, headers=headers or {})
    SigV4Auth(Credentials(key_id, secret), service, REGION).add_auth(request)
    with httpx.Client() as client:
        return client.request(method, base_url + path, content=body, headers=dict(request.headers.items()))


@pytest.fixture(scope="session")
def calls() -> Calls:
    return Calls()


@pytest.fixture(autouse=True)
def _fresh_calls(calls: Calls) -> None:
    calls.log.clear()


@pytest.fixture(scope="session")
def base_url(calls: Calls) -> Iterator[str]:
    with serve(build_app(make_handlers(calls), {KEY_ID: SECRET}, region=REGION)) as url:
        yield url


@pytest.fixture(scope="session")
def iot(base_url: str) -> Any:
    return client_for(base_url)
