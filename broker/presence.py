"""Presence: AWS IoT lifecycle events for the embedded broker's connections, and who is connected.

When a client connects or its connection ends, the broker publishes, as AWS
IoT does::

    $aws/events/presence/connected/<clientId>
        {"clientId", "timestamp" (ms), "eventType": "connected", "sessionIdentifier",
         "principalIdentifier", "ipAddress", "versionNumber"}
    $aws/events/presence/disconnected/<clientId>
        {"clientId", "timestamp", "eventType": "disconnected", "sessionIdentifier",
         "principalIdentifier", "clientInitiatedDisconnect", "disconnectReason", "versionNumber"}

The topic ACL decides who receives them: the admin key does, a device does
not (its rights end at its own jobs topics). The connected and disconnected
events of one connection share a ``versionNumber``, which grows from one
connection to the next. Client ids holding ``+``, ``#`` or NUL get no events
(AWS IoT sends none for the first two).

`PresenceBook` keeps the latest state of each client id, so "is it connected
now?" has an answer without retained messages (AWS IoT retains nothing on
``$`` topics, nor does this broker). It holds every connected client and at
most `REMEMBERED` disconnected ones, forgetting the longest gone first, and
counts the connected clients that are devices (not the admin key's monitors or
the jobs service's own connection).
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = ["REMEMBERED", "DisconnectReason", "Presence", "PresenceBook", "presence_topic"]

#: Disconnected clients remembered, besides every connected one.
REMEMBERED = 100_000

_PREFIX = "$aws/events/presence/"


class DisconnectReason(StrEnum):
    """Why a connection ended, in AWS IoT's words (those this broker can tell apart)."""

    CLIENT_INITIATED_DISCONNECT = "CLIENT_INITIATED_DISCONNECT"
    CONNECTION_LOST = "CONNECTION_LOST"
    DUPLICATE_CLIENTID = "DUPLICATE_CLIENTID"
    MQTT_KEEP_ALIVE_TIMEOUT = "MQTT_KEEP_ALIVE_TIMEOUT"
    AUTH_ERROR = "AUTH_ERROR"
    CLIENT_ERROR = "CLIENT_ERROR"
    THROTTLED = "THROTTLED"
    SERVER_INITIATED_DISCONNECT = "SERVER_INITIATED_DISCONNECT"


@dataclass(frozen=True)
class Presence:
    """The latest that is known of one client id's connection."""

    client_id: str
    connected: bool
    # When it connected, or when it disconnected (epoch seconds on the broker's clock).
    timestamp: float
    session_identifier: str
    principal_identifier: str
    version_number: int
    ip_address: str | None = None
    port: int | None = None
    keepalive: int | None = None
    clean_session: bool = True
    disconnect_reason: DisconnectReason | None = None


def presence_topic(event: str, client_id: str) -> str:
    """``$aws/events/presence/<event>/<clientId>``; ``event`` is ``connected`` or ``disconnected``."""
    return f"{_PREFIX}{event}/{client_id}"


class PresenceBook:
    """Each client id's latest connection state, and the events its changes produce."""

    def __init__(self, now: Callable[[], float], remembered: int = REMEMBERED) -> None:
        self._now = now
        self._remembered = remembered
        self._connected: dict[str, Presence] = {}
        self._gone: OrderedDict[str, Presence] = OrderedDict()
        # The connected client ids that are devices.
        self._devices: set[str] = set()
        # Seeded from the clock, so numbers keep growing across restarts of the broker.
        self._last_version = int(now() * 1000)

    def get(self, client_id: str) -> Presence | None:
        return self._connected.get(client_id) or self._gone.get(client_id)

    @property
    def devices_connected(self) -> int:
        """How many devices are connected now; safe to read from any thread."""
        return len(self._devices)

    def connected(
        self,
        client_id: str,
        *,
        session_identifier: str | None = None,
        principal_identifier: str,
        ip_address: str | None,
        port: int | None,
        keepalive: int | None,
        clean_session: bool,
        device: bool = True,
    ) -> tuple[Presence, tuple[str, bytes] | None]:
        """Record a new connection; returns its state and its event (topic, payload), if it gets one.

        ``device``: whether the client is a device (a thing, or a certificate's policies), counted as one.
        """
        now = self._now()
        self._last_version = max(self._last_version + 1, int(now * 1000))
        presence = Presence(
            client_id=client_id,
            connected=True,
            timestamp=now,
            session_identifier=session_identifier or uuid.uuid4().hex,
            principal_identifier=principal_identifier,
            version_number=self._last_version,
            ip_address=ip_address,
            port=port,
            keepalive=keepalive,
            clean_session=clean_session,
        )
        self._gone.pop(client_id, None)
        self._connected[client_id] = presence
        if device:
            self._devices.add(client_id)
        else:
            self._devices.discard(client_id)
        payload = {
            "clientId": client_id,
            "timestamp": _millis(now),
            "eventType": "connected",
            "sessionIdentifier": presence.session_identifier,
            "principalIdentifier": principal_identifier,
            "ipAddress": ip_address,
            "versionNumber": presence.version_number,
        }
        return presence, _event("connected", client_id, payload)

    def disconnected(self, connection: Presence, reason: DisconnectReason) -> tuple[str, bytes] | None:
        """Record the end of ``connection``; returns its event, if it gets one.

        A connection that is no longer the client id's latest (a take-over that
        outran the old connection's end) changes no state, but still has its event.
        """
        now = self._now()
        if self._connected.get(connection.client_id) is connection:
            del self._connected[connection.client_id]
            self._devices.discard(connection.client_id)
            self._gone[connection.client_id] = replace(
                connection, connected=False, timestamp=now, disconnect_reason=reason
            )
            while len(self._gone) > self._remembered:
                self._gone.popitem(last=False)
        payload = {
            "clientId": connection.client_id,
            "timestamp": _millis(now),
            "eventType": "disconnected",
            "sessionIdentifier": connection.session_identifier,
            "principalIdentifier": connection.principal_identifier,
            "clientInitiatedDisconnect": reason is DisconnectReason.CLIENT_INITIATED_DISCONNECT,
            "disconnectReason": reason.value,
            "versionNumber": connection.version_number,
        }
        return _event("disconnected", connection.client_id, payload)


def _event(kind: str, client_id: str, payload: dict[str, object]) -> tuple[str, bytes] | None:
    if not client_id or any(c in client_id for c in "+#\x00"):
        return None
    return presence_topic(kind, client_id), json.dumps(payload, separators=(",", ":")).encode()


def _millis(seconds: float) -> int:
    return int(seconds * 1000)
