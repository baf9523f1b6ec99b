"""The jobs topics one thing uses, built and parsed in one place.

Replies arrive on the request topic plus ``/accepted`` or ``/rejected``; the
client correlates them by ``clientToken``, and by request topic only when the
service could not echo a token (``InvalidJson``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Incoming", "ThingTopics"]

# A job id on AWS: 1-64 of letters, digits, '-' and '_' ($next is the one alias).
_JOB_ID = re.compile(r"\$next|[a-zA-Z0-9_-]{1,64}")


@dataclass(frozen=True)
class Incoming:
    """What an incoming topic is: a reply to a request topic, or a notification."""

    kind: Literal["accepted", "rejected", "notify", "notify-next"]
    request_topic: str = ""


class ThingTopics:
    """Topics under ``$aws/things/<thing>/jobs`` for one thing."""

    def __init__(self, thing_name: str) -> None:
        if not thing_name or any(c in thing_name for c in "+#/"):
            raise ValueError(f"{thing_name!r} is not a usable thing name")
        self.thing_name = thing_name
        self.prefix = f"$aws/things/{thing_name}/jobs"
        self._reply = re.compile(re.escape(self.prefix) + r"/(.+)/(accepted|rejected)")

    @property
    def get_pending(self) -> str:
        return f"{self.prefix}/get"

    @property
    def start_next(self) -> str:
        return f"{self.prefix}/start-next"

    def describe(self, job_id: str) -> str:
        return f"{self.prefix}/{self._job_id(job_id)}/get"

    def update(self, job_id: str) -> str:
        if job_id == "$next":
            raise ValueError("an update names its job; $next is only for describe")
        return f"{self.prefix}/{self._job_id(job_id)}/update"

    @property
    def notify(self) -> str:
        return f"{self.prefix}/notify"

    @property
    def notify_next(self) -> str:
        return f"{self.prefix}/notify-next"

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
        if topic == self.notify:
            return Incoming("notify")
        if topic == self.notify_next:
            return Incoming("notify-next")
        match = self._reply.fullmatch(topic)
        if match is None:
            return None
        kind: Literal["accepted", "rejected"] = "accepted" if match[2] == "accepted" else "rejected"
        return Incoming(kind, f"{self.prefix}/{match[1]}")

    @staticmethod
    def _job_id(job_id: str) -> str:
        if _JOB_ID.fullmatch(job_id) is None:
            raise ValueError(f"{job_id!r} is not a valid job id")
        return job_id
