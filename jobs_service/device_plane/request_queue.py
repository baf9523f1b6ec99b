"""Requests waiting for the engine, served round-robin across things.

One device flooding the service only lengthens its own queue: every other
thing with a request waiting is served before that device's next one. Each
thing's queue is bounded, so a flood cannot grow memory without limit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

__all__ = ["FairQueue"]

T = TypeVar("T")


class FairQueue(Generic[T]):
    """Per-key FIFO queues; :meth:`get` takes from the keys in turn. Not thread-safe: use one loop."""

    def __init__(self, per_key_limit: int) -> None:
        self.per_key_limit = per_key_limit
        self._queues: dict[str, deque[T]] = {}
        self._turns: deque[str] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, key: str, item: T) -> bool:
        """Queue ``item`` for ``key``; False (and dropped) when that key's queue is full."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            self._turns.append(key)
        if len(queue) >= self.per_key_limit:
            self.dropped += 1
            return False
        queue.append(item)
        self._ready.set()
        return True

    async def get(self) -> T:
        """The next item, taking keys in turn."""
        while not self._turns:
            self._ready.clear()
            await self._ready.wait()
        return self._take()

    def take(self, most: int) -> list[T]:
        """Up to ``most`` items that are waiting now, keys in turn; never waits."""
        taken: list[T] = []
        while self._turns and len(taken) < most:
            taken.append(self._take())
        return taken

    def _take(self) -> T:
        key = self._turns.popleft()
        queue = self._queues[key]
        item = queue.popleft()
        if queue:
            self._turns.append(key)
        else:
            del self._queues[key]
        return item

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())
