"""The device plane's topic grammar, one for the broker's access rules, the jobs service and the device SDK.

Every ``$aws/things/<thing>/jobs/...`` and ``$aws/events/...`` topic is built
and parsed here (spec §2, §5). Patterns are anchored (``fullmatch``) and a
thing name is compared with ``==`` after parsing, never used as a pattern.

Reply-shaped topics (``.../accepted``, ``.../rejected``, ``notify``,
``notify-next``) never parse as requests: devices may not publish them and the
service never answers its own replies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Literal, NamedTuple

__all__ = [
    "JOBS_REQUEST_FILTER",
    "JOB_ID",
    "REQUEST_PATHS",
    "REQUEST_SHAPE_FILTERS",
    "THING_NAME",
    "Incoming",
    "Operation",
    "Place",
    "Request",
    "ThingTopics",
    "accepted",
    "job_event",
    "job_execution_event",
    "notify",
    "notify_next",
    "parse_request",
    "place",
    "rejected",
    "thing_of_filter",
]

#: A thing name, as CreateThing accepts it.
THING_NAME = r"[a-zA-Z0-9:_-]{1,128}"
#: A job id, as CreateJob accepts it (``$next`` is an alias for DescribeJobExecution only).
JOB_ID = r"[a-zA-Z0-9_-]{1,64}"
#: Every topic of every thing's jobs tree: what the service listens to on the embedded
#: broker (which sends it no replies back), so unknown paths get InvalidTopic.
JOBS_REQUEST_FILTER = "$aws/things/+/jobs/#"
#: The four request shapes under a thing's jobs prefix, as topic filters: what Mosquitto's
#: device rules let a device publish.
REQUEST_PATHS = ("get", "start-next", "+/get", "+/update")
#: Those shapes for every thing and nothing else: what the service subscribes to on another
#: broker, where ``jobs/#`` would bring back every reply and notification it publishes (D71).
REQUEST_SHAPE_FILTERS = tuple(f"$aws/things/+/jobs/{path}" for path in REQUEST_PATHS)

_JOBS_TOPIC = re.compile(rf"\$aws/things/(?P<thing>{THING_NAME})/jobs/(?P<rest>.+)", re.DOTALL)
_REPLY = re.compile(r"notify|notify-next|(?P<request>.+)/(?P<kind>accepted|rejected)", re.DOTALL)
_DESCRIBE = re.compile(rf"(?P<job>{JOB_ID}|\$next)/get")
_UPDATE = re.compile(rf"(?P<job>{JOB_ID})/update")
_JOB_ID = re.compile(JOB_ID)
_THING_NAME = re.compile(THING_NAME)
# One or more filter levels after `jobs/`: literals or `+`, optionally ending in `#`.
_FILTER_LEVELS = re.compile(r"(?:(?:[^/+#]+|\+)/)*(?:[^/+#]+|\+|#)")


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


def _split(topic: str) -> tuple[str, str] | None:
    """``(thing, rest)`` for a topic under some thing's jobs tree."""
    match = _JOBS_TOPIC.fullmatch(topic)
    return None if match is None else (match["thing"], match["rest"])


def parse_request(topic: str) -> Request | None:
    """The request a publish under ``$aws/things/<thing>/jobs/`` makes.

    ``None`` for topics that are not device requests at all (outside the jobs
    tree, or reply-shaped); ``Operation.INVALID`` for paths under a thing's
    jobs tree that name no operation.
    """
    split = _split(topic)
    if split is None:
        return None
    thing, rest = split
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


class Place(NamedTuple):
    """Where a topic sits in the jobs trees: whose, and whether it is a reply or notification."""

    thing_name: str
    is_reply: bool


def place(topic: str) -> Place | None:
    """Whose jobs tree holds ``topic`` and whether it is reply-shaped; ``None`` outside every jobs tree."""
    split = _split(topic)
    return None if split is None else Place(split[0], _REPLY.fullmatch(split[1]) is not None)


def thing_of_filter(topic_filter: str) -> str | None:
    """The thing whose jobs tree ``topic_filter`` stays inside (thing level written out), or ``None``."""
    split = _split(topic_filter)
    if split is None or _FILTER_LEVELS.fullmatch(split[1]) is None:
        return None
    return split[0]


def _jobs(thing_name: str) -> str:
    return f"$aws/things/{thing_name}/jobs"


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


@dataclass(frozen=True)
class Incoming:
    """What an incoming topic is for a thing: a reply to one of its request topics, or a notification."""

    kind: Literal["accepted", "rejected", "notify", "notify-next"]
    request_topic: str = ""


class ThingTopics:
    """The topics of one thing's jobs tree, checked as they are built."""

    def __init__(self, thing_name: str) -> None:
        if _THING_NAME.fullmatch(thing_name) is None:
            raise ValueError(f"{thing_name!r} is not a usable thing name")
        self.thing_name = thing_name
        self.prefix = _jobs(thing_name)

    @property
    def get_pending(self) -> str:
        return f"{self.prefix}/get"

    @property
    def start_next(self) -> str:
        return f"{self.prefix}/start-next"

    def describe(self, job_id: str) -> str:
        if job_id != "$next":
            _check_job_id(job_id)
        return f"{self.prefix}/{job_id}/get"

    def update(self, job_id: str) -> str:
        if job_id == "$next":
            raise ValueError("an update names its job; $next is only for describe")
        return f"{self.prefix}/{_check_job_id(job_id)}/update"

    @property
    def notify(self) -> str:
        return notify(self.thing_name)

    @property
    def notify_next(self) -> str:
        return notify_next(self.thing_name)

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """The filters a jobs client needs: its two notifications and every reply it can get.

        Each is narrow enough for the AWS sample policy (``jobs/*/get/*`` and so on).
        """
        return (
            self.notify,
            self.notify_next,
            f"{self.get_pending}/+",
            f"{self.start_next}/+",
            f"{self.prefix}/+/get/+",
            f"{self.prefix}/+/update/+",
        )

    def classify(self, topic: str) -> Incoming | None:
        """What ``topic`` is for this thing, or ``None`` when it is none of ours."""
        split = _split(topic)
        if split is None or split[0] != self.thing_name:
            return None
        rest = split[1]
        if rest == "notify":
            return Incoming("notify")
        if rest == "notify-next":
            return Incoming("notify-next")
        match = _REPLY.fullmatch(rest)
        if match is None:
            return None
        kind: Literal["accepted", "rejected"] = "accepted" if match["kind"] == "accepted" else "rejected"
        return Incoming(kind, f"{self.prefix}/{match['request']}")


def _check_job_id(job_id: str) -> str:
    if _JOB_ID.fullmatch(job_id) is None:
        raise ValueError(f"{job_id!r} is not a valid job id")
    return job_id
