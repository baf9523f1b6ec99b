"""SQL for jobs and job executions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from ..models import ExecutionStatus, Job, JobExecution, JobStatus, TargetSelection
from .base import Repository, dumps, loads, row_limit

__all__ = ["JobsRepository"]

_PENDING = (ExecutionStatus.IN_PROGRESS.value, ExecutionStatus.QUEUED.value)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        job_id=row["job_id"],
        status=JobStatus(row["status"]),
        target_selection=TargetSelection(row["target_selection"]),
        targets=loads(row["targets"]),
        document=row["document"],
        description=row["description"],
        created_at=row["created_at"],
        last_updated_at=row["last_updated_at"],
        completed_at=row["completed_at"],
        force_canceled=bool(row["force_canceled"]),
        reason_code=row["reason_code"],
        comment=row["comment"],
        settings=loads(row["settings"]) or {},
        raw_document=row["raw_document"],
        namespace_id=row["namespace_id"],
        start_at=row["start_at"],
        end_at=row["end_at"],
        ended=bool(row["ended"]),
        next_release_at=row["next_release_at"],
        released=row["released"],
    )


def _execution(row: sqlite3.Row) -> JobExecution:
    return JobExecution(
        job_id=row["job_id"],
        thing_name=row["thing_name"],
        execution_number=row["execution_number"],
        status=ExecutionStatus(row["status"]),
        status_details=loads(row["status_details"]) or {},
        queued_at=row["queued_at"],
        started_at=row["started_at"],
        last_updated_at=row["last_updated_at"],
        version_number=row["version_number"],
        force_canceled=bool(row["force_canceled"]),
        retry_attempt=row["retry_attempt"],
        step_timeout_at=row["step_timeout_at"],
        timeout_at=row["timeout_at"],
        seq=row["seq"],
    )


def _next_order(execution: JobExecution) -> tuple[bool, float, int]:
    """The "next" order of `pending_executions`' ORDER BY, for lists kept in memory."""
    return (execution.status is ExecutionStatus.QUEUED, execution.queued_at, execution.seq)


