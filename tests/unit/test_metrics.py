"""Metrics: what the engine's observers, the pump, the gateway and the schedules count; the gauges
read from a real store; who may scrape ``/metrics``."""

import asyncio
import datetime as dt
import json
import logging
import re
import threading
from argparse import Namespace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from iot_jobs_bridge.jobs_service.addresses import is_loopback
from iot_jobs_bridge.jobs_service.domain_events import Activity, ExecutionWritten
from iot_jobs_bridge.jobs_service.engine import NewJob
from iot_jobs_bridge.jobs_service.http_api.metrics_endpoint import (
    MetricsEndpoint,
    refusal,
    warn_if_unreachable,
)
from iot_jobs_bridge.jobs_service.metrics import Metrics
from iot_jobs_bridge.jobs_service.models import ExecutionStatus as S
from iot_jobs_bridge.jobs_service.models import JobStatus
from iot_jobs_bridge.jobs_service.schedules import NewSchedule, Schedules
from iot_jobs_bridge.jobs_service.serve_cli import _metrics_token
from iot_jobs_bridge.jobs_service.templates import Templates

HOUR = 3600.0
STATUSES = [status.value for status in S]


@pytest.fixture
def metrics(store):
    return Metrics(store.jobs)


@pytest.fixture
def observed(engine, metrics):
    """The engine, with the metrics among its observers."""
    engine.core.observe(metrics.observe)
    for name in ("a", "b", "c"):
        engine.membership.create_thing(name)
    return engine


