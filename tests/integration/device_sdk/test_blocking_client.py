"""The blocking ``JobsClient`` against the real server: requests, listeners, errors, lifecycle."""

import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from iot_jobs_bridge.device_sdk import (
    ClientClosed,
    JobExecution,
    JobsClient,
    NextJobExecutionChanged,
    PendingJobs,
    RequestRejected,
    RequestTimedOut,
    UpdateResult,
)

from ..clients import Inbox
from .helpers import create_job, details, endpoint, execution, free_port, make_thing, wait_until


@pytest.fixture
def thing(iot, unique):
    name = f"{unique}-dev"
    return name, make_thing(iot, name)


@pytest.fixture
def client(server, thing):
    jobs = JobsClient(thing[0], endpoint(server), request_timeout=10.0)
    jobs.connect(timeout=10)
    yield jobs
    jobs.close()


def test_get_pending_start_next_describe_update_round_trip(client, iot, thing, unique):
    name, arn = thing
    document = {"operation": "demo", "size": 3}
    job_id = create_job(iot, f"{unique}-job", arn, document)

    pending = client.get_pending()
    assert isinstance(pending, PendingJobs)
    assert pending.in_progress == ()
    assert pending.job_ids == (job_id,)
    assert pending.queued[0].version_number == 1
    assert pending.queued[0].execution_number == 1
    assert pending.queued[0].started_at is None

    started = client.start_next(status_details={"step": "start"})
    assert isinstance(started, JobExecution)
    assert (started.job_id, started.status, started.version_number) == (job_id, "IN_PROGRESS", 2)
    assert started.job_document == document
    assert started.status_details == {"step": "start"}
    assert started.started_at is not None

    described = client.describe(job_id)
    assert described is not None
    assert (described.job_id, described.status, described.version_number) == (job_id, "IN_PROGRESS", 2)
    assert described.status_details == {"step": "start"}
    assert described.job_document == document
    assert client.describe(job_id, include_document=False).job_document is None
    assert [s.job_id for s in client.get_pending().in_progress] == [job_id]

    progress = client.update(job_id, "IN_PROGRESS", status_details={"percent": "50"}, expected_version=2)
    assert isinstance(progress, UpdateResult)
    assert progress.reconciled is False
    assert progress.job_document is None
    assert progress.execution_state is not None
    assert progress.execution_state.status == "IN_PROGRESS"
    assert progress.execution_state.version_number == 3
    assert progress.execution_state.status_details == {"percent": "50"}

    quiet = client.update(job_id, "IN_PROGRESS", status_details={"percent": "90"}, include_state=False)
    assert quiet.execution_state is None

    done = client.update(
        job_id, "SUCCEEDED", status_details={"done": "yes"}, expected_version=4, include_document=True
    )
    assert done.execution_state is not None
    assert (done.execution_state.status, done.execution_state.version_number) == ("SUCCEEDED", 5)
    assert done.execution_state.status_details == {"done": "yes"}
    assert done.job_document == document

    record = execution(iot, job_id, name)
    assert record["status"] == "SUCCEEDED"
    assert record["versionNumber"] == 5
    assert details(record) == {"done": "yes"}
    assert client.describe("$next") is None


def test_nothing_pending_gives_none(client):
    assert client.start_next() is None
    assert client.describe("$next") is None
    assert client.describe() is None
    pending = client.get_pending()
    assert (pending.in_progress, pending.queued) == ((), ())


def test_describe_of_an_unknown_job_is_resource_not_found(client, unique):
    with pytest.raises(RequestRejected) as caught:
        client.describe(f"{unique}-no-such-job")
    assert caught.value.code == "ResourceNotFound"
    assert caught.value.retryable is False


def test_concurrent_requests_from_threads_each_get_their_own_reply(client, iot, thing, unique):
    _, arn = thing
    job_ids = [create_job(iot, f"{unique}-job-{n}", arn, {"operation": "demo", "n": n}) for n in range(5)]
    wanted = [job_ids[i % len(job_ids)] for i in range(20)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda job_id: client.describe(job_id, timeout=10), wanted))

    assert [r.job_id if r is not None else None for r in results] == wanted
    for job_id, result in zip(wanted, results, strict=True):
        assert result.job_document == {"operation": "demo", "n": job_ids.index(job_id)}
        assert (result.status, result.version_number) == ("QUEUED", 1)


def test_a_listener_may_call_the_client_itself(client, iot, thing, unique):
    _, arn = thing
    seen = Inbox()

    def listener(event: NextJobExecutionChanged) -> None:
        # Runs on the listener thread: a blocking request from here must not stall the connection.
        seen.put((event, client.get_pending(timeout=5)))

    client.on_next_changed(listener)
    job_id = create_job(iot, f"{unique}-job", arn)

    event, pending = seen.wait_for(
        lambda item: item[0].execution is not None and item[0].execution.job_id == job_id
    )
    assert isinstance(pending, PendingJobs)
    assert pending.job_ids == (job_id,)
    assert event.execution.status == "QUEUED"


