import pytest

from iot_jobs_bridge.device_sdk.errors import InvalidResponse, JobsError
from iot_jobs_bridge.device_sdk.models import (
    TERMINAL_STATUSES,
    JobExecution,
    JobExecutionsChanged,
    JobExecutionState,
    JobExecutionSummary,
    NextJobExecutionChanged,
    PendingJobs,
    UpdateResult,
    execution_from_payload,
    rejection_from_payload,
)


def _summary(job_id="j1", **extra):
    return {
        "jobId": job_id,
        "queuedAt": 100,
        "lastUpdatedAt": 110,
        "versionNumber": 2,
        "executionNumber": 1,
        **extra,
    }


def _execution(**extra):
    return {
        "jobId": "j1",
        "thingName": "dev-1",
        "status": "IN_PROGRESS",
        "statusDetails": {"step": "download"},
        "queuedAt": 100,
        "startedAt": 105,
        "lastUpdatedAt": 110,
        "versionNumber": 3,
        "executionNumber": 7,
        "approximateSecondsBeforeTimedOut": 60,
        "jobDocument": {"operation": "install"},
        **extra,
    }


def _invalid(parse, payload):
    with pytest.raises(InvalidResponse) as caught:
        parse(payload)
    return str(caught.value)


# --- PendingJobs ------------------------------------------------------------------------------


def test_pending_jobs_from_payload():
    pending = PendingJobs.from_payload(
        {
            "inProgressJobs": [_summary("a", startedAt=105)],
            "queuedJobs": [_summary("b"), _summary("c")],
            "timestamp": 1234,
            "clientToken": "tok",
        }
    )
    assert pending.in_progress == (
        JobExecutionSummary(
            job_id="a",
            queued_at=100,
            last_updated_at=110,
            version_number=2,
            execution_number=1,
            started_at=105,
        ),
    )
    assert [s.job_id for s in pending.queued] == ["b", "c"]
    assert pending.queued[0].started_at is None
    assert pending.timestamp == 1234
    assert pending.job_ids == ("a", "b", "c")


def test_pending_jobs_tolerate_unknown_keys():
    pending = PendingJobs.from_payload(
        {"inProgressJobs": [], "queuedJobs": [_summary(newField=1)], "timestamp": 1, "futureKey": {"x": 1}}
    )
    assert pending.job_ids == ("j1",)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"inProgressJobs": [], "queuedJobs": []},
            "GetPendingJobExecutionsResponse: 'timestamp' is required",
        ),
        (
            {"queuedJobs": [], "timestamp": 1},
            "GetPendingJobExecutionsResponse: 'inProgressJobs' is required",
        ),
        (
            {"inProgressJobs": [], "queuedJobs": [], "timestamp": "1"},
            "GetPendingJobExecutionsResponse: timestamp: '1' is not of type 'integer'",
        ),
        (
            {"inProgressJobs": [{"jobId": "j"}], "queuedJobs": [], "timestamp": 1},
            "GetPendingJobExecutionsResponse: inProgressJobs[0]: 'executionNumber' is required",
        ),
        (
            {"inProgressJobs": [], "queuedJobs": [_summary(versionNumber=None)], "timestamp": 1},
            "GetPendingJobExecutionsResponse: queuedJobs[0].versionNumber: None is not of type 'integer'",
        ),
        (
            {"inProgressJobs": {}, "queuedJobs": [], "timestamp": 1},
            "GetPendingJobExecutionsResponse: inProgressJobs: {} is not of type 'array'",
        ),
        ([], "GetPendingJobExecutionsResponse: [] is not of type 'object'"),
    ],
)
def test_pending_jobs_invalid(payload, message):
    assert _invalid(PendingJobs.from_payload, payload) == message


def test_invalid_response_is_a_jobs_error():
    assert issubclass(InvalidResponse, JobsError)


# --- execution_from_payload -------------------------------------------------------------------


def test_execution_from_payload_maps_every_field():
    execution = execution_from_payload("ExecutionResponse", {"execution": _execution(), "timestamp": 5})
    assert execution == JobExecution(
        job_id="j1",
        status="IN_PROGRESS",
        queued_at=100,
        last_updated_at=110,
        version_number=3,
        execution_number=7,
        thing_name="dev-1",
        status_details={"step": "download"},
        started_at=105,
        job_document={"operation": "install"},
        approximate_seconds_before_timed_out=60,
    )
    assert execution.is_terminal is False


