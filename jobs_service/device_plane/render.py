"""The engine's domain events as MQTT messages (spec §2.11, §5).

``notify`` goes out when the *membership* of a thing's pending set changes;
``notify-next`` when the *identity* of its head changes. The engine decides
both from the list before and after a committed change, so every path (device
update, cancel, delete, retry, group change) follows the same rule.
``$aws/events/...`` messages go out only when events are enabled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from iot_jobs_bridge.schemas import topics

from ..arns import Arns
from ..domain_events import DomainEvent, ExecutionChanged, JobChanged, PendingChanged
from .aws_events import job_event, job_execution_event
from .payloads import NOTIFY_CAP, notify_next_payload, notify_payload

__all__ = ["Message", "Renderer"]


@dataclass(frozen=True)
class Message:
    """One MQTT publish the service owes a client, sent after the commit."""

    topic: str
    payload: dict[str, Any]

    def encoded(self) -> bytes:
        """The payload as sent: compact JSON."""
        return json.dumps(self.payload, separators=(",", ":")).encode()


class Renderer:
    """Renders domain events to the messages devices and watchers are owed."""

    def __init__(self, arns: Arns, *, aws_events: bool = True, notify_cap: int = NOTIFY_CAP) -> None:
        self.arns = arns
        self.aws_events = aws_events
        self.notify_cap = notify_cap

    def render(self, events: Iterable[DomainEvent]) -> list[Message]:
        messages: list[Message] = []
        for event in events:
            if isinstance(event, PendingChanged):
                messages += self._pending(event)
            elif not self.aws_events:
                continue
            elif isinstance(event, ExecutionChanged):
                payload = job_execution_event(event.execution, event.operation, self.arns, event.at)
                messages.append(
                    Message(topics.job_execution_event(event.execution.job_id, event.operation), payload)
                )
            elif isinstance(event, JobChanged):
                payload = job_event(event.job, event.operation, event.status, event.at, event.counts)
                messages.append(Message(topics.job_event(event.job.job_id, event.operation), payload))
        return messages

    def _pending(self, event: PendingChanged) -> list[Message]:
        thing, pending = event.thing_name, list(event.pending)
        messages: list[Message] = []
        if event.membership_changed:
            messages.append(Message(topics.notify(thing), notify_payload(pending, event.at, self.notify_cap)))
        if event.head_changed:
            head = pending[0] if pending else None
            payload = notify_next_payload(head, event.head_document, event.at)
            messages.append(Message(topics.notify_next(thing), payload))
        return messages
