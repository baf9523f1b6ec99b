"""The SQLite store: the only code in the service that writes SQL.

Every multi-row change runs in one :meth:`Store.atomic` transaction, and the
``expectedVersion`` checks happen inside it.
"""

from __future__ import annotations

from .certificates import Certificate, CertificatesStore
from .jobs import JobsStore
from .policies import PoliciesStore, Policy
from .registry import RegistryStore
from .schedules import Fire, Schedule, SchedulesStore
from .templates import TemplatesStore

__all__ = ["Certificate", "Fire", "Policy", "Schedule", "Store"]


class Store(JobsStore, RegistryStore, TemplatesStore, SchedulesStore, CertificatesStore, PoliciesStore):
    """Things, groups, jobs, executions, templates, schedules and certificates in one SQLite database."""