def test_execution_from_payload_optional_fields_default():
    minimal = {k: v for k, v in _execution().items() if k in ("jobId", "status", "queuedAt", "lastUpdatedAt")}
    minimal.update(versionNumber=1, executionNumber=1, status="QUEUED")
    execution = execution_from_payload("ExecutionResponse", {"execution": minimal, "timestamp": 5})
    assert execution is not None
    assert execution.thing_name is None
    assert execution.status_details == {}
    assert execution.started_at is None
    assert execution.job_document is None
    assert execution.approximate_seconds_before_timed_out is None


def test_execution_from_payload_without_execution_is_none():
    assert execution_from_payload("ExecutionResponse", {"timestamp": 5, "clientToken": "t"}) is None


def test_execution_from_payload_tolerates_unknown_keys():
    execution = execution_from_payload(
        "ExecutionResponse", {"execution": _execution(extra="x"), "timestamp": 5, "other": []}
    )
    assert execution is not None
    assert execution.job_id == "j1"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"execution": _execution()}, "ExecutionResponse: 'timestamp' is required"),
        (
            {"execution": {k: v for k, v in _execution().items() if k != "status"}, "timestamp": 1},
            "ExecutionResponse: execution: 'status' is required",
        ),
        (
            {"execution": _execution(versionNumber="3"), "timestamp": 1},
            "ExecutionResponse: execution.versionNumber: '3' is not of type 'integer'",
        ),
        (
            {"execution": _execution(statusDetails={"k": 1}), "timestamp": 1},
            "ExecutionResponse: execution.statusDetails.k: 1 is not of type 'string'",
        ),
        (
            {"execution": _execution(jobDocument="{}"), "timestamp": 1},
            "ExecutionResponse: execution.jobDocument: '{}' is not of type 'object'",
        ),
        (
            {"execution": _execution(status="RUNNING"), "timestamp": 1},
            "ExecutionResponse: execution.status: 'RUNNING' is not one of ['QUEUED', 'IN_PROGRESS', "
            "'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED', 'REMOVED', 'CANCELED']",
        ),
    ],
)
def test_execution_from_payload_invalid(payload, message):
    assert _invalid(lambda p: execution_from_payload("ExecutionResponse", p), payload) == message


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_terminal_statuses(status):
    execution = execution_from_payload(
        "ExecutionResponse", {"execution": _execution(status=status), "timestamp": 1}
    )
    assert execution is not None
    assert execution.is_terminal is True
    assert JobExecutionState(status, 1).is_terminal is True


@pytest.mark.parametrize("status", ["QUEUED", "IN_PROGRESS"])
def test_non_terminal_statuses(status):
    assert JobExecutionState(status, 1).is_terminal is False


# --- UpdateResult -----------------------------------------------------------------------------


def test_update_result_with_state_and_document():
    result = UpdateResult.from_payload(
        {
            "executionState": {"status": "SUCCEEDED", "versionNumber": 4, "statusDetails": {"exitCode": "0"}},
            "jobDocument": {"operation": "x"},
            "timestamp": 9,
            "clientToken": "c",
        }
    )
    assert result == UpdateResult(
        timestamp=9,
        execution_state=JobExecutionState(
            status="SUCCEEDED", version_number=4, status_details={"exitCode": "0"}
        ),
        job_document={"operation": "x"},
        reconciled=False,
    )
    assert result.execution_state is not None
    assert result.execution_state.is_terminal


def test_update_result_minimal():
    assert UpdateResult.from_payload({"timestamp": 9}) == UpdateResult(timestamp=9)


def test_update_result_tolerates_unknown_keys():
    result = UpdateResult.from_payload(
        {"timestamp": 9, "executionState": {"status": "QUEUED", "versionNumber": 1, "x": 1}}
    )
    assert result.execution_state == JobExecutionState("QUEUED", 1)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "UpdateJobExecutionResponse: 'timestamp' is required"),
        (
            {"timestamp": 1, "executionState": {"status": "QUEUED"}},
            "UpdateJobExecutionResponse: executionState: 'versionNumber' is required",
        ),
        (
            {"timestamp": 1, "executionState": {"status": "QUEUED", "versionNumber": 0}},
            "UpdateJobExecutionResponse: executionState.versionNumber: 0 is less than the minimum of 1",
        ),
        ({"timestamp": -1}, "UpdateJobExecutionResponse: timestamp: -1 is less than the minimum of 0"),
    ],
)
def test_update_result_invalid(payload, message):
    assert _invalid(UpdateResult.from_payload, payload) == message


