"""The connection and its transactions (`Database` over a `Backend`), and the base of the store's parts."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from ..errors import InternalError

__all__ = ["Backend", "Cursor", "Database", "Repository", "UnitOfWork", "dumps", "loads", "row_limit"]

log = logging.getLogger(__name__)

T = TypeVar("T")


#: LIMIT's value when there is none (SQLite reads -1 so, PostgreSQL refuses it).
NO_LIMIT = 2**62


def row_limit(limit: int | None) -> int:
    """LIMIT's value for ``limit``: None or a negative one means every row."""
    return NO_LIMIT if limit is None or limit < 0 else limit


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def loads(text: str | None) -> Any:
    if not text:
        return None
    if text == "{}":  # most status details and settings: no parser needed
        return {}
    return json.loads(text)


class UnitOfWork:
    """One transaction: the things whose executions it touches, told to its watchers first.

    A watcher is called with a thing's name just before one of that thing's
    executions is inserted, changed or deleted, while the old rows can still be
    read (the engine diffs pending lists this way). Watchers belong to the
    block that added them and leave with it.
    """

    def __init__(self) -> None:
        self._watchers: list[Callable[[str], None]] = []
        self._after_commit: list[Callable[[], None]] = []
        # Rows read in this transaction that nothing else can change before it ends
        # (it holds the write lock): a batch of requests reads each job once.
        self.cache: dict[tuple[str, str], Any] = {}

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the transaction has committed; dropped if its block is rolled back."""
        self._after_commit.append(action)

    def _mark(self) -> int:
        return len(self._after_commit)

    def _rolled_back_to(self, mark: int) -> None:
        del self._after_commit[mark:]
        self.cache.clear()  # it may hold rows the rolled-back block wrote

    def _committed(self) -> None:
        for action in self._after_commit:
            action()

    def touch(self, thing_name: str) -> None:
        for watcher in self._watchers:
            watcher(thing_name)

    @contextmanager
    def watching(self, watcher: Callable[[str], None]) -> Iterator[None]:
        self._watchers.append(watcher)
        try:
            yield
        finally:
            self._watchers.remove(watcher)


class Cursor(Protocol):
    """What a statement leaves: its rows (read by column name) and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Backend(Protocol):
    """One database engine under `Database`: its connection, and where its SQL differs.

    The store's SQL is written once, in what SQLite and PostgreSQL share, with
    ``?`` and ``:name`` placeholders; a backend runs it as its engine needs.
    """

    #: Where the data lives (a file's path or a database URL), as given to reopen it.
    location: str
    #: The schema version the backend's migrations brought the database to.
    schema_version: int
    #: What its driver raises for a failed statement.
    errors: tuple[type[Exception], ...]

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any], /) -> Cursor: ...

    def executemany(self, sql: str, rows: list[tuple[Any, ...]], /) -> Any: ...

    def begin(self) -> None:
        """Open a transaction that holds the write lock until it ends."""

    def json_values(self, column: str, alias: str) -> str:
        """A FROM item over the JSON array of strings in ``column``, its items as ``alias.value``."""

    def close(self) -> None: ...


