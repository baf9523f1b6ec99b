"""The SQLite backend: one file, one connection, WAL and synchronous=FULL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .migrations import migrate

__all__ = ["SqliteBackend"]


class SqliteBackend:
    """A `Backend` on an SQLite file (or ``:memory:``)."""

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: str | Path) -> None:
        self.location = str(path)
        # Autocommit mode: transactions are opened explicitly by `begin`.
        self.connection = sqlite3.connect(self.location, isolation_level=None, check_same_thread=False)
        self.connection.row_factory = sqlite3.Row
        if self.location != ":memory:":
            self.connection.execute("PRAGMA journal_mode=WAL")
        # FULL: a change a client was told about survives power loss, not just a crash.
        self.connection.execute("PRAGMA synchronous=FULL")
        self.connection.execute("PRAGMA foreign_keys=ON")
        self.connection.execute("PRAGMA busy_timeout=5000")
        self.schema_version = migrate(self.connection)
        # Bound once: they run on every statement.
        self.execute = self.connection.execute
        self.executemany = self.connection.executemany

    def begin(self) -> None:
        # IMMEDIATE: the write lock from the start, so a read-then-write never deadlocks.
        self.connection.execute("BEGIN IMMEDIATE")

    def json_values(self, column: str, alias: str) -> str:
        return f"json_each({column}) AS {alias}"

    def close(self) -> None:
        self.connection.close()