# --- notifications ----------------------------------------------------------------------------


def test_job_executions_changed():
    event = JobExecutionsChanged.from_payload(
        {"timestamp": 3, "jobs": {"IN_PROGRESS": [_summary("a")], "QUEUED": [_summary("b"), _summary("c")]}}
    )
    assert event.timestamp == 3
    assert [s.job_id for s in event.in_progress] == ["a"]
    assert event.job_ids == ("a", "b", "c")


def test_job_executions_changed_with_no_jobs():
    event = JobExecutionsChanged.from_payload({"timestamp": 3, "jobs": {}})
    assert event.in_progress == ()
    assert event.queued == ()
    assert event.job_ids == ()


def test_job_executions_changed_tolerates_unknown_keys():
    event = JobExecutionsChanged.from_payload(
        {"timestamp": 3, "jobs": {"QUEUED": [_summary()], "NEW": []}, "x": 1}
    )
    assert event.job_ids == ("j1",)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"timestamp": 3}, "JobExecutionsChangedEvent: 'jobs' is required"),
        (
            {"timestamp": 3, "jobs": {"QUEUED": [{"jobId": 1}]}},
            "JobExecutionsChangedEvent: jobs.QUEUED[0].jobId: 1 is not of type 'string'",
        ),
    ],
)
def test_job_executions_changed_invalid(payload, message):
    assert _invalid(JobExecutionsChanged.from_payload, payload) == message


def test_next_job_execution_changed_with_execution():
    event = NextJobExecutionChanged.from_payload({"timestamp": 4, "execution": _execution(status="QUEUED")})
    assert event.timestamp == 4
    assert event.execution is not None
    assert (event.execution.job_id, event.execution.status, event.execution.execution_number) == (
        "j1",
        "QUEUED",
        7,
    )


def test_next_job_execution_changed_without_execution():
    assert NextJobExecutionChanged.from_payload({"timestamp": 4}) == NextJobExecutionChanged(None, 4)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"execution": _execution()}, "NextJobExecutionChangedEvent: 'timestamp' is required"),
        (
            {"timestamp": 4, "execution": _execution(queuedAt=1.5)},
            "NextJobExecutionChangedEvent: execution.queuedAt: 1.5 is not of type 'integer'",
        ),
        (None, "NextJobExecutionChangedEvent: None is not of type 'object'"),
    ],
)
def test_next_job_execution_changed_invalid(payload, message):
    assert _invalid(NextJobExecutionChanged.from_payload, payload) == message


# --- rejections -------------------------------------------------------------------------------


def test_rejection_with_execution_state():
    code, message, state = rejection_from_payload(
        {
            "code": "VersionMismatch",
            "message": "expected version 2",
            "timestamp": 1,
            "clientToken": "c",
            "executionState": {"status": "IN_PROGRESS", "versionNumber": 3, "statusDetails": {"a": "b"}},
        }
    )
    assert (code, message) == ("VersionMismatch", "expected version 2")
    assert state == JobExecutionState(status="IN_PROGRESS", version_number=3, status_details={"a": "b"})


def test_rejection_without_execution_state():
    assert rejection_from_payload({"code": "ResourceNotFound", "message": "no job", "timestamp": 1}) == (
        "ResourceNotFound",
        "no job",
        None,
    )


def test_rejection_tolerates_unknown_keys():
    code, _, _ = rejection_from_payload(
        {"code": "InvalidRequest", "message": "m", "timestamp": 1, "extra": True}
    )
    assert code == "InvalidRequest"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"code": "InvalidRequest", "timestamp": 1}, "ErrorResponse: 'message' is required"),
        ({"message": "m", "timestamp": 1}, "ErrorResponse: 'code' is required"),
        (
            {"code": "InvalidRequest", "message": 5, "timestamp": 1},
            "ErrorResponse: message: 5 is not of type 'string'",
        ),
        (
            {"code": "VersionMismatch", "message": "m", "timestamp": 1},
            "ErrorResponse: 'executionState' is required",
        ),
        (
            {"code": "Nope", "message": "m", "timestamp": 1},
            "ErrorResponse: code: 'Nope' is not one of ['InvalidTopic', 'InvalidJson', 'InvalidRequest', "
            "'InvalidStateTransition', 'ResourceNotFound', 'VersionMismatch', 'InternalError', "
            "'RequestThrottled', 'TerminalStateReached']",
        ),
    ],
)
def test_rejection_invalid(payload, message):
    assert _invalid(rejection_from_payload, payload) == message
