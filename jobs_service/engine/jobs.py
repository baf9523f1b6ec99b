"""Job lifecycle on the control plane: create, update, cancel, delete, associate targets,
and the service-side changes to single executions (cancel, delete)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..documents import require_json_object
from ..errors import (
    InvalidRequest,
    InvalidStateTransition,
    LimitExceeded,
    ResourceAlreadyExists,
    ResourceNotFound,
    VersionConflict,
)
from ..job_settings import check_job_settings, check_status_details
from ..models import ExecutionStatus, Job, JobExecution, JobStatus, TargetSelection
from ..states import is_terminal, job_moved
from .base import EngineCore, Outcome, Part, counted, no_execution, write_notes
from .lifecycle import LifecycleOps
from .rollout import RolloutOps, schedule_of

__all__ = ["MAX_DELETIONS_IN_PROGRESS", "MAX_TARGETS", "JobOps", "NewJob"]

MAX_TARGETS = 100
MAX_DELETIONS_IN_PROGRESS = 10
# The settings UpdateJob may change (spec §6.3).
UPDATABLE_SETTINGS = (
    "presignedUrlConfig",
    "jobExecutionsRolloutConfig",
    "abortConfig",
    "timeoutConfig",
    "jobExecutionsRetryConfig",
)


@dataclass(frozen=True)
class NewJob:
    """A CreateJob request with its document resolved (template and parameters applied)."""

    job_id: str
    targets: list[str]
    document: str
    description: str | None = None
    target_selection: TargetSelection = TargetSelection.SNAPSHOT
    settings: dict[str, Any] = field(default_factory=dict)
    raw_document: str | None = None
    namespace_id: str | None = None


class JobOps(Part):
    def __init__(self, core: EngineCore, lifecycle: LifecycleOps, rollout: RolloutOps) -> None:
        super().__init__(core)
        self.lifecycle = lifecycle
        self.rollout = rollout

    def create_job(self, new: NewJob) -> Outcome:
        """Store a job and queue one execution per distinct target thing."""
        require_json_object(new.document)
        check_job_settings(new.settings, now=self.clock.now())
        _check_target_count(len(new.targets))
        things = self.core.resolve_targets(new.targets)
        now = self.clock.now()

        def change() -> Job:
            if self.store.jobs.get_job(new.job_id) is not None:
                raise ResourceAlreadyExists(
                    f"Job {new.job_id} already exists",
                    extra={"resourceId": new.job_id, "resourceArn": self.arns.job(new.job_id)},
                )
            start, end, _ = schedule_of(new.settings)
            job = Job(
                job_id=new.job_id,
                status=JobStatus.SCHEDULED,
                target_selection=new.target_selection,
                targets=list(dict.fromkeys(new.targets)),
                document=new.document,
                raw_document=new.raw_document,
                description=new.description,
                created_at=now,
                last_updated_at=now,
                settings=new.settings,
                namespace_id=new.namespace_id,
                start_at=start,
                end_at=end,
            )
            self.store.jobs.insert_job(job)
            if self.rollout.ready_to_start(job, now):
                self.rollout.start_job(job, things, now, created=True)
            else:
                self.rollout.note_scheduled(job, len(things), now)
            return self.core.get_job(job.job_id)

        return self.core.watching(things, change)

    def update_job(self, job_id: str, *, description: str | None, settings: dict[str, Any]) -> Job:
        """UpdateJob: only the description and the settings of ``UPDATABLE_SETTINGS``."""
        check_job_settings(settings, now=self.clock.now())
        with self.store.atomic():
            job = self._not_deleting(self.core.get_job(job_id))
            if "timeoutConfig" in settings and self.store.jobs.any_started(job_id):
                raise InvalidRequest(
                    f"The timeout of job {job_id} cannot change once one of its executions has started"
                )
            changed = {**job.settings, **{k: v for k, v in settings.items() if k in UPDATABLE_SETTINGS}}
            updated = job.model_copy(
                update={
                    "description": job.description if description is None else description,
                    "settings": changed,
                    "last_updated_at": self.clock.now(),
                }
            )
            self.store.jobs.save_job(updated)
            return updated

    def cancel_job(
        self, job_id: str, *, force: bool, reason_code: str | None, comment: str | None
    ) -> Outcome:
        """Cancel QUEUED executions (and IN_PROGRESS ones with ``force``); the job becomes CANCELED.

        A job canceled without force may be canceled again with force, to stop
        the executions that were left running.
        """

        def change() -> Job:
            job = self._not_deleting(self.core.get_job(job_id))
            if job.status is JobStatus.COMPLETED:
                raise InvalidRequest(f"Job {job_id} is COMPLETED; it cannot be canceled")
            if job.status is JobStatus.CANCELED and (job.force_canceled or not force):
                raise InvalidRequest(f"Job {job_id} is already canceled")
            now = self.clock.now()
            self.lifecycle.cancel_open_work(job, now, force=force)
            canceled = job_moved(
                self.core.get_job(job_id),
                JobStatus.CANCELED,
                now,
                force_canceled=job.force_canceled or force,
                reason_code=reason_code if reason_code is not None else job.reason_code,
                comment=comment if comment is not None else job.comment,
            )
            self.store.jobs.save_job(canceled)
            self.core.emit_job(canceled, "cancellation_in_progress", "CANCELLATION_IN_PROGRESS")
            self.core.emit_job(canceled, "canceled", JobStatus.CANCELED.value)
            said = [
                f"{k}: {v}" for k, v in (("reasonCode", reason_code), ("comment", comment)) if v is not None
            ]
            self.core.note(
                logging.INFO,
                "job %s canceled%s%s",
                job_id,
                " with force" if force else "",
                f" ({', '.join(said)})" if said else "",
                job_id=job_id,
                force=force,
                reason=reason_code,
                comment=comment,
            )
            return canceled

        return self.core.watching(lambda: self._things_with_open_executions(job_id), change)

    def delete_job(self, job_id: str, *, force: bool) -> Outcome:
        """Mark a job DELETION_IN_PROGRESS and remove its executions; :meth:`finish_deletions` drops it."""

        def change() -> Job:
            job = self._not_deleting(self.core.get_job(job_id))
            if job.status in (JobStatus.IN_PROGRESS, JobStatus.SCHEDULED) and not force:
                raise InvalidStateTransition(
                    f"Job {job_id} is {job.status.value}; delete it with force=true, or cancel it first"
                )
            if (
                len(self.store.jobs.job_ids_with_status(JobStatus.DELETION_IN_PROGRESS))
                >= MAX_DELETIONS_IN_PROGRESS
            ):
                raise LimitExceeded(
                    f"{MAX_DELETIONS_IN_PROGRESS} jobs are already being deleted; try again shortly"
                )
            executions = self.store.jobs.executions_for_job(job_id, status=None, after=None, limit=-1)
            for execution in executions:
                self.store.jobs.delete_execution(execution)
                self.core.emit_execution(execution, "deleted")
            self.core.note(
                logging.INFO,
                "job %s deleted%s: it was %s, with %s",
                job_id,
                " with force" if force else "",
                job.status.value,
                counted(len(executions), "execution"),
                job_id=job_id,
                force=force,
                status=job.status.value,
            )
            deleting = job_moved(job, JobStatus.DELETION_IN_PROGRESS, self.clock.now())
            self.store.jobs.save_job(deleting)
            self.core.emit_job(deleting, "deletion_in_progress", JobStatus.DELETION_IN_PROGRESS.value)
            return deleting

        return self.core.watching(lambda: self._things_with_open_executions(job_id), change)

    def finish_deletions(self) -> Outcome:
        """Drop every job left DELETION_IN_PROGRESS (also after a restart); their ids become free.

        The value is the list of dropped job ids; the events say each was deleted.
        """
        with self.store.atomic() as work:
            self.core.take_events()
            self.core.take_notes()
            job_ids = self.store.jobs.job_ids_with_status(JobStatus.DELETION_IN_PROGRESS)
            for job_id in job_ids:
                job = self.core.get_job(job_id)
                self.store.jobs.delete_job(job_id)
                self.core.emit_job(job, "deleted", "DELETED")
                self.core.note(logging.DEBUG, "job %s dropped; its id is free", job_id, job_id=job_id)
            events = self.core.take_events()
            notes = self.core.take_notes()
            work.after_commit(lambda: write_notes(notes))
            work.after_commit(self.core.observers_told(events))
        return Outcome(job_ids, events)

    def associate_targets(self, job_id: str, targets: list[str]) -> Outcome:
        """Add targets to a continuous job; newly covered things get an execution."""
        job = self._not_deleting(self.core.get_job(job_id))
        if job.target_selection is not TargetSelection.CONTINUOUS:
            raise InvalidRequest(
                f"Job {job_id} is a snapshot job; targets can be added to continuous jobs only"
            )
        if job.status is not JobStatus.IN_PROGRESS:
            raise InvalidRequest(
                f"Job {job_id} is {job.status.value}; targets can be added only while IN_PROGRESS"
            )
        combined = list(dict.fromkeys([*job.targets, *targets]))
        _check_target_count(len(combined))
        covered_before = set(self.core.resolve_targets(job.targets))
        joining = [name for name in self.core.resolve_targets(targets) if name not in covered_before]
        now = self.clock.now()

        def change() -> Job:
            for thing_name in joining:
                latest = self.store.jobs.get_execution(job_id, thing_name)
                if latest is None or is_terminal(latest.status):
                    self.core.queue(job_id, thing_name, now)
            updated = job.model_copy(update={"targets": combined, "last_updated_at": now})
            self.store.jobs.save_job(updated)
            return updated

        return self.core.watching(joining, change)

    def cancel_execution(
        self,
        job_id: str,
        thing_name: str,
        *,
        force: bool,
        expected_version: int | None,
        status_details: dict[str, str] | None,
    ) -> Outcome:
        """CancelJobExecution: QUEUED, or IN_PROGRESS with ``force``."""
        if status_details is not None:
            check_status_details(status_details)

        def change() -> JobExecution:
            execution = self.core.get_execution(job_id, thing_name, None)
            if is_terminal(execution.status):
                raise InvalidStateTransition(
                    f"Job execution {job_id} on {thing_name} is {execution.status.value};"
                    " it cannot be canceled"
                )
            running = execution.status is ExecutionStatus.IN_PROGRESS
            if running and not force:
                raise InvalidStateTransition(
                    f"Job execution {job_id} on {thing_name} is IN_PROGRESS; cancel it with force=true"
                )
            if expected_version is not None and expected_version != execution.version_number:
                raise VersionConflict(
                    f"Job execution {job_id} on {thing_name} is at version {execution.version_number},"
                    f" not {expected_version}"
                )
            now = self.clock.now()
            canceled = self.core.end_by_service(
                execution, ExecutionStatus.CANCELED, now, force=running, status_details=status_details
            )
            self.lifecycle.after_execution_ended(canceled, now)
            return canceled

        return self.core.watching([thing_name], change)

    def delete_execution(
        self, job_id: str, thing_name: str, execution_number: int, *, force: bool
    ) -> Outcome:
        """DeleteJobExecution: QUEUED or terminal executions, IN_PROGRESS ones with ``force``."""

        def change() -> JobExecution:
            execution = self.store.jobs.get_execution(job_id, thing_name, execution_number)
            if execution is None:
                raise ResourceNotFound(no_execution(job_id, thing_name, execution_number))
            if execution.status is ExecutionStatus.IN_PROGRESS and not force:
                raise InvalidStateTransition(
                    f"Job execution {job_id} on {thing_name} is IN_PROGRESS; delete it with force=true"
                )
            self.store.jobs.delete_execution(execution)
            self.core.emit_execution(execution, "deleted")
            self.lifecycle.complete_if_done(job_id, self.clock.now())
            return execution

        return self.core.watching([thing_name], change)

    def _things_with_open_executions(self, job_id: str) -> list[str]:
        return [execution.thing_name for execution in self.store.jobs.open_executions(job_id)]

    @staticmethod
    def _not_deleting(job: Job) -> Job:
        if job.status is JobStatus.DELETION_IN_PROGRESS:
            raise InvalidRequest(f"Job {job.job_id} is being deleted")
        return job


def _check_target_count(count: int) -> None:
    if count > MAX_TARGETS:
        raise LimitExceeded(f"A job can have at most {MAX_TARGETS} targets, not {count}")
