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

The topic grammar is `schemas.topics`, the one the service and the SDK use.
"""

from __future__ import annotations

from iot_jobs_bridge.broker.auth import Principal
from iot_jobs_bridge.schemas import topics

__all__ = ["may_publish", "may_receive", "may_subscribe"]


def may_publish(principal: Principal, topic: str) -> bool:
    """Whether `principal` may publish to `topic`."""
    if principal.kind in ("admin", "service"):
        return True
    if principal.kind == "policy":
        return principal.may("iot:Publish", topic)
    return principal.kind == "thing" and topics.place(topic) == (principal.name, False)


def may_subscribe(principal: Principal, topic_filter: str) -> bool:
    """Whether `principal` may subscribe to `topic_filter`."""
    if principal.kind in ("admin", "service"):
        return True
    if principal.kind == "policy":
        return principal.may("iot:Subscribe", topic_filter)
    return principal.kind == "thing" and topics.thing_of_filter(topic_filter) == principal.name


def may_receive(principal: Principal, topic: str) -> bool:
    """Whether a message published on `topic` may be delivered to `principal`."""
    if principal.kind == "admin":
        return True
    if principal.kind == "service":
        placed = topics.place(topic)
        return placed is None or not placed.is_reply
    if principal.kind == "policy":
        return principal.may("iot:Receive", topic)
    return principal.kind == "thing" and topics.place(topic) == (principal.name, True)
