"""Starting jobs, pacing their rollout, and applying their scheduled end (spec §7.2, §7.6).

All of it is driven by :meth:`RolloutOps.tick`, which the service's scheduler
calls whenever :meth:`RolloutOps.next_due` says something is due; every step
reads the injected clock and keeps its progress in the store, so a restart
resumes at the same pace.
"""

from __future__ import annotations

import logging
from typing import Any

from ..domain_events import DomainEvent
from ..job_policies import paced_by_succeeded_things, rate_per_minute
from ..job_settings import parse_schedule_time
from ..maintenance_windows import Window, next_open, open_window, parse_windows
from ..models import ExecutionStatus, Job, JobStatus
from ..states import job_moved
from .base import EngineCore, Outcome, Part, counted, utc_text
from .lifecycle import LifecycleOps

__all__ = ["RolloutOps", "schedule_of"]

END_REASON = "SCHEDULED_END_REACHED"
#: Most things one release creates executions for (one transaction); the rest follow at once.
MOST_RELEASED_AT_ONCE = 10_000


def schedule_of(settings: dict[str, Any]) -> tuple[float | None, float | None, list[Window]]:
    """(start, end, maintenance windows) of a job's schedulingConfig."""
    config = settings.get("schedulingConfig") or {}
    start = parse_schedule_time(config["startTime"], "startTime") if "startTime" in config else None
    end = parse_schedule_time(config["endTime"], "endTime") if "endTime" in config else None
    return start, end, parse_windows(config.get("maintenanceWindows", []))


