"""The PostgreSQL backend: the same store on a server that several workers can share.

The store's SQL is SQLite's and PostgreSQL's common subset with ``?`` and
``:name`` placeholders; this backend rewrites each statement once into
psycopg's ``%s`` and ``%(name)s`` and keeps the result.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import psycopg.conninfo
from psycopg.rows import dict_row

from .base import Cursor
from .migrations import MIGRATIONS
from .postgres_schema import BASELINE, BASELINE_VERSION, LATER

__all__ = ["LEADER_LOCK", "PostgresBackend", "shown_url", "translate"]

# A quoted literal (kept as it is), a :name placeholder (not a :: cast), a ? placeholder or a %.
_TOKEN = re.compile(r"'[^']*'|(?<![:\w]):([A-Za-z_]\w*)|\?|%")
# Advisory lock keys (one 64-bit space per database): the first migration of a database
# between processes that start together, every transaction's write turn, and the lead
# among workers (postgres_leader.py).
_MIGRATION_LOCK = 0x10_7_0B5
_WRITE_LOCK = 0x10_7_0B5_0001
LEADER_LOCK = 0x10_7_0B5_0002


def shown_url(url: str) -> str:
    """Where ``url`` points, without its password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "the given URL"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def translate(sql: str) -> str:
    """``sql`` with psycopg's placeholders in place of the store's, and every ``%`` doubled."""

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith("'"):
            return token.replace("%", "%%")  # psycopg reads placeholders inside literals too
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return f"%({match.group(1)})s"

    return _TOKEN.sub(swap, sql)


class PostgresBackend:
    """A `Backend` on a PostgreSQL database, given by its URL."""

    errors: tuple[type[Exception], ...] = (psycopg.Error,)

    def __init__(self, url: str) -> None:
        self.location = url
        try:
            # Autocommit: transactions are opened explicitly by `begin`, as on SQLite.
            self.connection = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        except psycopg.Error as exc:
            raise ConnectionError(f"cannot open the PostgreSQL store at {shown_url(url)}: {exc}") from exc
        self._translated: dict[str, str] = {}
        try:
            self.schema_version = _migrate(self.connection)
        except BaseException:
            self.connection.close()
            raise

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any], /) -> Cursor:
        return self.connection.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]], /) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(self._sql(sql), rows)

    def begin(self) -> None:
        self.connection.execute("BEGIN")
        # One writing transaction at a time on this database, whichever process runs it: what
        # SQLite's BEGIN IMMEDIATE gives, so every read-then-write sees the last commit.
        self.connection.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))

    def json_values(self, column: str, alias: str) -> str:
        return f"jsonb_array_elements_text({column}::jsonb) AS {alias}(value)"

    def close(self) -> None:
        self.connection.close()

    def _sql(self, sql: str) -> str:
        translated = self._translated.get(sql)
        if translated is None:
            translated = self._translated[sql] = translate(sql)
        return translated


def _migrate(connection: psycopg.Connection[Any]) -> int:
    """Bring the database to the store's schema version; return it."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        rows = connection.execute("SELECT version FROM schema_migrations").fetchall()
        applied = {row["version"] for row in rows}
        if not applied:
            connection.execute(BASELINE)
            applied = set(range(1, BASELINE_VERSION + 1))
            _record(connection, applied)
        for version in range(BASELINE_VERSION + 1, len(MIGRATIONS) + 1):
            if version not in applied:
                connection.execute(LATER[version])
                _record(connection, {version})
    return len(MIGRATIONS)


def _record(connection: psycopg.Connection[Any], versions: set[int]) -> None:
    for version in sorted(versions):
        connection.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (%s, now()::text)", (version,)
        )
