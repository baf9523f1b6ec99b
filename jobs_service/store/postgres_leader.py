"""Electing the worker that runs the timers, among workers sharing a PostgreSQL store.

The leader is whichever worker holds a session advisory lock on its own
connection. PostgreSQL drops the lock the moment that connection ends, so when
the leader's process dies (even by ``kill -9``) the next worker to try, within
:data:`RETRY` seconds, takes over. The others NOTIFY the leader when a change of
theirs may make something due sooner; the leader LISTENs for that, and looks at
the store's deadlines again.

What this does not give: a leader cut off from the database by the network
learns it has lost the lead only when its connection fails, so for that long
two workers may both run the timers (docs/scale-out.md says so).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from .postgres import LEADER_LOCK, shown_url

__all__ = ["CHANNEL", "RETRY", "PostgresLeadership"]

log = logging.getLogger(__name__)

# The NOTIFY channel that tells the leader to look at the deadlines again.
CHANNEL = "iotjobs_due"
# Seconds between tries for the lead (so a failover takes at most this long) and between reconnects.
RETRY = 0.5
# A leader cut off from the database finds out within about 11 s, not the OS's hours.
_KEEPALIVE: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


class PostgresLeadership:
    """This worker's part in the election; see the module's text."""

    def __init__(self, url: str, *, retry: float = RETRY) -> None:
        self._url = url
        self._retry = retry
        self._leading = False
        self._stop = threading.Event()
        self._nudged = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        return self._leading

    def start(self, changed: Callable[[], None], due: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=self._run, args=(changed, due), name="leadership", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        if not self._leading:
            self._nudged.set()

    def close(self) -> None:
        self._stop.set()
        self._nudged.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self, changed: Callable[[], None], due: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, **_KEEPALIVE) as connection:
                    self._take_part(connection, changed, due)
            except psycopg.Error as exc:
                log.warning("lost the store's leadership connection to %s: %s", shown_url(self._url), exc)
            finally:
                if self._leading:
                    self._leading = False
                    log.warning("this worker no longer runs the timers")
                    changed()
            self._stop.wait(self._retry)

    def _take_part(
        self, connection: psycopg.Connection[Any], changed: Callable[[], None], due: Callable[[], None]
    ) -> None:
        next_try = 0.0
        while not self._stop.is_set():
            if self._leading:
                # Also how a dead connection shows: notifies() raises.
                for _ in connection.notifies(timeout=self._retry):
                    due()
                continue
            if time.monotonic() >= next_try:
                row = connection.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
                if row is not None and row[0]:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._leading = True
                    log.info("this worker now runs the timers (rollouts, timeouts, schedules)")
                    changed()
                    continue
                next_try = time.monotonic() + self._retry
            if self._nudged.wait(max(0.0, next_try - time.monotonic())):
                self._nudged.clear()
                if not self._stop.is_set():
                    connection.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
