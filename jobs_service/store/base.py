"""The SQLite connection, transactions and row decoding shared by the store's parts."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import InternalError
from .migrations import migrate

__all__ = ["StoreBase", "dumps", "loads"]

log = logging.getLogger(__name__)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None


class StoreBase:
    """Owns the connection. Every multi-row change runs inside :meth:`atomic`."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        # Autocommit mode: transactions are opened explicitly by atomic().
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        # Called with a thing's name just before one of its executions is
        # inserted, changed or deleted (the engine uses it to see whose
        # pending list a transaction touched).
        self.before_execution_change: Callable[[str], None] | None = None
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a change a client was told about survives power loss, not just a crash.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self.schema_version = migrate(self._conn)

    def close(self) -> None:
        """Close the connection; calling it again does nothing."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def ping(self) -> str | None:
        """Read the database file's schema page: ``None`` when that works, else what went wrong."""
        with self._lock:
            if self._conn is None:
                return "the store is closed"
            try:
                self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error as exc:
                return f"a query on {self.path} failed: {exc}"
        return None

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction; nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise InternalError(f"Could not commit to the store: {exc}") from exc

    def _execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                # Details go to the log, not to the client.
                log.exception("Store query failed: %s", sql)
                raise InternalError("The store could not complete the request") from exc

    def _conn_executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            try:
                self._conn.executemany(sql, rows)
            except sqlite3.Error as exc:
                log.exception("Store query failed: %s", sql)
                raise InternalError("The store could not complete the request") from exc

    def _rows(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        # Fetch under the lock too: HTTP handlers run on worker threads.
        with self._lock:
            return self._execute(sql, params).fetchall()

    def _row(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._execute(sql, params).fetchone()
        return row
