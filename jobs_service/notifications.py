"""What to tell a thing after its pending list changed (spec §2.11).

``notify`` goes out when the *membership* of the pending set changes;
``notify-next`` when the *identity* of its head changes. Both are computed
from the list before and after a committed change, so every path (device
update, cancel, delete, retry, group change) follows the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from iot_jobs_bridge.schemas import topics

from .models import JobExecution
from .mqtt_payloads import NOTIFY_CAP, notify_next_payload, notify_payload

__all__ = ["Message", "pending_changes"]


@dataclass(frozen=True)
class Message:
    """One MQTT publish the service owes a client, sent after the commit."""

    topic: str
    payload: dict[str, Any]


def _identity(execution: JobExecution) -> tuple[str, int]:
    return execution.job_id, execution.execution_number


def pending_changes(
    thing_name: str,
    before: list[JobExecution],
    after: list[JobExecution],
    *,
    now: float,
    document_of: Callable[[str], str],
    notify_cap: int = NOTIFY_CAP,
    membership_changed: bool | None = None,
) -> list[Message]:
    """notify and notify-next messages owed for a change from ``before`` to ``after``.

    Both lists are in "next" order (see ``states.pending_order``). They may be
    only the first ``notify_cap`` entries when ``membership_changed`` says
    whether the whole pending set changed; otherwise the lists are compared.
    """
    messages: list[Message] = []
    if membership_changed is None:
        membership_changed = {_identity(e) for e in before} != {_identity(e) for e in after}
    if membership_changed:
        messages.append(Message(topics.notify(thing_name), notify_payload(after, now, notify_cap)))
    head_before = _identity(before[0]) if before else None
    head_after = after[0] if after else None
    if head_before != (_identity(head_after) if head_after else None):
        document = document_of(head_after.job_id) if head_after else None
        messages.append(
            Message(topics.notify_next(thing_name), notify_next_payload(head_after, document, now))
        )
    return messages
