"""The store a test runs on: SQLite by default, PostgreSQL with IOTJOBS_TEST_STORE=postgresql.

In PostgreSQL mode one throwaway server (fsync off) serves the whole run, and
each store is a new database copied from one that is already migrated.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from pathlib import Path

from iot_jobs_bridge.jobs_service.local_postgres import LocalPostgres
from iot_jobs_bridge.jobs_service.store import Store

BACKEND = os.environ.get("IOTJOBS_TEST_STORE", "sqlite")
if BACKEND not in ("sqlite", "postgresql"):
    raise RuntimeError(f"IOTJOBS_TEST_STORE must be sqlite or postgresql, not {BACKEND!r}")

_TEMPLATE = "migrated"


class _Server:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="iotjobs-pg-"))
        self.postgres = LocalPostgres(self.folder / "data", durable=False)
        self.postgres.start()
        atexit.register(self.stop)
        Store(self.postgres.create_database(_TEMPLATE)).close()
        self.numbers = itertools.count(1)

    def new_database(self) -> str:
        return self.postgres.create_database(f"store_{next(self.numbers)}", template=_TEMPLATE)

    def stop(self) -> None:
        self.postgres.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


_server: _Server | None = None


def postgres_database() -> str:
    """The URL of a new, migrated database on the run's PostgreSQL server."""
    global _server
    if _server is None:
        _server = _Server()
    return _server.new_database()


def store_location(tmp_path: Path) -> str | Path:
    """Where a test's store lives: a file in ``tmp_path``, or a new PostgreSQL database."""
    if BACKEND == "sqlite":
        return tmp_path / "jobs.sqlite3"
    return postgres_database()


_databases: dict[Path, str] = {}


def serve_store_args(data_dir: Path) -> list[str]:
    """``--store`` for an ``iotjobs serve`` on ``data_dir`` in PostgreSQL mode (the same on a restart)."""
    if BACKEND == "sqlite":
        return []
    key = data_dir.resolve()
    if key not in _databases:
        _databases[key] = postgres_database()
    return ["--store", _databases[key]]
