"""The store: the only code in the service that writes SQL.

A `Store` is one `Database` (the connection and its transactions) and the
parts that know the SQL of each family of rows, all sharing it:
``store.jobs``, ``store.registry`` (things and groups), ``store.templates``,
``store.schedules``, ``store.certificates``, ``store.policies`` and ``store.overview``
(the console's reads). Every
multi-row change runs in one :meth:`Store.atomic` transaction, whichever parts
it uses, and the ``expectedVersion`` checks happen inside it.
"""

from __future__ import annotations

from pathlib import Path

from .base import Backend, Database
from .certificates import Certificate, CertificatesRepository
from .jobs import JobsRepository
from .overview import OverviewRepository
from .policies import PoliciesRepository, Policy
from .registry import RegistryRepository
from .requests import RequestsRepository
from .schedules import Fire, Schedule, SchedulesRepository
from .service_clock import ServiceClockRepository
from .sqlite import SqliteBackend
from .templates import TemplatesRepository

__all__ = ["Certificate", "Fire", "Policy", "Schedule", "Store", "is_postgres_url"]


def is_postgres_url(location: str) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than an SQLite file."""
    return location.startswith(("postgresql://", "postgres://"))


def _backend(location: str) -> Backend:
    if is_postgres_url(location):
        from .postgres import PostgresBackend  # psycopg is loaded only for PostgreSQL stores

        return PostgresBackend(location)
    return SqliteBackend(location)


class Store:
    """Things, groups, jobs, executions, templates, schedules and certificates in one database."""

    def __init__(self, location: str | Path) -> None:
        """``location``: an SQLite file's path, or a ``postgresql://`` URL."""
        self.db = Database(_backend(str(location)))
        self.path = self.db.path
        self.schema_version = self.db.schema_version
        self.atomic = self.db.atomic
        self.close = self.db.close
        self.ping = self.db.ping
        self.jobs = JobsRepository(self.db)
        self.registry = RegistryRepository(self.db)
        self.templates = TemplatesRepository(self.db)
        self.schedules = SchedulesRepository(self.db)
        self.certificates = CertificatesRepository(self.db)
        self.policies = PoliciesRepository(self.db)
        self.requests = RequestsRepository(self.db)
        self.service_clock = ServiceClockRepository(self.db)
        self.overview = OverviewRepository(self.db)
