"""The SQLite store: the only code in the service that writes SQL.

Every multi-row change runs in one :meth:`Store.atomic` transaction, and the
``expectedVersion`` checks happen inside it.
"""

from __future__ import annotations

from .jobs import JobsStore
from .registry import RegistryStore
from .templates import TemplatesStore

__all__ = ["Store"]


class Store(JobsStore, RegistryStore, TemplatesStore):
    """Things, groups, jobs, executions and job templates in one SQLite database (WAL)."""
