"""Two models on one listener, told apart by the SigV4 scope's service name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from iot_jobs_bridge.jobs_service.http_api.app import create_app
from iot_jobs_bridge.jobs_service.http_api.service import ServiceApi
from tests.http_api.conftest import KEY_ID, REGION, SECRET, client_for, serve


@pytest.fixture(scope="module")
def shared_url() -> Iterator[str]:
    def control_plane(params: dict[str, Any]) -> dict[str, Any]:
        return {"executionSummaries": [{"jobId": "from-iot"}]}

    def device_plane(params: dict[str, Any]) -> dict[str, Any]:
        return {"inProgressJobs": [], "queuedJobs": [{"jobId": "from-iot-jobs-data", "versionNumber": 1}]}

    apis = [
        ServiceApi.for_service("iot", {"ListJobExecutionsForThing": control_plane}),
        ServiceApi.for_service("iot-jobs-data", {"GetPendingJobExecutions": device_plane}),
    ]
    with serve(create_app(apis, {KEY_ID: SECRET}, region=REGION)) as url:
        yield url


def test_same_path_is_routed_by_signing_service(shared_url):
    iot = client_for(shared_url, "iot")
    jobs_data = client_for(shared_url, "iot-jobs-data")

    control = iot.list_job_executions_for_thing(thingName="t1")
    device = jobs_data.get_pending_job_executions(thingName="t1")

    assert control["executionSummaries"] == [{"jobId": "from-iot"}]
    assert device["inProgressJobs"] == []
    assert device["queuedJobs"] == [{"jobId": "from-iot-jobs-data", "versionNumber": 1}]


def test_device_plane_validates_against_its_own_model(shared_url):
    jobs_data = client_for(shared_url, "iot-jobs-data")

    with pytest.raises(jobs_data.exceptions.InvalidRequestException) as excinfo:
        jobs_data.get_pending_job_executions(thingName="bad name")

    assert excinfo.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'bad name' at 'thingName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+"
    )
