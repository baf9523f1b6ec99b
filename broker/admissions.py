"""CONNECTs are admitted one at a time per client id, in the order they ask.

A device that gives up waiting for its CONNACK connects again, so under a
connect storm two CONNECTs for one client id can be in the broker at once,
both waiting (for their authentication, or for an older connection to be
taken over). Admitted side by side, the later registration replaced the
earlier one, which stayed open unseen; or an earlier one, admitted last,
replaced the live connection, whose messages then went to a dead one. In
turns, each admission takes over the connection admitted before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

__all__ = ["Admissions"]


@dataclass
class _Turns:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # admissions holding or waiting for the lock


class Admissions:
    """One admission at a time per client id."""

    def __init__(self) -> None:
        self._turns: dict[str, _Turns] = {}

    def __len__(self) -> int:
        """Client ids with an admission under way or waiting."""
        return len(self._turns)

    @asynccontextmanager
    async def turn(self, client_id: str) -> AsyncIterator[Callable[[], None]]:
        """Wait for ``client_id``'s turn; the function yielded ends it early (leaving the block does too)."""
        turns = self._turns.get(client_id)
        if turns is None:
            turns = self._turns[client_id] = _Turns()
        turns.users += 1
        try:
            await turns.lock.acquire()
        except BaseException:
            self._leave(client_id, turns)
            raise
        ended = False

        def end() -> None:
            nonlocal ended
            if not ended:
                ended = True
                turns.lock.release()
                self._leave(client_id, turns)

        try:
            yield end
        finally:
            end()

    def _leave(self, client_id: str, turns: _Turns) -> None:
        turns.users -= 1
        if not turns.users and self._turns.get(client_id) is turns:
            del self._turns[client_id]
