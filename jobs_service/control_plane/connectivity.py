"""GetThingConnectivityData: whether a thing's device is connected now, from the broker's presence.

The embedded broker knows every connection (`broker.presence`); a device's
client id is its thing name. On Mosquitto or another broker the service sees
no connections, so the operation says it cannot tell rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iot_jobs_bridge.broker.presence import Presence

from ..errors import InvalidRequest, ResourceNotFound
from .base import Handler, Params

__all__ = ["Connectivity"]


class Connectivity:
    """The handler; ``presence`` is the embedded broker's, or None when the service runs on another."""

    def __init__(
        self,
        thing_exists: Callable[[str], bool],
        presence: Callable[[str], Presence | None] | None,
        broker: str = "embedded",
    ) -> None:
        self._thing_exists = thing_exists
        self._presence = presence
        self._broker = broker

    def handlers(self) -> dict[str, Handler]:
        return {"GetThingConnectivityData": self.get_thing_connectivity_data}

    def get_thing_connectivity_data(self, params: Params) -> dict[str, Any]:
        name = params["thingName"]
        if not self._thing_exists(name):
            raise ResourceNotFound(f"Thing {name} does not exist")
        if self._presence is None:
            raise InvalidRequest(
                f"Whether {name} is connected is not known: the {self._broker} broker does not report"
                " connections to this server (the embedded broker does)"
            )
        state = self._presence(name)
        if state is None:
            # Never connected since the broker started, as AWS answers for a device never seen.
            return {"thingName": name, "connected": False}
        answer: dict[str, Any] = {
            "thingName": name,
            "connected": state.connected,
            "timestamp": state.timestamp,
        }
        if state.disconnect_reason is not None:
            answer["disconnectReason"] = state.disconnect_reason.value
        if params.get("includeSocketInformation") and state.connected:
            answer.update(
                sourceIp=state.ip_address,
                sourcePort=state.port,
                keepAliveDuration=state.keepalive,
                cleanSession=state.clean_session,
                clientId=state.client_id,
            )
        return answer
