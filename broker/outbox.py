"""What the broker has handed each client's connection and not yet seen through, and its bounds.

A subscriber that does not read (or never acknowledges) would make the broker
hold its messages without bound. A message counts here from the moment it is
handed to a connection until it is done: written and, at QoS 1, acknowledged
by PUBACK, or its connection ended. A client over its own bound, or a message
that would take the broker over its bound in all, closes that client's
connection; the jobs service's own connection is never closed for it (that
would drop every device's requests): the message to it is dropped instead,
with a log line.
"""

from __future__ import annotations

import logging
from typing import Any

from iot_jobs_bridge.broker.framing import abort_connection
from iot_jobs_bridge.broker.limits import BrokerLimits, LimitLog
from iot_jobs_bridge.broker.plugins import session_principal
from iot_jobs_bridge.broker.presence import DisconnectReason
from iot_jobs_bridge.broker.protocol import mark_ending

__all__ = ["Outbox"]


class Outbox:
    """Bytes waiting per connection (its handler) and in all, against `BrokerLimits`."""

    def __init__(self, limits: BrokerLimits, log: logging.Logger) -> None:
        self._limits = limits
        self._waiting: dict[Any, int] = {}
        self._total = 0
        self._full_for_service = LimitLog(log)
        self._full = LimitLog(log)

    @property
    def total(self) -> int:
        """Bytes waiting across every connection."""
        return self._total

    def take(self, session: Any, handler: Any, size: int) -> bool:
        """Count ``size`` more bytes for ``handler`` if the bounds allow; see the module for when not."""
        limits = self._limits
        waiting = self._waiting.get(handler, 0) + size
        over_own = waiting > limits.max_queued_bytes_per_client
        over_all = self._total + size > limits.max_queued_bytes
        if not (over_own or over_all):
            self._waiting[handler] = waiting
            self._total += size
            return True
        bound = "its own limit" if over_own else f"the broker's limit of {limits.max_queued_bytes} in all"
        principal = session_principal(session)
        if principal is not None and principal.kind == "service":
            self._full_for_service(
                "dropped a message to the jobs service: %d bytes wait to be sent to it (%s)", waiting, bound
            )
            return False
        self._full("closing %s: %d bytes wait to be sent to it (%s)", session.client_id, waiting, bound)
        mark_ending(handler, DisconnectReason.THROTTLED)
        abort_connection(handler.writer)
        return False

    def release(self, handler: Any, size: int) -> None:
        """``size`` bytes counted for ``handler`` are done."""
        self._total -= size
        left = self._waiting.get(handler, 0) - size
        if left > 0:
            self._waiting[handler] = left
        else:
            self._waiting.pop(handler, None)

    def connection_ended(self, handler: Any) -> None:
        """Release what ``handler`` wrote and never saw acknowledged; it will not be now.

        The messages stay in the session's in-flight messages, for a persistent
        session to get again when it reconnects.
        """
        handler.on_acknowledged = None
        for size in handler.unacknowledged.values():
            self.release(handler, size)
        handler.unacknowledged.clear()