class RolloutOps(Part):
    def __init__(self, core: EngineCore, lifecycle: LifecycleOps) -> None:
        super().__init__(core)
        self.lifecycle = lifecycle

    # -- starting ---------------------------------------------------------
    def start_job(self, job: Job, things: list[str], now: float, *, created: bool = False) -> Job:
        """Move a job to IN_PROGRESS: release everything now, or queue it for a paced rollout."""
        paced = rate_per_minute(job.settings.get("jobExecutionsRolloutConfig"), notified=0, succeeded=0)
        _, _, windows = schedule_of(job.settings)
        pace = "" if paced is None else f", paced at {paced:g} per minute"
        pace += " in its maintenance windows" if windows else ""
        self.core.note(
            logging.INFO,
            "job %s %s %s (%s)%s",
            job.job_id,
            "created for" if created else "started with",
            counted(len(things), "thing"),
            job.target_selection.value,
            f"; rollout started{pace}" if pace else "",
            job_id=job.job_id,
            things=len(things),
            target_selection=job.target_selection.value,
            rate_per_minute=paced,
        )
        started = job_moved(job, JobStatus.IN_PROGRESS, now)
        if paced is None and not windows:
            for thing_name in things:
                self.core.queue(job.job_id, thing_name, now)
            started = started.model_copy(update={"released": len(things)})
        else:
            self.store.jobs.enqueue_rollout(job.job_id, things)
            started = started.model_copy(update={"next_release_at": now})
        self.store.jobs.save_job(started)
        if not things:
            self.lifecycle.complete_if_done(job.job_id, now)
        elif paced is not None or windows:
            # The first release is due now: make it part of starting the job.
            batch, next_at = self._due_batch(started, now)
            if batch:
                self._release(job.job_id, batch, next_at, now)
        return self.core.get_job(job.job_id)

    def ready_to_start(self, job: Job, now: float) -> bool:
        start, _, windows = schedule_of(job.settings)
        if start is not None and start > now:
            return False
        return not windows or open_window(windows, now) is not None

    def note_scheduled(self, job: Job, things: int, now: float) -> None:
        start, _, _ = schedule_of(job.settings)
        when = (
            f"at {utc_text(start)}"
            if start is not None and start > now
            else "when a maintenance window opens"
        )
        self.core.note(
            logging.INFO,
            "job %s created for %s (%s); it starts %s",
            job.job_id,
            counted(things, "thing"),
            job.target_selection.value,
            when,
            job_id=job.job_id,
            things=things,
            target_selection=job.target_selection.value,
        )

    # -- the scheduler's entry points -------------------------------------
    def tick(self, now: float | None = None) -> Outcome:
        """Do everything due by ``now``: starts, ends, timeouts, releases."""
        now = self.clock.now() if now is None else now
        events: list[DomainEvent] = []
        for job in self.store.jobs.jobs_with_pending_schedule():
            events += self._schedule_step(job, now).events
        events += self.lifecycle.time_out_due(now).events
        for job in self.store.jobs.jobs_rolling_out():
            events += self._release_due(job, now).events
        return Outcome(None, events)

    def next_due(self) -> float | None:
        """The earliest time something is due (None when nothing waits)."""
        now = self.clock.now()
        candidates: list[float] = []
        for job in self.store.jobs.jobs_with_pending_schedule():
            start, end, windows = schedule_of(job.settings)
            if job.status is JobStatus.SCHEDULED:
                if start is not None and start > now:
                    candidates.append(start)
                elif windows:
                    opens = next_open(windows, now) if open_window(windows, now) is None else now
                    if opens is not None:
                        candidates.append(opens)
                else:
                    candidates.append(now)
            if end is not None and not job.ended:
                candidates.append(end)
        deadline = self.store.jobs.next_execution_deadline()
        if deadline is not None:
            candidates.append(deadline)
        for job in self.store.jobs.jobs_rolling_out():
            _, _, windows = schedule_of(job.settings)
            if windows and open_window(windows, now) is None:
                opens = next_open(windows, now)
                if opens is not None:
                    candidates.append(opens)
            elif job.next_release_at is not None:
                candidates.append(job.next_release_at)
        return min(candidates) if candidates else None

    # -- steps --------------------------------------------------------------
    def _schedule_step(self, job: Job, now: float) -> Outcome:
        """Start a SCHEDULED job whose time has come; apply an end time that has passed."""
        _, end, _ = schedule_of(job.settings)
        if end is not None and end <= now and not job.ended:
            return self._apply_end(job.job_id, now)
        if job.status is JobStatus.SCHEDULED and self.ready_to_start(job, now):
            things = self.resolve_targets_leniently(job.targets)
            return self.core.watching(things, lambda: self.start_job(job, things, now))
        return Outcome(None)

    def _apply_end(self, job_id: str, now: float) -> Outcome:
        def things() -> list[str]:
            return [execution.thing_name for execution in self.store.jobs.open_executions(job_id)]

        def change() -> Job | None:
            job = self.store.jobs.get_job(job_id)
            if job is None or job.ended or job.status not in (JobStatus.SCHEDULED, JobStatus.IN_PROGRESS):
                return job
            behavior = (job.settings.get("schedulingConfig") or {}).get("endBehavior", "STOP_ROLLOUT")
            ended = job.model_copy(update={"ended": True, "last_updated_at": now})
            if job.status is JobStatus.SCHEDULED or behavior in ("CANCEL", "FORCE_CANCEL"):
                self.store.jobs.save_job(ended)
                self.lifecycle.cancel_open_work(ended, now, force=behavior == "FORCE_CANCEL")
                canceled = job_moved(
                    self.core.get_job(job_id),
                    JobStatus.CANCELED,
                    now,
                    force_canceled=behavior == "FORCE_CANCEL",
                    reason_code=END_REASON,
                    comment=f"The job reached its endTime ({behavior})",
                )
                self.store.jobs.save_job(canceled)
                self.core.emit_job(canceled, "cancellation_in_progress", "CANCELLATION_IN_PROGRESS")
                self.core.emit_job(canceled, "canceled", JobStatus.CANCELED.value)
                self.core.note(
                    logging.INFO,
                    "job %s canceled: it reached its endTime (%s)",
                    job_id,
                    behavior,
                    job_id=job_id,
                    reason=END_REASON,
                )
                return canceled
            # STOP_ROLLOUT: nothing more is released; what was released carries on.
            self.core.note(
                logging.INFO,
                "job %s reached its endTime: its rollout stopped (STOP_ROLLOUT)",
                job_id,
                job_id=job_id,
                reason=END_REASON,
            )
            self.store.jobs.drop_from_rollout(job_id)
            self.store.jobs.save_job(ended.model_copy(update={"next_release_at": None}))
            self.lifecycle.complete_if_done(job_id, now)
            return self.core.get_job(job_id)

        return self.core.watching(things, change)

    def _release_due(self, job: Job, now: float) -> Outcome:
        """Release the executions whose turn has come at the job's current rate."""
        batch, next_at = self._due_batch(job, now)
        if not batch:
            return Outcome(None)
        return self.core.watching(batch, lambda: self._release(job.job_id, batch, next_at, now))

    def _due_batch(self, job: Job, now: float) -> tuple[list[str], float | None]:
        """The things whose release is due by ``now``, and when the one after them is due.

        Only the things due are read, and the succeeded count only when the pace depends on
        it: a release costs the same in a job of a hundred things as in one of a million.
        """
        _, _, windows = schedule_of(job.settings)
        if windows and open_window(windows, now) is None:
            return [], job.next_release_at
        config = job.settings.get("jobExecutionsRolloutConfig")
        succeeded = 0
        if paced_by_succeeded_things(config):
            succeeded = self.store.jobs.execution_counts(job.job_id).get(ExecutionStatus.SUCCEEDED, 0)
        next_at = job.next_release_at if job.next_release_at is not None else now
        rate = rate_per_minute(config, notified=job.released, succeeded=succeeded)
        if rate is None:  # not paced: every waiting thing at once
            waiting = self.store.jobs.rollout_waiting(job.job_id)
            return (waiting, None) if next_at <= now or not waiting else ([], next_at)
        caught_up = next_at < now - 60.0
        if caught_up:
            # More than a minute behind (after downtime, or a window reopening):
            # release one minute's worth now, and the next one a minute later,
            # so no minute ever sees more than the rate allows.
            next_at = now - 60.0 + 60.0 / rate
        due = 0
        while next_at <= now and due < MOST_RELEASED_AT_ONCE:
            due += 1
            # Paced once, paced throughout; the rate may grow with each release.
            rate = rate_per_minute(config, notified=job.released + due, succeeded=succeeded) or rate
            next_at += 60.0 / rate
        # One more than are due: whether any thing is left after them.
        waiting = self.store.jobs.rollout_waiting(job.job_id, due + 1)
        batch = waiting[:due]
        if caught_up and batch:
            next_at = now + 60.0
        return batch, (None if len(batch) == len(waiting) else next_at)

    def _release(self, job_id: str, batch: list[str], next_at: float | None, now: float) -> None:
        """Create the executions of ``batch`` (inside the caller's transaction)."""
        for thing_name in batch:
            latest = self.store.jobs.get_execution(job_id, thing_name)
            if latest is None or latest.status not in (ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS):
                self.core.queue(job_id, thing_name, now)
        self.store.jobs.drop_from_rollout(job_id, batch)
        current = self.core.get_job(job_id)
        released = current.released + len(batch)
        self.store.jobs.save_job(
            current.model_copy(update={"released": released, "next_release_at": next_at})
        )
        self.core.note(
            logging.DEBUG, "job %s released %s", job_id, counted(len(batch), "thing"), job_id=job_id
        )
        if next_at is None:
            self.core.note(
                logging.INFO, "job %s: all its %d things released", job_id, released, job_id=job_id
            )
            self.lifecycle.complete_if_done(job_id, now)

    def resolve_targets_leniently(self, targets: list[str]) -> list[str]:
        """Targets at start time: a thing or group deleted since creation is skipped."""
        things: dict[str, None] = {}
        for arn in targets:
            kind, name = self.arns.parse_target(arn)
            if kind == "thing":
                if self.store.registry.thing_exists(name):
                    things[name] = None
            elif self.store.registry.get_group(name) is not None:
                things.update(
                    dict.fromkeys(
                        self.store.registry.group_things(self.store.registry.descendant_groups(name))
                    )
                )
        return list(things)
