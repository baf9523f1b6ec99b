"""The seam between the device plane and a broker: requests in, messages out.

A transport hands each device request (topic, payload) to the request pump and
publishes the messages the pump owes. Two implementations, the same job logic
behind both: :class:`~.mqtt_bridge.MqttBridge`, an MQTT client for any broker,
and :class:`InProcessTransport` for the embedded broker in this process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Protocol

from iot_jobs_bridge.broker import EmbeddedBroker

from .render import Message

__all__ = ["InProcessTransport", "Transport", "publisher_for_any_thread"]


class Transport(Protocol):
    @property
    def connected(self) -> bool:
        """Whether requests can reach the service and replies leave it now."""
        ...

    @property
    def address(self) -> str:
        """Where it reaches the broker, for messages to an operator."""
        ...

    async def start(self) -> None: ...

    def publish(self, messages: list[Message]) -> None: ...

    async def close(self) -> None: ...


class InProcessTransport:
    """The embedded broker hands requests to the pump and routes replies itself: no socket, no thread.

    The broker applies its topic rules first, exactly as for a subscriber.
    """

    def __init__(self, broker: EmbeddedBroker, deliver: Callable[[str, bytes], None]) -> None:
        self._broker = broker
        self._deliver = deliver

    @property
    def connected(self) -> bool:
        return self._broker.running

    @property
    def address(self) -> str:
        return "the embedded broker, in process"

    async def start(self) -> None:
        self._broker.serve_requests(self._deliver)

    def publish(self, messages: list[Message]) -> None:
        for message in messages:
            self._broker.publish(message.topic, message.encoded())

    async def close(self) -> None:
        if self._broker.running:
            self._broker.serve_requests(None)


def publisher_for_any_thread(
    loop: asyncio.AbstractEventLoop, publish: Callable[[list[Message]], None]
) -> Callable[[list[Message]], None]:
    """``publish``, callable from any thread: off the loop's thread it is handed to the loop.

    Transports belong to the event loop (an asyncio transport or queue is not
    thread-safe), while control-plane calls and deletions commit on worker threads.
    Messages handed over keep their order.
    """
    loop_thread = threading.get_ident()  # called on the loop's thread

    def publish_from_anywhere(messages: list[Message]) -> None:
        if threading.get_ident() == loop_thread:
            publish(messages)
        else:
            loop.call_soon_threadsafe(publish, messages)

    return publish_from_anywhere