def value(metrics, name, **labels):
    """A sample's value now; 0 for a series that is not there."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


def transitions(metrics, before, after):
    return value(metrics, "iotjobs_execution_transitions_total", **{"from": before, "to": after})


def create_job(engine, arns, job_id, things, **settings):
    return engine.jobs.create_job(
        NewJob(job_id=job_id, targets=[arns.thing(t) for t in things], document="{}", settings=settings)
    )


def finish(engine, thing, job_id, status=S.SUCCEEDED):
    return engine.device.update(
        thing, job_id, status=status, status_details=None, expected_version=None, execution_number=None
    )


def written(previous, status, job_id="j", thing="a"):
    return ExecutionWritten(job_id, thing, previous, status)


# -- what the engine's observers count ------------------------------------------------------
def test_transitions_and_timeouts_are_counted_from_the_writes_of_each_commit(metrics):
    metrics.observe(
        Activity(
            (),
            (
                written(None, S.QUEUED),
                written(None, S.QUEUED, thing="b"),
                written(S.QUEUED, S.IN_PROGRESS),
                written(S.IN_PROGRESS, S.IN_PROGRESS),  # progress in statusDetails: no transition
                written(S.IN_PROGRESS, S.TIMED_OUT),
                written(None, S.CANCELED, thing="c"),
            ),
        )
    )
    assert transitions(metrics, "NONE", "QUEUED") == 2
    assert transitions(metrics, "QUEUED", "IN_PROGRESS") == 1
    assert transitions(metrics, "IN_PROGRESS", "TIMED_OUT") == 1
    assert transitions(metrics, "NONE", "CANCELED") == 1
    assert transitions(metrics, "IN_PROGRESS", "IN_PROGRESS") == 0
    assert value(metrics, "iotjobs_execution_timeouts_total") == 1
    assert value(metrics, "iotjobs_job_aborts_total") == 0


def test_every_transition_the_state_machine_allows_is_a_series_from_the_start(metrics):
    samples = {
        (sample.labels["from"], sample.labels["to"]): sample.value
        for family in metrics.registry.collect()
        if family.name == "iotjobs_execution_transitions"
        for sample in family.samples
    }
    assert samples[("NONE", "QUEUED")] == samples[("IN_PROGRESS", "TIMED_OUT")] == 0
    assert ("QUEUED", "TIMED_OUT") not in samples  # never made: only IN_PROGRESS times out
    assert ("IN_PROGRESS", "IN_PROGRESS") not in samples


def test_the_engine_tells_the_metrics_of_every_committed_change(observed, metrics, arns, clock):
    create_job(observed, arns, "j", ["a", "b"], timeoutConfig={"inProgressTimeoutInMinutes": 1})
    assert transitions(metrics, "NONE", "QUEUED") == 2
    observed.device.start_next("a", None)
    observed.device.start_next("b", None)
    finish(observed, "a", "j")
    clock.advance(61)
    observed.rollout.tick()  # b's in-progress timer ran out
    assert observed.get_execution("j", "b", None).status is S.TIMED_OUT
    assert transitions(metrics, "QUEUED", "IN_PROGRESS") == 2
    assert transitions(metrics, "IN_PROGRESS", "SUCCEEDED") == 1
    assert transitions(metrics, "IN_PROGRESS", "TIMED_OUT") == 1
    assert value(metrics, "iotjobs_execution_timeouts_total") == 1


def test_a_change_rolled_back_is_not_counted(observed, metrics, arns, store):
    with pytest.raises(RuntimeError), store.atomic():
        create_job(observed, arns, "j", ["a"])
        raise RuntimeError("the enclosing transaction fails")
    assert transitions(metrics, "NONE", "QUEUED") == 0


ABORT_ON_FAILURE = {
    "criteriaList": [
        {
            "failureType": "FAILED",
            "action": "CANCEL",
            "thresholdPercentage": 50,
            "minNumberOfExecutedThings": 1,
        }
    ]
}


def test_an_abort_is_counted_once_and_a_forced_cancel_after_it_is_not(observed, metrics, arns):
    create_job(observed, arns, "j", ["a", "b", "c"], abortConfig=ABORT_ON_FAILURE)
    observed.device.start_next("c", None)
    finish(observed, "a", "j", S.FAILED)
    finish(observed, "b", "j", S.FAILED)  # 2 of 3 executed things failed: trips
    job = observed.get_job("j")
    assert (job.status, job.reason_code) == (JobStatus.CANCELED, "ABORT_CONFIG_TRIPPED")
    assert value(metrics, "iotjobs_job_aborts_total") == 1
    # The operator stops c's running execution too: the job keeps its reasonCode, but this is no abort.
    observed.jobs.cancel_job("j", force=True, reason_code=None, comment=None)
    assert observed.get_job("j").reason_code == "ABORT_CONFIG_TRIPPED"
    assert value(metrics, "iotjobs_job_aborts_total") == 1
    assert transitions(metrics, "IN_PROGRESS", "CANCELED") == 1


def test_a_cancel_by_the_operator_is_not_an_abort(observed, metrics, arns):
    create_job(observed, arns, "j", ["a"])
    observed.jobs.cancel_job("j", force=False, reason_code="OPS", comment=None)
    assert value(metrics, "iotjobs_job_aborts_total") == 0
    assert transitions(metrics, "QUEUED", "CANCELED") == 1


# -- device requests, control-plane requests, schedules, commits -----------------------------
def test_device_requests_are_counted_by_operation_and_outcome(metrics):
    prefix = "$aws/things/t1/jobs"
    answered = metrics.device_request_answered
    answered(f"{prefix}/get", f"{prefix}/get/accepted", 0.002)
    answered(f"{prefix}/start-next", f"{prefix}/start-next/accepted", 0.003)
    answered(f"{prefix}/j1/get", f"{prefix}/j1/get/rejected", 0.001)
    answered(f"{prefix}/$next/get", f"{prefix}/$next/get/accepted", 0.001)
    answered(f"{prefix}/j1/update", f"{prefix}/j1/update/rejected", 0.004)
    answered(f"{prefix}/j1/nonsense", f"{prefix}/j1/nonsense/rejected", 0.001)  # InvalidTopic
    answered(f"{prefix}/j1/update", None, 0.1)  # a redelivery answered before: nothing sent now
    answered(f"{prefix}/notify", None, 0.1)  # not a request
    counted = {
        (operation, outcome): value(
            metrics, "iotjobs_device_requests_total", operation=operation, outcome=outcome
        )
        for operation in ("get", "start-next", "describe", "update", "invalid")
        for outcome in ("accepted", "rejected")
    }
    assert {key: n for key, n in counted.items() if n} == {
        ("get", "accepted"): 1,
        ("start-next", "accepted"): 1,
        ("describe", "rejected"): 1,
        ("describe", "accepted"): 1,
        ("update", "rejected"): 1,
        ("invalid", "rejected"): 1,
    }
    assert value(metrics, "iotjobs_device_request_duration_seconds_count") == 6
    assert value(metrics, "iotjobs_device_request_duration_seconds_sum") == pytest.approx(0.012)
    assert value(metrics, "iotjobs_device_request_duration_seconds_bucket", le="0.0025") == 4


def test_control_plane_requests_are_counted_by_operation_and_code(metrics):
    metrics.control_plane_answered("CreateJob", 200, 0.01)
    metrics.control_plane_answered("DescribeJob", 404, 0.01)
    metrics.control_plane_answered("DescribeJob", 404, 0.01)
    metrics.control_plane_answered("-", 403, 0.01)
    assert value(metrics, "iotjobs_control_plane_requests_total", operation="CreateJob", code="200") == 1
    assert value(metrics, "iotjobs_control_plane_requests_total", operation="DescribeJob", code="404") == 2
    assert value(metrics, "iotjobs_control_plane_requests_total", operation="-", code="403") == 1


def test_schedule_fires_are_counted_by_outcome_once_committed(observed, metrics, store, arns, clock):
    schedules = Schedules(store, observed, Templates(store, clock, arns), clock, fired=metrics.schedule_fired)
    schedules.create(
        NewSchedule(
            name="nightly", cron="0 * * * *", targets=[arns.thing("a")], document="{}", overlap="skip"
        )
    )

    def fires(outcome):
        return value(metrics, "iotjobs_schedule_fires_total", outcome=outcome)

    clock.advance(HOUR - clock.now() % HOUR)  # on the hour: due, and not late
    schedules.fire_due()
    assert fires("created") == 1
    clock.advance(HOUR)
    schedules.fire_due()  # the first job still runs
    assert (fires("created"), fires("skipped-overlap")) == (1, 1)
    observed.jobs.cancel_job(
        schedules.history("nightly")[-1]["jobId"], force=True, reason_code=None, comment=None
    )
    observed.membership.delete_thing("a", expected_version=None)
    clock.advance(HOUR)
    schedules.fire_due()  # the job cannot be created: its creation is undone, the fire recorded as failed
    assert (fires("created"), fires("failed")) == (1, 1)
    # Fires missed while the service was down are skipped.
    clock.advance(3 * HOUR + 600)
    Schedules(store, observed, Templates(store, clock, arns), clock, fired=metrics.schedule_fired).fire_due()
    history = [fire["outcome"] for fire in schedules.history("nightly", limit=100)]
    assert fires("skipped-misfire") == history.count("skipped-misfire") > 0
    assert sum(fires(o) for o in ("created", "skipped-overlap", "skipped-misfire", "failed")) == len(history)


def test_the_store_times_each_commit_and_nothing_else(store, metrics):
    store.db.committed = metrics.commit_took
    with store.atomic(), store.atomic():  # a savepoint inside a transaction: one commit
        store.jobs.jobs_per_status()
    with pytest.raises(RuntimeError), store.atomic():
        raise RuntimeError("rolled back")
    assert value(metrics, "iotjobs_store_commit_seconds_count") == 1
    assert value(metrics, "iotjobs_store_commit_seconds_sum") > 0


def test_a_failing_commit_hook_does_not_lose_what_follows_the_commit(store, caplog):
    caplog.set_level(logging.ERROR)
    done = []

    def broken(_seconds):
        raise RuntimeError("broken hook")

    store.db.committed = broken
    with store.atomic() as work:
        work.after_commit(lambda: done.append(True))
    assert done == [True]
    assert "The store's commit hook failed" in caplog.text


# -- gauges read from the store -------------------------------------------------------------
def iso(timestamp):
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M")


def test_the_gauges_read_the_store_at_each_scrape(observed, metrics, arns, clock):
    retry = {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1}]}
    create_job(observed, arns, "open", ["a", "b", "c"], jobExecutionsRetryConfig=retry)
    finish(observed, "a", "open", S.FAILED)  # retried: a's latest execution is QUEUED again
    observed.device.start_next("b", None)
    finish(observed, "c", "open")
    create_job(observed, arns, "later", ["a"], schedulingConfig={"startTime": iso(clock.now() + HOUR)})
    create_job(observed, arns, "done", ["b"])
    finish(observed, "b", "done")
    create_job(observed, arns, "stopped", ["c"])
    observed.jobs.cancel_job("stopped", force=False, reason_code=None, comment=None)

    families = {family.name: family for family in metrics.registry.collect()}
    executions = {}
    for sample in families["iotjobs_job_executions"].samples:
        executions.setdefault(sample.labels["job_id"], {})[sample.labels["status"]] = sample.value
    # Finished jobs have no series; an open job has one per status, zeros included.
    assert set(executions) == {"open", "later"}
    assert all(list(counts) == STATUSES for counts in executions.values())
    assert {status: n for status, n in executions["open"].items() if n} == {
        "QUEUED": 1,
        "IN_PROGRESS": 1,
        "SUCCEEDED": 1,
    }
    assert set(executions["later"].values()) == {0}
    jobs = {sample.labels["status"]: sample.value for sample in families["iotjobs_jobs"].samples}
    assert jobs == {
        "IN_PROGRESS": 1,
        "CANCELED": 1,
        "COMPLETED": 1,
        "DELETION_IN_PROGRESS": 0,
        "SCHEDULED": 1,
    }
    # The next scrape reads again: b finishes, c too, and the job is done.
    finish(observed, "b", "open")
    observed.device.start_next("a", None)
    finish(observed, "a", "open")
    assert observed.get_job("open").status is JobStatus.COMPLETED
    assert value(metrics, "iotjobs_job_executions", job_id="open", status="SUCCEEDED") == 0
    assert (
        metrics.registry.get_sample_value("iotjobs_job_executions", {"job_id": "open", "status": "QUEUED"})
        is None
    )
    assert value(metrics, "iotjobs_jobs", status="COMPLETED") == 2


def test_connected_devices_only_where_the_service_can_tell(store):
    count = [3]
    told = Metrics(store.jobs, connected_devices=lambda: count[0])
    assert told.registry.get_sample_value("iotjobs_connected_devices") == 3
    count[0] = 1
    assert told.registry.get_sample_value("iotjobs_connected_devices") == 1
    assert Metrics(store.jobs).registry.get_sample_value("iotjobs_connected_devices") is None


def test_each_service_has_registries_of_its_own(store):
    first, second = Metrics(store.jobs), Metrics(store.jobs)
    first.control_plane_answered("CreateJob", 200, 0.1)
    assert value(first, "iotjobs_control_plane_requests_total", operation="CreateJob", code="200") == 1
    assert value(second, "iotjobs_control_plane_requests_total", operation="CreateJob", code="200") == 0


def test_the_text_format_parses_and_leaves_out_created_samples(metrics):
    metrics.device_request_answered("$aws/things/t/jobs/get", "$aws/things/t/jobs/get/accepted", 0.01)
    body, media_type = metrics.exposition()
    assert media_type.startswith("text/plain")
    names = {
        sample.name for family in text_string_to_metric_families(body.decode()) for sample in family.samples
    }
    assert "iotjobs_device_requests_total" in names and "iotjobs_jobs" in names
    assert not [name for name in names if name.endswith("_created")]
    open_metrics, media_type = metrics.exposition("application/openmetrics-text; version=1.0.0")
    assert media_type.startswith("application/openmetrics-text")
    assert open_metrics.endswith(b"# EOF\n")


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_docs_and_the_dashboard_name_only_metrics_that_exist_and_the_docs_name_them_all(store):
    body, _ = Metrics(store.jobs, connected_devices=lambda: 0).exposition()
    families = {family.name for family in text_string_to_metric_families(body.decode())}
    ours = {name for name in families if name.startswith("iotjobs_")}
    # A sample's name is its family's, or the family's with a suffix the format adds.
    exposed = families | {
        f"{name}{end}" for name in families for end in ("_total", "_bucket", "_count", "_sum")
    }
    guide = (DOCS / "metrics.md").read_text()
    assert {name for name in ours if f"`{name}" not in guide} == set()
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])] + [
        variable["definition"] for variable in dashboard["templating"]["list"] if "definition" in variable
    ]
    named = {name for query in queries for name in re.findall(r"\b(?:iotjobs|process)_[a-z_]+", query)}
    assert named and named - exposed == set()
    assert {name for name in ours if not any(name in query for query in queries)} == set()
    assert [panel["id"] for panel in dashboard["panels"]] == list(range(1, len(dashboard["panels"]) + 1))


# -- who may scrape -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("192.0.2.7", False),
        ("::ffff:192.0.2.7", False),
        ("0.0.0.0", False),
        ("example.org", False),
        (None, False),
    ],
)
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_without_a_token_only_loopback_peers_are_answered():
    assert refusal(None, None, "127.0.0.1") is None
    assert refusal(None, "Bearer anything", "::1") is None
    refused = refusal(None, None, "192.0.2.7")
    assert refused.status == 403
    assert "--metrics-token" in refused.message and "192.0.2.7" in refused.message


def test_with_a_token_every_scrape_must_send_it():
    token = "s3cret-token"
    assert refusal(token, f"Bearer {token}", "192.0.2.7") is None
    assert refusal(token, f"bearer  {token}", "127.0.0.1") is None
    for header in (None, "", token, f"Basic {token}", "Bearer wrong", f"Bearer {token}x", "Bearer"):
        refused = refusal(token, header, "127.0.0.1")  # loopback needs the token too
        assert refused.status == 401, header
        assert refused.headers == {"WWW-Authenticate": 'Bearer realm="iotjobs metrics"'}


def scrape(endpoint, client, headers=None):
    app = Starlette(routes=[endpoint.route()])

    async def get():
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://iotjobs") as http:
            return await http.get("/metrics", headers=headers or {})

    return asyncio.run(get())


@pytest.fixture
def worker():
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="control-plane")
    yield pool
    pool.shutdown()


def test_the_endpoint_renders_on_the_worker_thread(metrics, worker):
    threads = []

    def render(accept):
        threads.append(threading.current_thread().name)
        return metrics.exposition(accept)

    answer = scrape(MetricsEndpoint(render, worker), "127.0.0.1")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert "iotjobs_jobs" in answer.text
    assert threads and threads[0].startswith("control-plane")


def test_the_endpoint_refuses_as_the_rules_say(metrics, worker):
    open_ = MetricsEndpoint(metrics.exposition, worker)
    far = scrape(open_, "192.0.2.7")
    assert far.status_code == 403 and "--metrics-token" in far.text
    guarded = MetricsEndpoint(metrics.exposition, worker, token="tok")
    missing = scrape(guarded, "127.0.0.1")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert scrape(guarded, "192.0.2.7", {"Authorization": "Bearer tok"}).status_code == 200


def test_a_server_beyond_loopback_without_a_token_says_so_once(caplog):
    caplog.set_level(logging.WARNING)
    warn_if_unreachable("127.0.0.1", 8080, None)
    warn_if_unreachable("0.0.0.0", 8080, "tok")
    assert caplog.records == []
    warn_if_unreachable("0.0.0.0", 8080, None)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "/metrics on 0.0.0.0:8080 answers clients on this machine only" in record.getMessage()
    assert "--metrics-token" in record.getMessage()


def test_the_token_comes_from_the_flag_else_the_environment():
    assert _metrics_token(Namespace(metrics_token=None), {}) is None
    assert _metrics_token(Namespace(metrics_token=None), {"IOTJOBS_METRICS_TOKEN": "env"}) == "env"
    assert _metrics_token(Namespace(metrics_token="flag"), {"IOTJOBS_METRICS_TOKEN": "env"}) == "flag"
    for bad in ("", "two words", "caf\u00e9"):
        with pytest.raises(ValueError, match="printable ASCII without spaces"):
            _metrics_token(Namespace(metrics_token=bad), {})
