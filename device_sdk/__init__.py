"""Device-side AWS IoT Jobs: a jobs client and a job runner on asyncio and a small MQTT 3.1.1 client.

It speaks only the documented MQTT topics, so the same code runs against this
project's broker, Mosquitto, or AWS IoT Core. It never imports ``jobs_service``.

* :class:`AsyncJobsClient` / :class:`JobsClient`: the four requests, the two
  notifications, reconnect with backoff, resynchronisation after reconnect.
* :class:`JobRunner`: runs the next job with a registered handler or the
  built-in handler for AWS IoT Device Client documents, and reports how it ended.
* :mod:`device_sdk.testing`: a scripted fake device for tests and simulations.
"""

from .async_client import AsyncJobsClient
from .client import JobsClient
from .connection import Backoff, Endpoint, TlsOptions
from .errors import ClientClosed, InvalidResponse, JobsError, RequestRejected, RequestTimedOut
from .job import Job, JobRejected, Outcome
from .models import (
    JobExecution,
    JobExecutionsChanged,
    JobExecutionState,
    JobExecutionSummary,
    NextJobExecutionChanged,
    PendingJobs,
    UpdateResult,
)
from .process import ProcessResult
from .runner import Handler, JobReport, JobRunner

__all__ = [
    "AsyncJobsClient",
    "Backoff",
    "ClientClosed",
    "Endpoint",
    "Handler",
    "InvalidResponse",
    "Job",
    "JobExecution",
    "JobExecutionState",
    "JobExecutionSummary",
    "JobExecutionsChanged",
    "JobRejected",
    "JobReport",
    "JobRunner",
    "JobsClient",
    "JobsError",
    "NextJobExecutionChanged",
    "Outcome",
    "PendingJobs",
    "ProcessResult",
    "RequestRejected",
    "RequestTimedOut",
    "TlsOptions",
    "UpdateResult",
]
