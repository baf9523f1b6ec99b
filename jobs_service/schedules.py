"""Recurring schedules: each fire of a cron expression creates one job, exactly once.

A fire is recorded and its job created in one transaction, under a job id made
from the schedule name and the fire time, so a crash at any point can neither
lose a fire nor create it twice: after a restart the record is there, or
neither is. Misfires after downtime and overlapping runs follow the schedule's
policies (D45).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any

from .clock import Clock
from .cron import Cron, CronError, due_fire, fire_label
from .documents import require_json_object
from .engine import JobsEngine, NewJob
from .errors import InvalidRequest, ResourceAlreadyExists, ResourceNotFound
from .job_settings import check_job_settings
from .models import JobStatus
from .notifications import Message
from .store import Fire, Schedule, Store
from .templates import Templates

__all__ = ["NewSchedule", "Schedules"]

# The operator's log of schedules (see `jobs_service.logs`).
log = logging.getLogger("iotjobs.schedules")

_NAME = re.compile(r"[a-zA-Z0-9_-]{1,40}")
_SETTINGS = ("jobExecutionsRolloutConfig", "abortConfig", "timeoutConfig", "jobExecutionsRetryConfig")
# Fires skipped after a long downtime are recorded one by one, up to this many.
_SKIPPED_RECORDS = 100


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

    def __init__(self, store: Store, engine: JobsEngine, templates: Templates, clock: Clock) -> None:
        self.store = store
        self.engine = engine
        self.templates = templates
        self.clock = clock

    # -- operations ----------------------------------------------------------

    def create(self, new: NewSchedule) -> Schedule:
        cron = self._validate(new)
        now = self.clock.now()
        schedule = self._from_new(new, cron, created_at=now, now=now)
        with self.store.atomic():
            if self.store.get_schedule(new.name) is not None:
                raise ResourceAlreadyExists(f"Schedule {new.name} already exists")
            self.store.put_schedule(schedule)
        return schedule

    def describe(self, name: str) -> Schedule:
        schedule = self.store.get_schedule(name)
        if schedule is None:
            raise ResourceNotFound(f"Schedule {name} does not exist")
        return schedule

    def list_schedules(self, *, after: str | None = None, limit: int = 100) -> list[Schedule]:
        return self.store.list_schedules(after=after, limit=limit)

    def update(self, name: str, changes: dict[str, Any]) -> Schedule:
        """Change any of a schedule's settings; a new cron or time zone counts from now."""
        now = self.clock.now()
        with self.store.atomic():
            current = self.describe(name)
            merged = {**self._as_new(current).__dict__, **changes, "name": name}
            new = NewSchedule(**merged)
            cron = self._validate(new)
            timing_changed = (cron.expression, cron.timezone) != (current.cron, current.timezone)
            enabling = new.enabled and not current.enabled
            changed = replace(
                self._from_new(new, cron, created_at=current.created_at, now=now),
                handled_until=now if timing_changed or enabling else current.handled_until,
                next_fire_at=cron.next_after(now if timing_changed or enabling else current.handled_until),
            )
            self.store.put_schedule(changed)
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
            self.store.put_schedule(changed)
        return changed

    def delete(self, name: str) -> None:
        with self.store.atomic():
            if not self.store.delete_schedule(name):
                raise ResourceNotFound(f"Schedule {name} does not exist")

    def history(self, name: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The latest fires, newest first, each with its job's status now."""
        self.describe(name)
        entries = []
        for fire in self.store.list_fires(name, limit=limit):
            job = self.store.get_job(fire.job_id) if fire.job_id else None
            entries.append(
                {
                    "fireTime": fire.fire_at,
                    "outcome": fire.outcome,
                    "jobId": fire.job_id,
                    "jobStatus": job.status.value if job is not None else None,
                }
            )
        return entries

    # -- firing --------------------------------------------------------------

    def fire_due(self, now: float | None = None) -> list[Message]:
        """Run every fire that is due; returns the messages to publish after the commits."""
        now = self.clock.now() if now is None else now
        messages: list[Message] = []
        for schedule in self.store.due_schedules(now):
            messages += self._fire(schedule, now)
        return messages

    def next_due(self) -> float | None:
        return self.store.next_schedule_fire()

    def _fire(self, schedule: Schedule, now: float) -> list[Message]:
        cron = Cron.parse(schedule.cron, schedule.timezone)
        messages: list[Message] = []
        with self.store.atomic():
            fire, skipped = due_fire(cron, schedule.handled_until, now, _misfire(schedule.misfire))
            missed = cron.fires_between(schedule.handled_until, now, limit=skipped)[-_SKIPPED_RECORDS:]
            for moment in missed:
                if moment != fire:
                    self.store.record_fire(Fire(schedule.name, moment, "skipped-misfire", None, now))
            if skipped:
                log.info(
                    "schedule %s skipped %d fires missed while the service was down (misfire %s)",
                    schedule.name,
                    skipped,
                    schedule.misfire,
                    extra={"schedule": schedule.name, "skipped": skipped},
                )
            if fire is not None:
                messages += self._run(schedule, fire, now)
            self.store.put_schedule(replace(schedule, handled_until=now, next_fire_at=cron.next_after(now)))
        return messages

    def _run(self, schedule: Schedule, fire: float, now: float) -> list[Message]:
        job_id = f"{schedule.name}-{fire_label(fire)}"
        if schedule.overlap == "skip" and self._previous_still_running(schedule.name):
            self.store.record_fire(Fire(schedule.name, fire, "skipped-overlap", None, now))
            log.info(
                "schedule %s skipped its fire at %s: its previous job is still running (overlap skip)",
                schedule.name,
                fire_label(fire),
                extra={"schedule": schedule.name, "reason": "skipped-overlap"},
            )
            return []
        if not self.store.record_fire(Fire(schedule.name, fire, "created", job_id, now)):
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
        messages = self.engine.create_job(new).messages
        log.info(
            "schedule %s fired: job %s created",
            schedule.name,
            job_id,
            extra={"schedule": schedule.name, "job_id": job_id},
        )
        return messages

    def _previous_still_running(self, name: str) -> bool:
        for fire in self.store.list_fires(name, limit=10):
            if fire.job_id is not None:
                job = self.store.get_job(fire.job_id)
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

    def _validate(self, new: NewSchedule) -> Cron:
        if _NAME.fullmatch(new.name) is None:
            raise InvalidRequest(f"Schedule name {new.name!r} must be 1-40 letters, digits, '-' or '_'")
        try:
            cron = Cron.parse(new.cron, new.timezone)
        except CronError as exc:
            raise InvalidRequest(str(exc)) from exc
        if not new.targets:
            raise InvalidRequest(f"Schedule {new.name} needs at least one target")
        if new.misfire not in ("skip", "run-once"):
            raise InvalidRequest(f"misfire must be skip or run-once, not {new.misfire!r}")
        if new.overlap not in ("skip", "allow"):
            raise InvalidRequest(f"overlap must be skip or allow, not {new.overlap!r}")
        unknown = set(new.settings) - set(_SETTINGS)
        if unknown:
            raise InvalidRequest(
                f"Schedules take only {', '.join(_SETTINGS)}; not {', '.join(sorted(unknown))}"
            )
        try:
            resolved = self.templates.document_for_job(new.template_arn, new.document, new.parameters or None)
        except ResourceNotFound as exc:
            raise InvalidRequest(
                f"Schedule {new.name} names a job template that does not exist: {exc}"
            ) from exc
        # Judged now, as CreateJob would judge it, rather than failing at every fire.
        require_json_object(resolved.document)
        check_job_settings(new.settings, now=self.clock.now())
        self.engine.resolve_targets(new.targets)
        return cron


def _misfire(value: str) -> Any:
    return "run-once" if value == "run-once" else "skip"
