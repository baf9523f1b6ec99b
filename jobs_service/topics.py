"""Every device-plane topic is built and parsed here, with anchored patterns.

Reply topics (``.../accepted``, ``.../rejected``, ``notify``, ``notify-next``)
never parse as requests, so the service never answers its own replies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "JOBS_REQUEST_FILTER",
    "Operation",
    "Request",
    "accepted",
    "describe",
    "get_pending",
    "job_event",
    "job_execution_event",
    "notify",
    "notify_next",
    "parse_request",
    "rejected",
    "start_next",
    "update",
]

# What the service subscribes to: everything under any thing's jobs topics, so
# unknown paths can be answered with InvalidTopic.
JOBS_REQUEST_FILTER = "$aws/things/+/jobs/#"

_THING = r"[a-zA-Z0-9:_-]{1,128}"
_JOB_ID = r"[a-zA-Z0-9_-]{1,64}"
_JOBS_PREFIX = re.compile(rf"\$aws/things/(?P<thing>{_THING})/jobs/(?P<rest>.+)", re.DOTALL)
# The same reply shapes the broker's ACL uses: never answered, never published by devices.
_REPLY = re.compile(r"notify|notify-next|.+/(?:accepted|rejected)", re.DOTALL)
_DESCRIBE = re.compile(rf"(?P<job>{_JOB_ID}|\$next)/get")
_UPDATE = re.compile(rf"(?P<job>{_JOB_ID})/update")


class Operation(Enum):
    GET_PENDING = "get"
    START_NEXT = "start-next"
    DESCRIBE = "describe"
    UPDATE = "update"
    INVALID = "invalid"


@dataclass(frozen=True)
class Request:
    """A device request, parsed from the topic it arrived on."""

    topic: str
    thing_name: str
    operation: Operation
    job_id: str | None = None


def parse_request(topic: str) -> Request | None:
    """Parse a publish under ``$aws/things/<thing>/jobs/``.

    Returns None for topics that are not device requests at all (outside the
    jobs tree, or reply topics); ``Operation.INVALID`` for paths under a
    thing's jobs tree that name no operation.
    """
    match = _JOBS_PREFIX.fullmatch(topic)
    if match is None:
        return None
    thing, rest = match["thing"], match["rest"]
    if _REPLY.fullmatch(rest):
        return None
    if rest == "get":
        return Request(topic, thing, Operation.GET_PENDING)
    if rest == "start-next":
        return Request(topic, thing, Operation.START_NEXT)
    if described := _DESCRIBE.fullmatch(rest):
        return Request(topic, thing, Operation.DESCRIBE, described["job"])
    if updated := _UPDATE.fullmatch(rest):
        return Request(topic, thing, Operation.UPDATE, updated["job"])
    return Request(topic, thing, Operation.INVALID)


def _jobs(thing_name: str) -> str:
    return f"$aws/things/{thing_name}/jobs"


def get_pending(thing_name: str) -> str:
    return f"{_jobs(thing_name)}/get"


def start_next(thing_name: str) -> str:
    return f"{_jobs(thing_name)}/start-next"


def describe(thing_name: str, job_id: str) -> str:
    return f"{_jobs(thing_name)}/{job_id}/get"


def update(thing_name: str, job_id: str) -> str:
    return f"{_jobs(thing_name)}/{job_id}/update"


def accepted(request_topic: str) -> str:
    """The literal request topic plus ``/accepted`` (``$next`` stays ``$next``)."""
    return f"{request_topic}/accepted"


def rejected(request_topic: str) -> str:
    return f"{request_topic}/rejected"


def notify(thing_name: str) -> str:
    return f"{_jobs(thing_name)}/notify"


def notify_next(thing_name: str) -> str:
    return f"{_jobs(thing_name)}/notify-next"


def job_event(job_id: str, operation: str) -> str:
    return f"$aws/events/job/{job_id}/{operation}"


def job_execution_event(job_id: str, operation: str) -> str:
    return f"$aws/events/jobExecution/{job_id}/{operation}"