class Database:
    """Owns the connection. Every multi-row change runs inside :meth:`atomic`.

    The store's parts (`Repository`) share one `Database`, so a transaction
    spans whatever parts its block uses. The engine itself is a `Backend`.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.path = backend.location
        self.schema_version = backend.schema_version
        self.json_values = backend.json_values
        self._errors = backend.errors
        self._lock = threading.RLock()
        self._depth = 0
        self._work: UnitOfWork | None = None
        self._closed = False
        #: Told how many seconds each COMMIT took (the metrics' commit latency); it must be quick.
        self.committed: Callable[[float], None] | None = None

    def close(self) -> None:
        """Close the connection; calling it again does nothing."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.backend.close()

    def ping(self) -> str | None:
        """Read the database's catalogue: ``None`` when that works, else what went wrong."""
        with self._lock:
            if self._closed:
                return "the store is closed"
            try:
                self.backend.execute("SELECT 1", ()).fetchone()
            except self._errors as exc:
                return f"a query on {self.path} failed: {exc}"
        return None

    @contextmanager
    def atomic(self) -> Iterator[UnitOfWork]:
        """One transaction, committed when the outermost block ends.

        A nested block is a savepoint inside it: when the nested block raises,
        its changes alone are undone, and the enclosing block decides whether
        the rest commits.
        """
        with self._lock:
            work = self._work
            run = self.backend.execute
            if work is not None:
                savepoint, mark = f"nested_{self._depth}", work._mark()
                run(f"SAVEPOINT {savepoint}", ())
                self._depth += 1
                try:
                    yield work
                except BaseException:
                    run(f"ROLLBACK TO {savepoint}", ())
                    work._rolled_back_to(mark)
                    raise
                finally:
                    self._depth -= 1
                    run(f"RELEASE {savepoint}", ())
                return
            self.backend.begin()
            work = self._work = UnitOfWork()
            self._depth = 1
            try:
                yield work
            except BaseException:
                run("ROLLBACK", ())
                raise
            finally:
                self._work, self._depth = None, 0
            began = time.perf_counter()
            try:
                run("COMMIT", ())
            except self._errors as exc:
                raise InternalError(f"Could not commit to the store: {exc}") from exc
            committed = self.committed
            if committed is not None:
                try:
                    committed(time.perf_counter() - began)
                except Exception:  # the change is committed: what follows it must still run
                    log.exception("The store's commit hook failed")
        work._committed()

    def cached(self, kind: str, key: str, read: Callable[[], T]) -> T:
        """``read()``, remembered until the current transaction ends (or a write forgets it)."""
        with self._lock:  # another thread's transaction is not ours to read from
            work = self._work
            if work is None:
                return read()
            slot = (kind, key)
            if slot not in work.cache:
                work.cache[slot] = read()
            value: T = work.cache[slot]
            return value

    def cache_entry(self, kind: str, key: str) -> Any:
        """What ``cached`` holds for (``kind``, ``key``) in the current transaction, or None."""
        with self._lock:
            work = self._work
            return work.cache.get((kind, key)) if work is not None else None

    def forget(self, kind: str, key: str) -> None:
        """A write to what ``_cached`` may hold: read it again next time."""
        with self._lock:
            if self._work is not None:
                self._work.cache.pop((kind, key), None)

    def forget_kind(self, kind: str) -> None:
        """A write to many rows of ``kind``: read every one of them again."""
        with self._lock:
            if self._work is not None:
                cache = self._work.cache
                for slot in [slot for slot in cache if slot[0] == kind]:
                    del cache[slot]

    def touch(self, thing_name: str) -> None:
        """Tell the current transaction that ``thing_name``'s executions are about to change."""
        if self._work is not None:
            self._work.touch(thing_name)

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> Cursor:
        with self._lock:
            try:
                return self.backend.execute(sql, params)
            except self._errors as exc:
                # Details go to the log, not to the client.
                log.exception("Store query failed: %s", sql)
                raise InternalError("The store could not complete the request") from exc

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            try:
                self.backend.executemany(sql, rows)
            except self._errors as exc:
                log.exception("Store query failed: %s", sql)
                raise InternalError("The store could not complete the request") from exc

    def rows(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[Any]:
        # Fetch under the lock too: HTTP handlers run on worker threads.
        with self._lock:
            return self.execute(sql, params).fetchall()

    def row(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> Any:
        with self._lock:
            return self.execute(sql, params).fetchone()


class Repository:
    """One part of the store: the SQL of one family of rows, over the shared `Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # Bound once: these run on every statement.
        self._execute = db.execute
        self._executemany = db.executemany
        self._rows = db.rows
        self._row = db.row
        self._cached = db.cached
        self._forget = db.forget
        self._forget_kind = db.forget_kind
        self._touch = db.touch