class JobsRepository(Repository):
    # -- jobs -------------------------------------------------------------
    def insert_job(self, job: Job) -> None:
        self._forget("job", job.job_id)
        self._execute(
            "INSERT INTO jobs (job_id, status, target_selection, targets, document, description,"
            " created_at, last_updated_at, completed_at, force_canceled, reason_code, comment, settings,"
            " raw_document, namespace_id, start_at, end_at, ended, next_release_at, released)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.job_id,
                job.status.value,
                job.target_selection.value,
                dumps(job.targets),
                job.document,
                job.description,
                job.created_at,
                job.last_updated_at,
                job.completed_at,
                int(job.force_canceled),
                job.reason_code,
                job.comment,
                dumps(job.settings),
                job.raw_document,
                job.namespace_id,
                job.start_at,
                job.end_at,
                int(job.ended),
                job.next_release_at,
                job.released,
            ),
        )

    def get_job(self, job_id: str) -> Job | None:
        def read() -> Job | None:
            row = self._row("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
            return _job(row) if row else None

        return self._cached("job", job_id, read)

    def get_documents(self, job_ids: Iterable[str]) -> dict[str, str]:
        documents = {}
        for job_id in sorted(set(job_ids)):
            job = self.get_job(job_id)
            if job is not None:
                documents[job_id] = job.document
        return documents

    def save_job(self, job: Job) -> None:
        """Write every mutable field of an existing job."""
        self._forget("job", job.job_id)
        self._execute(
            "UPDATE jobs SET status = ?, targets = ?, description = ?, last_updated_at = ?, completed_at = ?,"
            " force_canceled = ?, reason_code = ?, comment = ?, settings = ?, ended = ?, next_release_at = ?,"
            " released = ? WHERE job_id = ?",
            (
                job.status.value,
                dumps(job.targets),
                job.description,
                job.last_updated_at,
                job.completed_at,
                int(job.force_canceled),
                job.reason_code,
                job.comment,
                dumps(job.settings),
                int(job.ended),
                job.next_release_at,
                job.released,
                job.job_id,
            ),
        )

    def delete_job(self, job_id: str) -> None:
        """Remove a job, its unreleased targets and every execution of it."""
        self._forget("job", job_id)
        self._forget_kind("pending")
        self._execute("DELETE FROM rollout_queue WHERE job_id = ?", (job_id,))
        self._execute("DELETE FROM job_executions WHERE job_id = ?", (job_id,))
        self._execute("DELETE FROM job_status_counts WHERE job_id = ?", (job_id,))
        self._execute("DELETE FROM job_outcome_counts WHERE job_id = ?", (job_id,))
        self._execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def job_ids_with_status(self, status: JobStatus) -> list[str]:
        rows = self._rows("SELECT job_id FROM jobs WHERE status = ? ORDER BY created_at", (status.value,))
        return [row["job_id"] for row in rows]

    def list_jobs(
        self,
        *,
        status: JobStatus | None,
        target_selection: TargetSelection | None,
        target_arn: str | None,
        namespace_id: str | None,
        after: tuple[float, str] | None,
        limit: int,
    ) -> list[Job]:
        """Jobs newest first, filtered, after a keyset position (createdAt, jobId)."""
        created, job_id = after if after else (float("inf"), "")
        rows = self._rows(
            "SELECT * FROM jobs WHERE (CAST(:status AS TEXT) IS NULL OR status = :status)"
            " AND (CAST(:selection AS TEXT) IS NULL OR target_selection = :selection)"
            " AND (CAST(:namespace AS TEXT) IS NULL OR namespace_id = :namespace)"
            " AND (CAST(:target AS TEXT) IS NULL"
            f" OR EXISTS (SELECT 1 FROM {self._db.json_values('jobs.targets', 'target')}"
            " WHERE target.value = :target))"
            " AND (created_at < :created OR (created_at = :created AND job_id < :job_id))"
            " ORDER BY created_at DESC, job_id DESC LIMIT :limit",
            {
                "status": status.value if status else None,
                "selection": target_selection.value if target_selection else None,
                "namespace": namespace_id,
                "target": target_arn,
                "created": created,
                "job_id": job_id if after else "\uffff",
                "limit": limit,
            },
        )
        return [_job(row) for row in rows]

    def continuous_jobs_targeting(self, target_arns: list[str]) -> list[Job]:
        """IN_PROGRESS continuous jobs whose targets include any of ``target_arns``."""
        if not target_arns:
            return []
        marks = ",".join("?" * len(target_arns))
        rows = self._rows(
            f"SELECT DISTINCT jobs.* FROM jobs, {self._db.json_values('jobs.targets', 'target')}"
            f" WHERE jobs.status = ? AND jobs.target_selection = ? AND target.value IN ({marks})"
            " ORDER BY jobs.created_at, jobs.job_id",
            (JobStatus.IN_PROGRESS.value, TargetSelection.CONTINUOUS.value, *target_arns),
        )
        return [_job(row) for row in rows]

    # -- executions -------------------------------------------------------
    def insert_execution(self, execution: JobExecution) -> JobExecution:
        """Insert a new execution; returns it with its creation sequence number."""
        self._touch(execution.thing_name)
        inserted_row = self._row(
            "INSERT INTO job_executions (job_id, thing_name, execution_number, status, status_details,"
            " queued_at, started_at, last_updated_at, version_number, force_canceled, retry_attempt)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
            (
                execution.job_id,
                execution.thing_name,
                execution.execution_number,
                execution.status.value,
                dumps(execution.status_details),
                execution.queued_at,
                execution.started_at,
                execution.last_updated_at,
                execution.version_number,
                int(execution.force_canceled),
                execution.retry_attempt,
            ),
        )
        assert inserted_row is not None
        inserted = execution.model_copy(update={"seq": inserted_row["seq"]})
        self._pending_written(inserted)
        return inserted

    def save_execution(self, execution: JobExecution) -> None:
        """Write every mutable field of an existing execution."""
        self._touch(execution.thing_name)
        self._execute(
            "UPDATE job_executions SET status = ?, status_details = ?, started_at = ?, last_updated_at = ?,"
            " version_number = ?, force_canceled = ?, step_timeout_at = ?, timeout_at = ? WHERE seq = ?",
            (
                execution.status.value,
                dumps(execution.status_details),
                execution.started_at,
                execution.last_updated_at,
                execution.version_number,
                int(execution.force_canceled),
                execution.step_timeout_at,
                execution.timeout_at,
                execution.seq,
            ),
        )
        self._pending_written(execution)

    def delete_execution(self, execution: JobExecution) -> None:
        self._touch(execution.thing_name)
        self._execute("DELETE FROM job_executions WHERE seq = ?", (execution.seq,))
        self._pending_written(execution, deleted=True)

    def _pending_written(self, execution: JobExecution, *, deleted: bool = False) -> None:
        """Bring the thing's cached pending list in step with a write (rather than read it again)."""
        # Only the transaction writing (which holds the database's lock) gets here.
        known = self._db.cache_entry("pending", execution.thing_name)
        if not known:
            return
        whole, executions = known[0]
        if not whole:  # the next row, unknown, may move up: read again next time
            known.clear()
            return
        rest = [e for e in executions if e.seq != execution.seq]
        if not deleted and execution.status.value in _PENDING:
            rest.append(execution)
            rest.sort(key=_next_order)
        known[0] = (True, rest)

    def open_executions(self, job_id: str) -> list[JobExecution]:
        """A job's QUEUED and IN_PROGRESS executions."""
        rows = self._rows(
            "SELECT * FROM job_executions WHERE job_id = ? AND status IN (?, ?) ORDER BY seq",
            (job_id, *_PENDING),
        )
        return [_execution(row) for row in rows]

    def executed_things(self, job_id: str) -> int:
        """How many things have (or had) an execution of the job."""
        # Each such thing is counted once, by its latest execution.
        row = self._row("SELECT SUM(things) AS n FROM job_status_counts WHERE job_id = ?", (job_id,))
        return int(row["n"] or 0) if row else 0

    def any_started(self, job_id: str) -> bool:
        """Has any execution of the job ever been IN_PROGRESS?"""
        row = self._row(
            "SELECT 1 FROM job_executions WHERE job_id = ? AND started_at IS NOT NULL LIMIT 1", (job_id,)
        )
        return row is not None

    def get_execution(
        self, job_id: str, thing_name: str, execution_number: int | None = None
    ) -> JobExecution | None:
        """One execution of a job on a thing; the latest when no number is given."""
        if execution_number is None:
            row = self._row(
                "SELECT * FROM job_executions WHERE job_id = ? AND thing_name = ?"
                " ORDER BY execution_number DESC LIMIT 1",
                (job_id, thing_name),
            )
        else:
            row = self._row(
                "SELECT * FROM job_executions WHERE job_id = ? AND thing_name = ? AND execution_number = ?",
                (job_id, thing_name, execution_number),
            )
        return _execution(row) if row else None

    def pending_executions(self, thing_name: str, limit: int | None = None) -> list[JobExecution]:
        """The thing's QUEUED and IN_PROGRESS executions in "next" order (the first ``limit``)."""
        # Within a transaction, a thing's pending list is read once until one of its executions
        # changes: a read that came back short of its limit holds the whole list.
        known: list[tuple[bool, list[JobExecution]]] = self._cached("pending", thing_name, list)
        if known:
            whole, executions = known[0]
            if whole or (limit is not None and limit <= len(executions)):
                return executions[:limit]
        rows = self._rows(
            "SELECT * FROM job_executions WHERE thing_name = ? AND status IN (?, ?)"
            " ORDER BY status = 'QUEUED', queued_at, seq LIMIT ?",
            (thing_name, *_PENDING, row_limit(limit)),
        )
        executions = [_execution(row) for row in rows]
        known[:] = [(limit is None or len(executions) < limit, executions)]
        return executions[:]

    def pending_view(self, thing_name: str, limit: int) -> tuple[tuple[int, int], list[JobExecution]]:
        """`pending_signature` and the first ``limit`` pending executions, in one query when they are all."""
        executions = self.pending_executions(thing_name, limit)
        if len(executions) < limit:
            return (len(executions), sum(e.seq for e in executions)), executions
        return self.pending_signature(thing_name), executions

    def pending_signature(self, thing_name: str) -> tuple[int, int]:
        """(count, sum of creation numbers) of the thing's pending executions.

        It changes whenever an execution joins or leaves the pending set (a new
        execution always has a higher number than any before it), and not when
        one only changes status within it; it costs no rows.
        """
        row = self._row(
            "SELECT COUNT(*) AS n, COALESCE(SUM(seq), 0) AS total FROM job_executions"
            " WHERE thing_name = ? AND status IN (?, ?)",
            (thing_name, *_PENDING),
        )
        return (int(row["n"]), int(row["total"])) if row else (0, 0)

    def has_open_executions(self, job_id: str) -> bool:
        """Whether any execution of the job is QUEUED or IN_PROGRESS (stops at the first)."""
        row = self._row(
            "SELECT EXISTS (SELECT 1 FROM job_executions WHERE job_id = ? AND status IN (?, ?)) AS open",
            (job_id, *_PENDING),
        )
        return bool(row and row["open"])

    def execution_counts(self, job_id: str) -> dict[ExecutionStatus, int]:
        """Things per status, counting each thing's latest execution only (kept by the schema's triggers)."""
        rows = self._rows(
            "SELECT status, things FROM job_status_counts WHERE job_id = ? AND things > 0", (job_id,)
        )
        return {ExecutionStatus(row["status"]): int(row["things"]) for row in rows}

    def executions_for_job(
        self, job_id: str, *, status: ExecutionStatus | None, after: tuple[str, int] | None, limit: int
    ) -> list[JobExecution]:
        """A job's executions by (thing name, execution number), after a keyset position."""
        thing, number = after if after else ("", 0)
        wanted = status.value if status else None
        rows = self._rows(
            "SELECT * FROM job_executions WHERE job_id = ? AND (CAST(? AS TEXT) IS NULL OR status = ?)"
            " AND (thing_name > ? OR (thing_name = ? AND execution_number > ?))"
            " ORDER BY thing_name, execution_number LIMIT ?",
            (job_id, wanted, wanted, thing, thing, number, row_limit(limit)),
        )
        return [_execution(row) for row in rows]

    def executions_for_thing(
        self,
        thing_name: str,
        *,
        status: ExecutionStatus | None,
        job_id: str | None,
        after: int | None,
        limit: int,
    ) -> list[JobExecution]:
        """A thing's executions in creation order, after a creation sequence number."""
        wanted = status.value if status else None
        rows = self._rows(
            "SELECT * FROM job_executions WHERE thing_name = ? AND (CAST(? AS TEXT) IS NULL OR status = ?)"
            " AND (CAST(? AS TEXT) IS NULL OR job_id = ?) AND seq > ? ORDER BY seq LIMIT ?",
            (thing_name, wanted, wanted, job_id, job_id, after or 0, limit),
        )
        return [_execution(row) for row in rows]

    # -- rollout and timers -----------------------------------------------
    def enqueue_rollout(self, job_id: str, thing_names: list[str]) -> None:
        """Things waiting for their execution to be released, in release order."""
        self._executemany(
            "INSERT INTO rollout_queue (job_id, thing_name, position) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(job_id, name, position) for position, name in enumerate(thing_names)],
        )

    def rollout_waiting(self, job_id: str, limit: int = -1) -> list[str]:
        rows = self._rows(
            "SELECT thing_name FROM rollout_queue WHERE job_id = ? ORDER BY position LIMIT ?",
            (job_id, row_limit(limit)),
        )
        return [row["thing_name"] for row in rows]

    def rollout_waits(self, job_id: str) -> bool:
        """Whether any thing of the job still waits for its release (stops at the first)."""
        row = self._row("SELECT EXISTS (SELECT 1 FROM rollout_queue WHERE job_id = ?) AS waits", (job_id,))
        return bool(row and row["waits"])

    def drop_from_rollout(self, job_id: str, thing_names: list[str] | None = None) -> None:
        """Forget waiting things of a job (all of them when ``thing_names`` is None)."""
        if thing_names is None:
            self._execute("DELETE FROM rollout_queue WHERE job_id = ?", (job_id,))
            return
        for name in thing_names:
            self._execute("DELETE FROM rollout_queue WHERE job_id = ? AND thing_name = ?", (job_id, name))

    def jobs_rolling_out(self) -> list[Job]:
        """IN_PROGRESS jobs that still have things waiting for release."""
        rows = self._rows(
            "SELECT * FROM jobs WHERE status = ? AND EXISTS (SELECT 1 FROM rollout_queue q"
            " WHERE q.job_id = jobs.job_id) ORDER BY created_at, job_id",
            (JobStatus.IN_PROGRESS.value,),
        )
        return [_job(row) for row in rows]

    def jobs_with_pending_schedule(self) -> list[Job]:
        """Jobs waiting to start, or whose end time is still to be applied."""
        rows = self._rows(
            "SELECT * FROM jobs WHERE status = ? OR (end_at IS NOT NULL AND ended = 0 AND status = ?)"
            " ORDER BY created_at, job_id",
            (JobStatus.SCHEDULED.value, JobStatus.IN_PROGRESS.value),
        )
        return [_job(row) for row in rows]

    def executions_timed_out(self, now: float) -> list[JobExecution]:
        """IN_PROGRESS executions whose earlier timer has run out by ``now``."""
        rows = self._rows(
            "SELECT * FROM job_executions WHERE status = ? AND (timeout_at <= ? OR step_timeout_at <= ?)"
            " ORDER BY seq",
            (ExecutionStatus.IN_PROGRESS.value, now, now),
        )
        return [_execution(row) for row in rows]

    def next_execution_deadline(self) -> float | None:
        row = self._row(
            "SELECT MIN(due) AS due FROM ("
            " SELECT MIN(timeout_at) AS due FROM job_executions WHERE status = ? AND timeout_at IS NOT NULL"
            " UNION ALL SELECT MIN(step_timeout_at) FROM job_executions"
            " WHERE status = ? AND step_timeout_at IS NOT NULL) AS deadlines",
            (ExecutionStatus.IN_PROGRESS.value, ExecutionStatus.IN_PROGRESS.value),
        )
        return float(row["due"]) if row and row["due"] is not None else None

    def attempts_since_join(self, job_id: str, thing_name: str) -> list[JobExecution]:
        """The thing's attempts at a job since its latest fresh (non-retry) execution, oldest first."""
        rows = self._rows(
            "SELECT * FROM job_executions WHERE job_id = ? AND thing_name = ? AND seq >= COALESCE("
            " (SELECT MAX(seq) FROM job_executions WHERE job_id = ? AND thing_name = ?"
            " AND retry_attempt = 0), 0)"
            " ORDER BY seq",
            (job_id, thing_name, job_id, thing_name),
        )
        return [_execution(row) for row in rows]

    def latest_outcomes(self, job_id: str) -> dict[ExecutionStatus, int]:
        """Things per status of their latest finished execution (abort arithmetic; kept by triggers)."""
        rows = self._rows(
            "SELECT status, things FROM job_outcome_counts WHERE job_id = ? AND things > 0", (job_id,)
        )
        return {ExecutionStatus(row["status"]): int(row["things"]) for row in rows}

    # -- counts for the metrics (read at each scrape) ------------------------
    def jobs_per_status(self) -> dict[JobStatus, int]:
        """How many jobs are in each status (a status no job is in is left out)."""
        rows = self._rows("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        return {JobStatus(row["status"]): int(row["n"]) for row in rows}

    def open_jobs_execution_counts(self) -> dict[str, dict[ExecutionStatus, int]]:
        """Things per status (each thing's latest execution) of every IN_PROGRESS or SCHEDULED job.

        A job with no execution yet is there with no counts.
        """
        rows = self._rows(
            "SELECT j.job_id, c.status, c.things FROM jobs AS j"
            " LEFT JOIN job_status_counts AS c ON c.job_id = j.job_id AND c.things > 0"
            " WHERE j.status IN (?, ?)",
            (JobStatus.IN_PROGRESS.value, JobStatus.SCHEDULED.value),
        )
        counts: dict[str, dict[ExecutionStatus, int]] = {}
        for row in rows:
            per_status = counts.setdefault(row["job_id"], {})
            if row["status"] is not None:
                per_status[ExecutionStatus(row["status"])] = int(row["things"])
        return counts
