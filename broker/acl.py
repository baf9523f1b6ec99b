"""Topic access rules for the AWS IoT Jobs device API (spec §2.1, §9.6).

Pure functions, no I/O. An admin may do anything; a thing may use only its own
`$aws/things/<name>/jobs/...` topics, in the direction AWS allows:

* publish: any topic of its jobs subtree that is not reply-shaped, so the
  request topics reach the service and a path that names no operation is
  answered with `InvalidTopic` on its `/rejected` topic;
* subscribe: any filter inside its own jobs subtree (the thing level written
  out, never a wildcard);
* receive: the reply-shaped topics (`.../accepted`, `.../rejected`, `notify`,
  `notify-next`), so a `jobs/#` subscription never shows it requests.

The jobs service itself (`"service"`) may publish and subscribe to anything
but never receives reply-shaped topics: it subscribes to every jobs topic to
see unknown paths, and this keeps its own replies from coming back to it.

Every pattern is matched with `re.fullmatch`, and the thing name is compared
with `==` after parsing, so a name is never interpreted as a pattern.
"""

from __future__ import annotations

import re

from iot_jobs_bridge.broker.auth import Principal

__all__ = ["is_request_topic", "may_publish", "may_receive", "may_subscribe"]

_THING = r"[a-zA-Z0-9:_-]+"
_JOB_ID = r"[a-zA-Z0-9_-]+"
_PREFIX = rf"\$aws/things/(?P<thing>{_THING})/jobs/"
# `$next` is accepted in place of a job id for DescribeJobExecution only.
_REQUESTS = rf"(?:get|start-next|(?:{_JOB_ID}|\$next)/get|{_JOB_ID}/update)"

_REQUEST_TOPIC = re.compile(_PREFIX + _REQUESTS)
_OWN_TOPIC = re.compile(_PREFIX + r".+", re.DOTALL)
# Replies, including `<any path>/rejected` for InvalidTopic answers.
_REPLY_TOPIC = re.compile(_PREFIX + r"(?:notify|notify-next|.+/(?:accepted|rejected))", re.DOTALL)
# One or more filter levels after `jobs/`: literals or `+`, optionally ending in `#`.
_OWN_FILTER = re.compile(_PREFIX + r"(?:(?:[^/+#]+|\+)/)*(?:[^/+#]+|\+|#)")


def is_request_topic(topic: str) -> bool:
    """Whether `topic` is one of the four device request topics of some thing."""
    return _REQUEST_TOPIC.fullmatch(topic) is not None


def _is_own(pattern: re.Pattern[str], principal: Principal, topic: str) -> bool:
    match = pattern.fullmatch(topic)
    return match is not None and match["thing"] == principal.name


def may_publish(principal: Principal, topic: str) -> bool:
    """Whether `principal` may publish to `topic`."""
    if principal.kind in ("admin", "service"):
        return True
    if principal.kind == "policy":
        return principal.may("iot:Publish", topic)
    return (
        principal.kind == "thing"
        and _is_own(_OWN_TOPIC, principal, topic)
        and _REPLY_TOPIC.fullmatch(topic) is None
    )


def may_subscribe(principal: Principal, topic_filter: str) -> bool:
    """Whether `principal` may subscribe to `topic_filter`."""
    if principal.kind in ("admin", "service"):
        return True
    if principal.kind == "policy":
        return principal.may("iot:Subscribe", topic_filter)
    return principal.kind == "thing" and _is_own(_OWN_FILTER, principal, topic_filter)


def may_receive(principal: Principal, topic: str) -> bool:
    """Whether a message published on `topic` may be delivered to `principal`."""
    if principal.kind == "admin":
        return True
    if principal.kind == "service":
        return _REPLY_TOPIC.fullmatch(topic) is None
    if principal.kind == "policy":
        return principal.may("iot:Receive", topic)
    return principal.kind == "thing" and _is_own(_REPLY_TOPIC, principal, topic)