def test_a_stale_expected_version_is_a_version_mismatch(client, iot, thing, unique):
    name, arn = thing
    job_id = create_job(iot, f"{unique}-job", arn)
    started = client.start_next()
    assert started is not None and started.version_number == 2
    client.update(job_id, "IN_PROGRESS", status_details={"percent": "10"}, expected_version=2)

    with pytest.raises(RequestRejected) as caught:
        client.update(job_id, "IN_PROGRESS", status_details={"percent": "20"}, expected_version=2)

    assert caught.value.code == "VersionMismatch"
    state = caught.value.execution_state
    assert state is not None
    assert (state.status, state.version_number) == ("IN_PROGRESS", 3)
    assert state.status_details == {"percent": "10"}
    record = execution(iot, job_id, name)
    assert record["versionNumber"] == 3
    assert details(record) == {"percent": "10"}


def test_a_repeated_update_already_applied_is_reconciled(client, iot, thing, unique):
    name, arn = thing
    job_id = create_job(iot, f"{unique}-job", arn)
    started = client.start_next()
    assert started is not None
    version = started.version_number

    first = client.update(job_id, "SUCCEEDED", status_details={"a": "1"}, expected_version=version)
    assert first.reconciled is False
    assert first.execution_state.version_number == version + 1

    again = client.update(job_id, "SUCCEEDED", status_details={"a": "1"}, expected_version=version)
    assert isinstance(again, UpdateResult)
    assert again.reconciled is True
    assert again.execution_state is not None
    assert again.execution_state.status == "SUCCEEDED"
    assert again.execution_state.version_number == version + 1
    assert again.execution_state.status_details == {"a": "1"}

    with pytest.raises(RequestRejected) as caught:
        client.update(job_id, "SUCCEEDED", status_details={"a": "2"}, expected_version=version)
    assert caught.value.execution_state is not None
    assert caught.value.execution_state.status_details == {"a": "1"}

    with pytest.raises(RequestRejected):
        client.update(job_id, "FAILED", status_details={"a": "1"}, expected_version=version)

    record = execution(iot, job_id, name)
    assert (record["status"], record["versionNumber"]) == ("SUCCEEDED", version + 1)
    assert details(record) == {"a": "1"}


def test_invalid_input_raises_value_error_and_sends_nothing(client, iot, thing, unique):
    name, arn = thing
    job_id = create_job(iot, f"{unique}-job", arn)
    started = client.start_next(status_details={"step": "start"})
    assert started is not None

    with pytest.raises(ValueError):
        client.update(job_id, "IN_PROGRESS", status_details={"log": "x" * 2000})
    with pytest.raises(ValueError):
        client.update(job_id, "IN_PROGRESS", status_details={"bad key!": "x"})
    with pytest.raises(ValueError):
        client.update(job_id, "DONE")
    with pytest.raises(ValueError):
        client.start_next(step_timeout_minutes=0)
    with pytest.raises(ValueError):
        client.describe(job_id, execution_number=0)

    record = execution(iot, job_id, name)
    assert record["versionNumber"] == started.version_number
    assert details(record) == {"step": "start"}


def test_invalid_input_fails_at_once_even_without_a_connection(unique):
    jobs = JobsClient(f"{unique}-offline", f"mqtt://127.0.0.1:{free_port()}")
    jobs.connect()
    try:
        begun = time.monotonic()
        with pytest.raises(ValueError):
            jobs.update("job", "IN_PROGRESS", status_details={"log": "x" * 2000}, timeout=5)
        with pytest.raises(ValueError):
            jobs.start_next(step_timeout_minutes=0, timeout=5)
        assert time.monotonic() - begun < 1.0  # not after waiting for a connection
    finally:
        jobs.close()


def test_no_broker_means_request_timed_out_and_close_is_idempotent(unique):
    jobs = JobsClient(f"{unique}-offline", f"mqtt://127.0.0.1:{free_port()}")
    jobs.connect()
    begun = time.monotonic()
    with pytest.raises(RequestTimedOut):
        jobs.get_pending(timeout=0.5)
    elapsed = time.monotonic() - begun
    assert 0.4 <= elapsed < 3.0
    assert jobs.connected is False
    jobs.close()
    jobs.close()


def test_a_request_waiting_when_the_client_closes_raises_client_closed(unique):
    # Whether the waiting request is answered depends on thread timing, so try it many times.
    for attempt in range(25):
        jobs = JobsClient(f"{unique}-offline", f"mqtt://127.0.0.1:{free_port()}")
        jobs.connect()
        outcome = Inbox()

        def request(jobs=jobs, outcome=outcome) -> None:
            try:
                outcome.put(jobs.get_pending(timeout=10))
            except Exception as exc:
                outcome.put(exc)

        # A daemon thread: if the request never returns, the test fails instead of hanging.
        threading.Thread(target=request, daemon=True).start()
        # The request is registered on the client's loop before it waits for a connection.
        wait_until(lambda jobs=jobs: jobs._async._pending, timeout=5, what="the request to be pending")
        jobs.close()
        try:
            error = outcome.wait_for(timeout=3)
        except AssertionError:
            pytest.fail(f"attempt {attempt + 1}: the waiting request got no answer within 3s of close()")
        assert isinstance(error, ClientClosed), error


def _error_of(call) -> str:
    """``"<ExceptionType>: <message>"`` of what ``call()`` raised (kept as text, freeing the traceback)."""
    try:
        call()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "nothing raised"


def test_a_request_after_close_raises_client_closed(client):
    assert client.get_pending().job_ids == ()
    client.close()
    errors = [_error_of(client.get_pending), _error_of(lambda: client.describe("$next"))]
    gc.collect()  # anything a failed call leaked is reported by this test, not a later one
    assert all(error.startswith("ClientClosed: ") for error in errors), errors
