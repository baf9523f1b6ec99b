"""Which worker runs the timers: the one that leads.

Rollout pacing, timeouts, scheduled starts and ends and cron schedules must run
exactly once, however many workers share the store. One process alone on its
store (SQLite, or one worker) always leads (:class:`SoleLeader`); workers that
share a PostgreSQL store elect one by a lock the database holds for the
leader's connection, so a leader that dies hands over at once
(:class:`~iot_jobs_bridge.jobs_service.store.postgres_leader.PostgresLeadership`).

Every timer's state is in the store, so a new leader carries on where the last
one stopped: nothing is lost and nothing is run twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Leadership", "SoleLeader", "leadership_for"]


class Leadership(Protocol):
    @property
    def leading(self) -> bool:
        """Whether this process runs the timers now."""
        ...

    def start(self, changed: Callable[[], None], due: Callable[[], None]) -> None:
        """Begin; ``changed()`` when this process gains or loses the lead, ``due()`` when
        another worker may have made something due sooner (both from any thread)."""
        ...

    def nudge(self) -> None:
        """Tell the leader that something may be due sooner (a no-op when leading)."""
        ...

    def close(self) -> None:
        """Give up the lead and stop."""
        ...


class SoleLeader:
    """The only process on its store: it always leads."""

    leading = True

    def start(self, changed: Callable[[], None], due: Callable[[], None]) -> None:
        pass

    def nudge(self) -> None:
        pass

    def close(self) -> None:
        pass


def leadership_for(location: str) -> Leadership:
    """How the process using the store at ``location`` learns whether it leads."""
    from .store import is_postgres_url

    if is_postgres_url(location):
        from .store.postgres_leader import PostgresLeadership

        return PostgresLeadership(location)
    return SoleLeader()
