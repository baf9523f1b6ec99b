"""Recurring schedules: each fire of a cron expression creates one job, exactly once.

A fire is recorded and its job created in one transaction, under a job id made
from the schedule name and the fire time, so a crash at any point can neither
lose a fire nor create it twice: after a restart the record is there, or
neither is. Misfires after downtime and overlapping runs follow the schedule's
policies (D45); what counts as a misfire is :func:`~jobs_service.cron.plan_fires`'s.

A fire whose job cannot be created (its target group or template deleted since)
is recorded as ``failed`` with the reason, and the schedule moves on: one
schedule's trouble never stops another's fires or the engine's timers.

Each fire recorded is told to ``fired`` (the metrics) by its outcome
(``created``, ``skipped-overlap``, ``skipped-misfire``, ``failed``) once it is
committed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

from .clock import Clock
from .cron import Cron, CronError, Misfire, fire_label, plan_fires
from .documents import require_json_object
from .domain_events import DomainEvent
from .engine import MAX_TARGETS, JobsEngine, NewJob
from .errors import InvalidRequest, JobsError, LimitExceeded, ResourceAlreadyExists, ResourceNotFound
from .job_settings import check_job_settings
from .models import JobStatus
from .store import Fire, Schedule, Store
from .store.base import UnitOfWork
from .templates import Templates

__all__ = ["RETRY_AFTER", "NewSchedule", "Schedules"]

# The operator's log of schedules (see `jobs_service.logs`).
log = logging.getLogger("iotjobs.schedules")

# A schedule that could not be handled at all (not one failed fire: a bug, or the
# store failing) is looked at again after this many service seconds, not at once.
RETRY_AFTER = 60.0
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,40}")
_SETTINGS = ("jobExecutionsRolloutConfig", "abortConfig", "timeoutConfig", "jobExecutionsRetryConfig")
# Fires skipped after a long downtime are recorded one by one, the latest this many.
_SKIPPED_RECORDS = 100
_SHOWN = 60
# The NewSchedule fields a fire's document comes from.
_SOURCE_FIELDS = ("document", "template_arn", "parameters")


@dataclass(frozen=True)
class NewSchedule:
    """What an operator gives to create a schedule."""

    name: str
    cron: str
    targets: list[str]
    timezone: str = "UTC"
    document: str | None = None
    template_arn: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    misfire: str = "skip"
    overlap: str = "skip"
    enabled: bool = True


class Schedules:
    """Create, change and list schedules, and fire the ones that are due."""

    def __init__(
        self,
        store: Store,
        engine: JobsEngine,
        templates: Templates,
        clock: Clock,
        *,
        up_since: float | None = None,
        fired: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.fired = fired
        self.engine = engine
        self.templates = templates
        self.clock = clock
        # When this run of the service began: fires due before then fell in downtime.
        self.up_since = clock.now() if up_since is None else up_since

    # -- operations ----------------------------------------------------------

    def create(self, new: NewSchedule) -> Schedule:
        cron = self._validate(new)
        now = self.clock.now()
        schedule = self._from_new(new, cron, created_at=now, now=now)
        with self.store.atomic():
            if self.store.schedules.get_schedule(new.name) is not None:
                raise ResourceAlreadyExists(f"Schedule {new.name} already exists")
            self.store.schedules.put_schedule(schedule)
        return schedule

    def describe(self, name: str) -> Schedule:
        schedule = self.store.schedules.get_schedule(name)
        if schedule is None:
            raise ResourceNotFound(f"Schedule {name} does not exist")
        return schedule

    def list_schedules(self, *, after: str | None = None, limit: int = 100) -> list[Schedule]:
        return self.store.schedules.list_schedules(after=after, limit=limit)

    def update(self, name: str, changes: dict[str, Any]) -> Schedule:
        """Change any of a schedule's settings; a new cron or time zone counts from now."""
        now = self.clock.now()
        with self.store.atomic():
            current = self.describe(name)
            merged = {**self._as_new(current).__dict__, **changes, "name": name}
            new = NewSchedule(**merged)
            # Only what changes is checked again: a schedule whose target group was
            # deleted since can still be disabled or pointed elsewhere.
            cron = self._validate(new, changed=changes.keys())
            timing_changed = (cron.expression, cron.timezone) != (current.cron, current.timezone)
            enabling = new.enabled and not current.enabled
            changed = replace(
                self._from_new(new, cron, created_at=current.created_at, now=now),
                handled_until=now if timing_changed or enabling else current.handled_until,
                next_fire_at=cron.next_after(now if timing_changed or enabling else current.handled_until),
            )
            self.store.schedules.put_schedule(changed)
        return changed

    def set_enabled(self, name: str, enabled: bool) -> Schedule:
        """Enable or disable; enabling starts from now (fires missed while disabled are not run)."""
        now = self.clock.now()
        with self.store.atomic():
            schedule = self.describe(name)
            cron = Cron.parse(schedule.cron, schedule.timezone)
            changed = replace(
                schedule,
                enabled=enabled,
                handled_until=now if enabled and not schedule.enabled else schedule.handled_until,
                next_fire_at=cron.next_after(now) if enabled else schedule.next_fire_at,
            )
            self.store.schedules.put_schedule(changed)
        return changed

    def delete(self, name: str) -> None:
        with self.store.atomic():
            if not self.store.schedules.delete_schedule(name):
                raise ResourceNotFound(f"Schedule {name} does not exist")

    def history(self, name: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The latest fires, newest first, each with its job's status now (or why it failed)."""
        self.describe(name)
        entries = []
        for fire in self.store.schedules.list_fires(name, limit=limit):
            job = self.store.jobs.get_job(fire.job_id) if fire.job_id else None
            entries.append(
                {
                    "fireTime": fire.fire_at,
                    "outcome": fire.outcome,
                    "jobId": fire.job_id,
                    "jobStatus": job.status.value if job is not None else None,
                    "reason": fire.reason,
                }
            )
        return entries

    # -- firing --------------------------------------------------------------

    def fire_due(self, now: float | None = None) -> list[DomainEvent]:
        """Run every fire that is due; returns the domain events to announce after the commits.

        Each schedule is handled on its own: whatever goes wrong with one is
        logged and that schedule looked at again after :data:`RETRY_AFTER`,
        while the others fire. Only a store that cannot record even that raises.
        """
        now = self.clock.now() if now is None else now
        events: list[DomainEvent] = []
        for schedule in self.store.schedules.due_schedules(now):
            try:
                self._fire(schedule, now, events)
            except Exception:
                log.exception(
                    "Schedule %s could not be handled; trying again in %.0f s", schedule.name, RETRY_AFTER
                )
                with self.store.atomic():
                    self.store.schedules.advance_schedule(
                        schedule.name,
                        handled_from=schedule.handled_until,
                        handled_until=schedule.handled_until,
                        next_fire_at=now + RETRY_AFTER,
                    )
        return events

    def next_due(self) -> float | None:
        return self.store.schedules.next_schedule_fire()

    def _fire(self, schedule: Schedule, now: float, events: list[DomainEvent]) -> None:
        """Handle one schedule's due fires, adding the events of committed jobs to ``events``."""
        cron = Cron.parse(schedule.cron, schedule.timezone)
        plan = plan_fires(
            cron,
            schedule.handled_until,
            now,
            up_since=self.up_since,
            misfire=_misfire(schedule.misfire),
            keep=_SKIPPED_RECORDS,
        )
        for moment in plan.run:
            ran = self._run_or_record_failure(schedule, moment, now)
            if ran is None:
                return  # changed or deleted meanwhile: its new settings count
            events += ran
        with self.store.atomic() as work:
            for moment in plan.skipped:
                self._record(work, Fire(schedule.name, moment, "skipped-misfire", None, now))
            if plan.skipped:
                log.info(
                    "schedule %s skipped %d fires it missed (misfire %s)",
                    schedule.name,
                    len(plan.skipped),
                    schedule.misfire,
                    extra={"schedule": schedule.name, "skipped": len(plan.skipped)},
                )
            self.store.schedules.advance_schedule(
                schedule.name,
                handled_from=schedule.handled_until,
                handled_until=now,
                next_fire_at=cron.next_after(now),
            )

    def _run_or_record_failure(self, schedule: Schedule, fire: float, now: float) -> list[DomainEvent] | None:
        """Run one fire in its own transaction; a job that cannot be created is a ``failed`` fire.

        ``None`` when the schedule changed since it was read (nothing is run).
        """
        try:
            with self.store.atomic() as work:
                current = self.store.schedules.get_schedule(schedule.name)
                if current is None or not current.enabled or current.handled_until != schedule.handled_until:
                    return None
                return self._run(work, current, fire, now)
        except JobsError as exc:
            reason = exc.message
        except Exception:
            log.exception("Schedule %s: the fire at %s failed", schedule.name, fire_label(fire))
            reason = "an internal error; the server log has the details"
        with self.store.atomic() as work:
            self._record_failure(work, schedule.name, fire, now, reason)
        return []

    def _record(self, work: UnitOfWork, fire: Fire) -> bool:
        """Record ``fire`` in ``work``'s transaction; False when it was recorded before (a crash)."""
        if not self.store.schedules.record_fire(fire):
            return False
        fired = self.fired
        if fired is not None:
            outcome = fire.outcome
            work.after_commit(lambda: fired(outcome))
        return True

    def _record_failure(self, work: UnitOfWork, name: str, fire: float, now: float, reason: str) -> None:
        latest = self.store.schedules.list_fires(name, limit=1)
        if not self._record(work, Fire(name, fire, "failed", None, now, reason)):
            return
        # One line when a schedule starts failing, not one per fire of a per-second schedule.
        repeated = bool(latest) and (latest[0].outcome, latest[0].reason) == ("failed", reason)
        log.log(
            logging.DEBUG if repeated else logging.WARNING,
            "Schedule %s: the fire at %s created no job: %s",
            name,
            fire_label(fire),
            reason,
        )

    def _run(self, work: UnitOfWork, schedule: Schedule, fire: float, now: float) -> list[DomainEvent]:
        job_id = f"{schedule.name}-{fire_label(fire)}"
        if schedule.overlap == "skip" and self._previous_still_running(schedule.name):
            self._record(work, Fire(schedule.name, fire, "skipped-overlap", None, now))
            log.info(
                "schedule %s skipped its fire at %s: its previous job is still running (overlap skip)",
                schedule.name,
                fire_label(fire),
                extra={"schedule": schedule.name, "reason": "skipped-overlap"},
            )
            return []
        if not self._record(work, Fire(schedule.name, fire, "created", job_id, now)):
            return []  # this fire was handled before a crash
        spec = schedule.spec
        resolved = self.templates.document_for_job(
            spec.get("jobTemplateArn"), spec.get("document"), spec.get("documentParameters") or None
        )
        new = NewJob(
            job_id=job_id,
            targets=list(spec["targets"]),
            document=resolved.document,
            description=f"schedule {schedule.name}, fire {fire_label(fire)}",
            settings={**resolved.settings, **(spec.get("settings") or {})},
            raw_document=resolved.raw_document,
        )
        events = self.engine.jobs.create_job(new).events
        log.info(
            "schedule %s fired: job %s created",
            schedule.name,
            job_id,
            extra={"schedule": schedule.name, "job_id": job_id},
        )
        return events

    def _previous_still_running(self, name: str) -> bool:
        for fire in self.store.schedules.list_fires(name, limit=10):
            if fire.job_id is not None:
                job = self.store.jobs.get_job(fire.job_id)
                return job is not None and job.status in (JobStatus.IN_PROGRESS, JobStatus.SCHEDULED)
        return False

    # -- conversions and validation ------------------------------------------

    @staticmethod
    def _from_new(new: NewSchedule, cron: Cron, *, created_at: float, now: float) -> Schedule:
        return Schedule(
            name=new.name,
            cron=cron.expression,
            timezone=cron.timezone,
            spec={
                "targets": list(new.targets),
                "document": new.document,
                "jobTemplateArn": new.template_arn,
                "documentParameters": dict(new.parameters),
                "settings": dict(new.settings),
            },
            misfire=new.misfire,
            overlap=new.overlap,
            enabled=new.enabled,
            created_at=created_at,
            handled_until=now,
            next_fire_at=cron.next_after(now),
        )

    @staticmethod
    def _as_new(schedule: Schedule) -> NewSchedule:
        spec = schedule.spec
        return NewSchedule(
            name=schedule.name,
            cron=schedule.cron,
            timezone=schedule.timezone,
            targets=list(spec.get("targets") or []),
            document=spec.get("document"),
            template_arn=spec.get("jobTemplateArn"),
            parameters=dict(spec.get("documentParameters") or {}),
            settings=dict(spec.get("settings") or {}),
            misfire=schedule.misfire,
            overlap=schedule.overlap,
            enabled=schedule.enabled,
        )

    def _validate(self, new: NewSchedule, changed: Collection[str] | None = None) -> Cron:
        """Check a schedule as CreateJob checks a job; with ``changed``, only what changed."""

        def changing(*fields: str) -> bool:
            return changed is None or any(name in changed for name in fields)

        if _NAME.fullmatch(new.name) is None:
            raise InvalidRequest(f"Schedule name {_shown(new.name)} must be 1-40 letters, digits, '-' or '_'")
        try:
            cron = Cron.parse(new.cron, new.timezone)
        except CronError as exc:
            raise InvalidRequest(str(exc)) from exc
        if new.misfire not in ("skip", "run-once"):
            raise InvalidRequest(f"misfire must be skip or run-once, not {_shown(new.misfire)}")
        if new.overlap not in ("skip", "allow"):
            raise InvalidRequest(f"overlap must be skip or allow, not {_shown(new.overlap)}")
        if changing("targets"):
            self._check_targets(new)
        if changing(*_SOURCE_FIELDS):
            self._check_document(new)
        if changing("settings"):
            unknown = set(new.settings) - set(_SETTINGS)
            if unknown:
                raise InvalidRequest(
                    f"Schedules take only {', '.join(_SETTINGS)}; not {', '.join(sorted(unknown))}"
                )
            check_job_settings(new.settings, now=self.clock.now())
        return cron

    def _check_targets(self, new: NewSchedule) -> None:
        if not new.targets:
            raise InvalidRequest(f"Schedule {new.name} needs at least one target")
        if len(new.targets) > MAX_TARGETS:
            raise LimitExceeded(f"A job can have at most {MAX_TARGETS} targets, not {len(new.targets)}")
        try:
            self.engine.resolve_targets(new.targets)
        except ResourceNotFound as exc:
            # A 404 on /schedules/{name} would say the schedule does not exist.
            raise InvalidRequest(f"A target of schedule {new.name} does not exist: {exc.message}") from exc

    def _check_document(self, new: NewSchedule) -> None:
        try:
            resolved = self.templates.document_for_job(new.template_arn, new.document, new.parameters or None)
        except ResourceNotFound as exc:
            raise InvalidRequest(
                f"Schedule {new.name} names a job template that does not exist: {exc.message}"
            ) from exc
        # Judged now, as CreateJob would judge it, rather than failing at every fire.
        require_json_object(resolved.document)


def _misfire(value: str) -> Misfire:
    return "run-once" if value == "run-once" else "skip"


def _shown(value: object) -> str:
    """A value for an error message, cut short: it may be anything a client sent."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
