"""What a client, and all clients together, can make the embedded broker hold."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

__all__ = ["BrokerLimits", "LimitLog"]

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class BrokerLimits:
    """The embedded broker's bounds; each one closes the connection that reaches it, with a log line.

    The defaults follow AWS IoT Core's message broker limits where it has one
    (128 KB per MQTT message, keepalive 30 to 1200 seconds).
    """

    # Largest packet a client may send, after its fixed header: the largest PUBLISH AWS IoT
    # takes (a 128 KB payload on a 256-byte topic, with their length and packet id fields).
    # Its length is read first: a larger packet is never buffered.
    max_packet_bytes: int = 128 * KIB + 2 + 256 + 2
    # Largest CONNECT (client id, credentials, will), read before the client is known.
    max_connect_bytes: int = 16 * KIB
    # From accepting a socket to its CONNECT, the TLS handshake included.
    connect_timeout: float = 10.0
    # TLS handshakes in progress at once; beyond it new sockets are closed at once.
    max_pending_handshakes: int = 256
    # A client's keepalive is brought into this range; 0 (no keepalive) means the maximum.
    keepalive_min: int = 30
    keepalive_max: int = 1200
    # Open connections, all listeners together; beyond it new sockets are closed at once.
    max_connections: int = 10_000
    # Bytes waiting to be written to one client, and to all clients together.
    max_queued_bytes_per_client: int = 8 * MIB
    max_queued_bytes: int = 256 * MIB

    def __post_init__(self) -> None:
        positive = {
            "max_packet_bytes": self.max_packet_bytes,
            "max_connect_bytes": self.max_connect_bytes,
            "connect_timeout": self.connect_timeout,
            "max_pending_handshakes": self.max_pending_handshakes,
            "max_connections": self.max_connections,
            "max_queued_bytes_per_client": self.max_queued_bytes_per_client,
            "max_queued_bytes": self.max_queued_bytes,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        if not 0 < self.keepalive_min <= self.keepalive_max <= 65535:
            raise ValueError(
                f"the keepalive range {self.keepalive_min}-{self.keepalive_max} is not within 1-65535"
            )
        # MQTT's remaining length field tops out at 256 MiB.
        if self.max_packet_bytes > 256 * MIB - 1:
            raise ValueError(f"max_packet_bytes {self.max_packet_bytes} is above MQTT's 268435455")

    def keepalive(self, requested: int) -> int:
        """The keepalive the broker enforces for a client that asked for ``requested`` seconds."""
        if requested == 0:
            return self.keepalive_max
        return min(max(requested, self.keepalive_min), self.keepalive_max)


class LimitLog:
    """Reports a bound that bites: at once the first time, then at most once every ``every`` seconds.

    A flood of connections must not become a flood of log lines; each later
    line says how many times the bound bit since the last one.
    """

    def __init__(self, logger: logging.Logger, every: float = 10.0) -> None:
        self._logger = logger
        self._every = every
        self._last: float | None = None
        self._since = 0

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        self._since += 1
        if self._last is not None and now - self._last < self._every:
            return
        if self._since > 1:
            message += " (%d times since the last report)"
            args = (*args, self._since)
        self._logger.warning(message, *args)
        self._last, self._since = now, 0
