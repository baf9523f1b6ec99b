"""The device plane renders the engine's domain events; events can be switched off, notifications cannot."""

from iot_jobs_bridge.jobs_service.arns import Arns
from iot_jobs_bridge.jobs_service.device_plane import Renderer
from iot_jobs_bridge.jobs_service.domain_events import ExecutionChanged, JobChanged, PendingChanged
from iot_jobs_bridge.jobs_service.models import ExecutionStatus, Job, JobExecution, JobStatus

RUNNING = JobExecution(
    job_id="j1",
    thing_name="t1",
    execution_number=1,
    status=ExecutionStatus.IN_PROGRESS,
    queued_at=10.0,
    last_updated_at=20.0,
    seq=1,
)
JOB = Job(job_id="j1", status=JobStatus.CANCELED, targets=[], document="{}", created_at=1, last_updated_at=2)
EVENTS = [
    PendingChanged(
        "t1", (RUNNING,), membership_changed=True, head_changed=True, head_document='{"a":1}', at=30.0
    ),
    ExecutionChanged(RUNNING.model_copy(update={"status": ExecutionStatus.CANCELED}), "canceled", 30.0),
    JobChanged(JOB, "canceled", "CANCELED", 30.0),
]


def test_every_event_is_rendered_in_order():
    messages = Renderer(Arns()).render(EVENTS)
    assert [m.topic for m in messages] == [
        "$aws/things/t1/jobs/notify",
        "$aws/things/t1/jobs/notify-next",
        "$aws/events/jobExecution/j1/canceled",
        "$aws/events/job/j1/canceled",
    ]
    assert messages[0].payload == {
        "timestamp": 30,
        "jobs": {
            "IN_PROGRESS": [
                {"jobId": "j1", "queuedAt": 10, "lastUpdatedAt": 20, "executionNumber": 1, "versionNumber": 1}
            ]
        },
    }
    assert messages[1].payload["execution"]["jobDocument"] == {"a": 1}


def test_without_events_devices_are_still_notified():
    messages = Renderer(Arns(), aws_events=False).render(EVENTS)
    assert [m.topic for m in messages] == ["$aws/things/t1/jobs/notify", "$aws/things/t1/jobs/notify-next"]


def test_only_what_changed_is_rendered():
    head_only = PendingChanged(
        "t1", (), membership_changed=False, head_changed=True, head_document=None, at=5.0
    )
    assert [(m.topic, m.payload) for m in Renderer(Arns()).render([head_only])] == [
        ("$aws/things/t1/jobs/notify-next", {"timestamp": 5})
    ]
