"""The jobs engine: jobs, executions and the registry changes that affect them.

Each operation validates, changes the store in one transaction, and returns an
:class:`Outcome` whose domain events (:mod:`..domain_events`) the caller
announces only after the method has returned, that is after the commit; the
device plane renders them to MQTT messages.
"""

from __future__ import annotations

from .base import Outcome
from .device import NEXT, DeviceOps
from .jobs import MAX_TARGETS, JobOps, NewJob
from .membership import MembershipOps
from .rollout import RolloutOps

__all__ = ["MAX_TARGETS", "NEXT", "JobsEngine", "NewJob", "Outcome"]


class JobsEngine(DeviceOps, JobOps, MembershipOps, RolloutOps):
    """Every engine operation; see the mixins for each plane."""
