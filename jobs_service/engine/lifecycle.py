"""What follows an execution's end, and the timers that end executions.

After any terminal change (by a device, a timer or the service) the same
steps run, inside the same transaction: a retry may be queued, the job's
abort criteria are evaluated, and a snapshot job may complete.
"""

from __future__ import annotations

import logging
import math

from ..job_policies import ABORT_REASON, AbortStanding, AbortTrip, abort_standings, abort_trip, retry_allowed
from ..models import ExecutionStatus, Job, JobExecution, JobStatus, TargetSelection
from ..states import PENDING_STATUSES, job_moved
from .base import Outcome, Part

__all__ = ["LifecycleOps"]

_FAILURES = (ExecutionStatus.FAILED, ExecutionStatus.REJECTED, ExecutionStatus.TIMED_OUT)
_RETRIED = (ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT)  # what a retry config can retry


class LifecycleOps(Part):
    def after_execution_ended(self, execution: JobExecution, now: float) -> None:
        """Retry, abort and completion after ``execution`` reached a terminal status."""
        job = self.store.jobs.get_job(execution.job_id)
        if job is None:
            return
        if job.status is JobStatus.IN_PROGRESS:
            self._maybe_retry(job, execution, now)
            if execution.status in _FAILURES and job.settings.get("abortConfig"):
                trip = abort_trip(
                    job.settings.get("abortConfig"),
                    executed=self._executed_things(job),
                    outcomes=self.store.jobs.latest_outcomes(job.job_id),
                )
                if trip is not None:
                    self._abort(job, trip, now)
        self.complete_if_done(execution.job_id, now)

    def abort_standings(self, job: Job) -> list[AbortStanding]:
        """How close ``job`` is to each of its abort criteria, by the figures an abort uses."""
        config = job.settings.get("abortConfig")
        if not config:
            return []
        with self.store.atomic():  # one view of both counts
            executed = self._executed_things(job)
            outcomes = self.store.jobs.latest_outcomes(job.job_id)
        return abort_standings(config, executed=executed, outcomes=outcomes)

    def _executed_things(self, job: Job) -> int:
        """Things notified of an execution: the released count, or every executed thing."""
        return max(job.released, self.store.jobs.executed_things(job.job_id))

    def _maybe_retry(self, job: Job, ended: JobExecution, now: float) -> None:
        config = job.settings.get("jobExecutionsRetryConfig")
        if not config or ended.status not in _RETRIED:
            return  # nothing to count
        attempts = self.store.jobs.attempts_since_join(job.job_id, ended.thing_name)
        earlier: dict[ExecutionStatus, int] = {}
        for attempt in attempts:
            if attempt.seq != ended.seq:
                earlier[attempt.status] = earlier.get(attempt.status, 0) + 1
        if retry_allowed(config, ended.status, earlier):
            self.core.queue(job.job_id, ended.thing_name, now, retry_attempt=ended.retry_attempt + 1)

    def _abort(self, job: Job, trip: AbortTrip, now: float) -> None:
        """Cancel a job whose abort criterion tripped: QUEUED and unreleased executions only."""
        self.cancel_open_work(job, now, force=False)
        canceled = job_moved(
            self.core.get_job(job.job_id),
            JobStatus.CANCELED,
            now,
            reason_code=ABORT_REASON,
            comment=trip.comment,
        )
        self.store.jobs.save_job(canceled)
        self.core.emit_job(canceled, "cancellation_in_progress", "CANCELLATION_IN_PROGRESS")
        self.core.emit_job(canceled, "canceled", JobStatus.CANCELED.value)
        self.core.note(
            logging.WARNING,
            "job %s aborted: %s",
            job.job_id,
            trip.comment,
            job_id=job.job_id,
            reason=ABORT_REASON,
            comment=trip.comment,
        )

    def cancel_open_work(self, job: Job, now: float, *, force: bool) -> None:
        """QUEUED executions (IN_PROGRESS ones too with ``force``) and unreleased things become CANCELED."""
        for execution in self.store.jobs.open_executions(job.job_id):
            running = execution.status is ExecutionStatus.IN_PROGRESS
            if force or not running:
                self.core.end_by_service(execution, ExecutionStatus.CANCELED, now, force=running)
        for thing_name in self.store.jobs.rollout_waiting(job.job_id):
            # Counted as canceled things, as AWS counts every target of a canceled job.
            self.core.queue(job.job_id, thing_name, now, status=ExecutionStatus.CANCELED)
        self.store.jobs.drop_from_rollout(job.job_id)

    def complete_if_done(self, job_id: str, now: float) -> None:
        """A snapshot job is COMPLETED once nothing is pending and nothing waits for release."""
        job = self.store.jobs.get_job(job_id)
        if job is None or job.status is not JobStatus.IN_PROGRESS:
            return
        if job.target_selection is not TargetSelection.SNAPSHOT:
            return
        if self.store.jobs.has_open_executions(job_id) or self.store.jobs.rollout_waits(job_id):
            return
        completed = job_moved(job, JobStatus.COMPLETED, now, completed_at=now)
        self.store.jobs.save_job(completed)
        self.core.emit_job(completed, "completed", JobStatus.COMPLETED.value)
        counts = {
            status.value: n for status, n in sorted(self.store.jobs.execution_counts(job_id).items()) if n
        }
        self.core.note(
            logging.INFO,
            "job %s completed: %s",
            job_id,
            ", ".join(f"{n} {status}" for status, n in counts.items()) or "it had no things",
            job_id=job_id,
            executions=counts,
        )

    def started_timers(self, job_id: str, now: float) -> float | None:
        """The in-progress deadline an execution gets when it starts, from the job's timeoutConfig."""
        job = self.store.jobs.get_job(job_id)
        minutes = ((job.settings if job else {}).get("timeoutConfig") or {}).get("inProgressTimeoutInMinutes")
        return now + float(minutes) * 60.0 if minutes else None

    # -- timers -----------------------------------------------------------
    def time_out_due(self, now: float) -> Outcome:
        """TIMED_OUT for every IN_PROGRESS execution whose timer has run out by ``now``."""
        due = self.store.jobs.executions_timed_out(now)
        if not due:
            return Outcome([])

        def change() -> list[JobExecution]:
            ended = []
            for execution in due:
                current = self.store.jobs.get_execution(
                    execution.job_id, execution.thing_name, execution.execution_number
                )
                if current is None or current.status not in PENDING_STATUSES:
                    continue
                step = current.step_timeout_at is not None and current.step_timeout_at <= now
                timer = "step timer (stepTimeoutInMinutes)" if step else "timer (inProgressTimeoutInMinutes)"
                self.core.note(
                    logging.WARNING,
                    "execution of job %s on %s timed out: its %s ran out",
                    current.job_id,
                    current.thing_name,
                    timer,
                    job_id=current.job_id,
                    thing=current.thing_name,
                    reason="step timeout" if step else "in-progress timeout",
                )
                timed_out = self.core.end_by_service(current, ExecutionStatus.TIMED_OUT, now)
                self.after_execution_ended(timed_out, now)
                ended.append(timed_out)
            return ended

        return self.core.watching([execution.thing_name for execution in due], change)

    def seconds_before_timed_out(self, execution: JobExecution) -> int | None:
        """``approximateSecondsBeforeTimedOut``: whole seconds left on the earlier running timer."""
        deadline = execution.deadline()
        if execution.status is not ExecutionStatus.IN_PROGRESS or deadline is None:
            return None
        return max(0, math.ceil(deadline - self.clock.now()))
