"""SQL for the console's overviews: jobs found by text, progress of many jobs, pace, fleet lists."""

from __future__ import annotations

from collections.abc import Sequence

from ..models import ExecutionStatus, Job, JobStatus
from .base import Repository, row_limit
from .jobs import _job

__all__ = ["OverviewRepository"]


def _contains(text: str | None) -> str | None:
    """A LIKE pattern matching ``text`` anywhere, its own wildcards taken literally (lower case)."""
    if not text:
        return None
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class OverviewRepository(Repository):
    def jobs_page(
        self,
        *,
        status: JobStatus | None,
        text: str | None,
        after: tuple[float, str] | None,
        limit: int,
    ) -> list[Job]:
        """Jobs newest first whose id or description contains ``text``, after (createdAt, jobId)."""
        created, job_id = after if after else (float("inf"), "\uffff")
        rows = self._rows(
            "SELECT * FROM jobs WHERE (CAST(:status AS TEXT) IS NULL OR status = :status)"
            " AND (CAST(:text AS TEXT) IS NULL OR LOWER(job_id) LIKE :text ESCAPE '\\'"
            "  OR LOWER(COALESCE(description, '')) LIKE :text ESCAPE '\\')"
            " AND (created_at < :created OR (created_at = :created AND job_id < :job_id))"
            " ORDER BY created_at DESC, job_id DESC LIMIT :limit",
            {
                "status": status.value if status else None,
                "text": _contains(text),
                "created": created,
                "job_id": job_id,
                "limit": row_limit(limit),
            },
        )
        return [_job(row) for row in rows]

    def counts_of_jobs(self, job_ids: Sequence[str]) -> dict[str, dict[ExecutionStatus, int]]:
        """Things per status (each thing's latest execution) of each job, in one query."""
        counts: dict[str, dict[ExecutionStatus, int]] = {job_id: {} for job_id in job_ids}
        if not job_ids:
            return counts
        marks = ", ".join("?" for _ in job_ids)
        rows = self._rows(
            f"SELECT job_id, status, things FROM job_status_counts WHERE job_id IN ({marks}) AND things > 0",
            tuple(job_ids),
        )
        for row in rows:
            counts[row["job_id"]][ExecutionStatus(row["status"])] = int(row["things"])
        return counts

    def queued_per_minute(self, job_id: str, *, since: float) -> list[tuple[int, int]]:
        """Executions the job released in each service minute from ``since``: (minute, count), in order.

        ``minute`` is the minute's start in whole minutes since the epoch.
        """
        rows = self._rows(
            "SELECT CAST(queued_at AS BIGINT) / 60 AS minute, COUNT(*) AS n FROM job_executions"
            " WHERE job_id = ? AND queued_at >= ? GROUP BY CAST(queued_at AS BIGINT) / 60 ORDER BY minute",
            (job_id, since),
        )
        return [(int(row["minute"]), int(row["n"])) for row in rows]

    def thing_names(self, *, text: str | None, after: str | None, limit: int) -> list[str]:
        """Thing names in order, containing ``text`` (any case), after ``after``."""
        rows = self._rows(
            "SELECT name FROM things WHERE name > ?"
            " AND (CAST(? AS TEXT) IS NULL OR LOWER(name) LIKE ? ESCAPE '\\') ORDER BY name LIMIT ?",
            (after or "", _contains(text), _contains(text), row_limit(limit)),
        )
        return [row["name"] for row in rows]

    def group_names(self, *, text: str | None, after: str | None, limit: int) -> list[str]:
        """Thing group names in order, containing ``text`` (any case), after ``after``."""
        rows = self._rows(
            "SELECT name FROM thing_groups WHERE name > ?"
            " AND (CAST(? AS TEXT) IS NULL OR LOWER(name) LIKE ? ESCAPE '\\') ORDER BY name LIMIT ?",
            (after or "", _contains(text), _contains(text), row_limit(limit)),
        )
        return [row["name"] for row in rows]
