"""The jobs engine: jobs, executions and the registry changes that affect them.

Each operation validates, changes the store in one transaction, and returns an
:class:`Outcome` whose domain events (:mod:`..domain_events`) the caller
announces only after the method has returned, that is after the commit; the
device plane renders them to MQTT messages.

The engine is its parts, composed over one `EngineCore`:

* ``engine.device``: what devices ask (get pending, start-next, describe, update);
* ``engine.jobs``: create, update, cancel and delete jobs and executions;
* ``engine.membership``: things and groups, and the executions membership brings;
* ``engine.rollout``: timers (``tick``), rollout pacing, scheduled starts and ends;
* ``engine.lifecycle``: what follows an execution's end (retries, aborts, a job's
  completion) and timeouts.

``get_job``, ``get_execution``, ``document`` and ``resolve_targets`` are the
core's reads, on the engine itself.
"""

from __future__ import annotations

from ..arns import Arns
from ..clock import Clock
from ..limits import DeviceLimits
from ..store import Store
from .base import EngineCore, Outcome
from .device import NEXT, DeviceOps
from .jobs import MAX_TARGETS, JobOps, NewJob
from .lifecycle import LifecycleOps
from .membership import MembershipOps
from .rollout import RolloutOps

__all__ = ["MAX_TARGETS", "NEXT", "JobsEngine", "NewJob", "Outcome"]


class JobsEngine:
    """Every engine operation, by part; see the module."""

    def __init__(self, store: Store, clock: Clock, arns: Arns, limits: DeviceLimits | None = None) -> None:
        self.core = core = EngineCore(store, clock, arns, limits)
        self.store, self.clock, self.arns, self.limits = store, clock, arns, core.limits
        self.lifecycle = LifecycleOps(core)
        self.rollout = RolloutOps(core, self.lifecycle)
        self.jobs = JobOps(core, self.lifecycle, self.rollout)
        self.membership = MembershipOps(core, self.lifecycle)
        self.device = DeviceOps(core, self.lifecycle)
        self.get_job = core.get_job
        self.get_execution = core.get_execution
        self.document = core.document
        self.resolve_targets = core.resolve_targets
