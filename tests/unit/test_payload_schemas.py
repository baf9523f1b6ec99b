"""Every payload the service sends to devices and monitors matches the schemas in `schemas/`."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iot_jobs_bridge import schemas
from iot_jobs_bridge.jobs_service.arns import Arns
from iot_jobs_bridge.jobs_service.clock import FakeClock
from iot_jobs_bridge.jobs_service.device_plane import Renderer
from iot_jobs_bridge.jobs_service.device_plane.api import DeviceApi
from iot_jobs_bridge.jobs_service.engine import JobsEngine, NewJob
from iot_jobs_bridge.jobs_service.store import Store

from .rendering import told


def schema_for(topic: str) -> tuple[str, str]:
    parts = topic.split("/")
    if parts[:3] == ["$aws", "events", "job"]:
        return "events", "JobEvent"
    if parts[:3] == ["$aws", "events", "jobExecution"]:
        return "events", "JobExecutionEvent"
    last = parts[-1]
    if last == "notify":
        return "device_responses", "JobExecutionsChangedEvent"
    if last == "notify-next":
        return "device_responses", "NextJobExecutionChangedEvent"
    if last == "rejected":
        return "device_responses", "ErrorResponse"
    operation = parts[-2]
    if operation == "update":
        return "device_responses", "UpdateJobExecutionResponse"
    if operation == "get" and parts[-3] == "jobs":
        return "device_responses", "GetPendingJobExecutionsResponse"
    return "device_responses", "ExecutionResponse"


request_topics = st.sampled_from(
    [
        "$aws/things/t1/jobs/get",
        "$aws/things/t1/jobs/start-next",
        "$aws/things/t1/jobs/$next/get",
        "$aws/things/t1/jobs/j1/get",
        "$aws/things/t1/jobs/j2/get",
        "$aws/things/t1/jobs/j1/update",
        "$aws/things/t1/jobs/j2/update",
        "$aws/things/t1/jobs/nope/update",
        "$aws/things/t1/jobs/x/y/z",
    ]
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "clientToken": st.text(min_size=1, max_size=8, alphabet="abc123"),
        "status": st.sampled_from(["IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "CANCELED", "BOGUS"]),
        "statusDetails": st.dictionaries(
            st.sampled_from(["a", "b", "bad key"]), st.text(max_size=3), max_size=3
        ),
        "expectedVersion": st.one_of(st.integers(0, 4), st.sampled_from(["1", "2", "x"])),
        "includeJobExecutionState": st.booleans(),
        "includeJobDocument": st.booleans(),
        "stepTimeoutInMinutes": st.sampled_from([-1, 0, 1, 10080, 10081]),
        "executionNumber": st.integers(0, 3),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(request_topics, bodies), min_size=1, max_size=25), st.booleans())
def test_every_outgoing_payload_matches_its_schema(tmp_path_factory, requests, cancel_midway):
    store = Store(tmp_path_factory.mktemp("db") / "jobs.sqlite3")
    try:
        arns = Arns()
        engine = JobsEngine(store, FakeClock(), arns)
        device = DeviceApi(engine, Renderer(engine.arns))
        sent = [
            *told(engine.membership.create_thing("t1").events),
            *told(engine.membership.create_thing("t2").events),
        ]
        for job_id in ("j1", "j2"):
            sent += told(
                engine.jobs.create_job(
                    NewJob(
                        job_id=job_id,
                        targets=[arns.thing("t1"), arns.thing("t2")],
                        document='{"op": "x"}',
                        description="d",
                    )
                ).events
            )
        for index, (topic, body) in enumerate(requests):
            sent += device.handle(topic, json.dumps(body).encode())
            if cancel_midway and index == len(requests) // 2:
                sent += told(
                    engine.jobs.cancel_job("j2", force=True, reason_code=None, comment="stop").events
                )
        sent += told(engine.jobs.delete_job("j1", force=True).events) + told(
            engine.jobs.finish_deletions().events
        )
        sent += told(engine.membership.delete_thing("t2", expected_version=None).events)
        for message in sent:
            document, definition = schema_for(message.topic)
            schemas.check(document, definition, message.payload)
    finally:
        store.close()


def test_the_schema_check_catches_a_wrong_payload():
    try:
        schemas.check(
            "device_responses", "ErrorResponse", {"code": "VersionMismatch", "message": "m", "timestamp": 1}
        )
    except schemas.SchemaError as error:
        assert "executionState" in str(error)
    else:
        raise AssertionError("a VersionMismatch without executionState passed")
