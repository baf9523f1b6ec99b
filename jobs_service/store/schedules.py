"""SQL for recurring schedules and the record of their fires."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from .base import Repository, dumps, loads

__all__ = ["Fire", "Schedule", "SchedulesRepository"]


@dataclass(frozen=True)
class Schedule:
    """A named recurring schedule; ``spec`` holds targets, document or template, and job settings."""

    name: str
    cron: str
    timezone: str
    spec: dict[str, Any]
    misfire: str = "skip"
    overlap: str = "skip"
    enabled: bool = True
    created_at: float = 0.0
    handled_until: float = 0.0  # every fire at or before this time has been run or skipped
    next_fire_at: float | None = None


@dataclass(frozen=True)
class Fire:
    """One fire of a schedule: the job it created, or why it was skipped or failed."""

    schedule: str
    fire_at: float
    outcome: str
    job_id: str | None = None
    recorded_at: float = 0.0
    reason: str | None = None  # why a fire failed


def _schedule(row: sqlite3.Row) -> Schedule:
    return Schedule(
        name=row["name"],
        cron=row["cron"],
        timezone=row["timezone"],
        spec=loads(row["spec"]) or {},
        misfire=row["misfire"],
        overlap=row["overlap"],
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        handled_until=row["handled_until"],
        next_fire_at=row["next_fire_at"],
    )


def _fire(row: sqlite3.Row) -> Fire:
    return Fire(
        schedule=row["schedule"],
        fire_at=row["fire_at"],
        outcome=row["outcome"],
        job_id=row["job_id"],
        recorded_at=row["recorded_at"],
        reason=row["reason"],
    )


class SchedulesRepository(Repository):
    def put_schedule(self, schedule: Schedule) -> None:
        """Insert or replace a schedule (callers check existence inside their transaction)."""
        self._execute(
            "INSERT INTO schedules (name, cron, timezone, spec, misfire, overlap, enabled,"
            " created_at, handled_until, next_fire_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone,"
            " spec = excluded.spec, misfire = excluded.misfire, overlap = excluded.overlap,"
            " enabled = excluded.enabled, created_at = excluded.created_at,"
            " handled_until = excluded.handled_until, next_fire_at = excluded.next_fire_at",
            (
                schedule.name,
                schedule.cron,
                schedule.timezone,
                dumps(schedule.spec),
                schedule.misfire,
                schedule.overlap,
                int(schedule.enabled),
                schedule.created_at,
                schedule.handled_until,
                schedule.next_fire_at,
            ),
        )

    def get_schedule(self, name: str) -> Schedule | None:
        row = self._row("SELECT * FROM schedules WHERE name = ?", (name,))
        return _schedule(row) if row else None

    def list_schedules(self, *, after: str | None, limit: int) -> list[Schedule]:
        rows = self._rows(
            "SELECT * FROM schedules WHERE name > ? ORDER BY name LIMIT ?", (after or "", limit)
        )
        return [_schedule(row) for row in rows]

    def delete_schedule(self, name: str) -> bool:
        cursor = self._execute("DELETE FROM schedules WHERE name = ?", (name,))
        self._execute("DELETE FROM schedule_fires WHERE schedule = ?", (name,))
        return cursor.rowcount == 1

    def advance_schedule(
        self, name: str, *, handled_from: float, handled_until: float, next_fire_at: float
    ) -> bool:
        """Move a schedule on past its handled fires; ``False`` if it changed meanwhile.

        Only a schedule still handled up to ``handled_from`` moves: an update or
        re-enable since it was read (they count from their own time) wins.
        """
        cursor = self._execute(
            "UPDATE schedules SET handled_until = ?, next_fire_at = ? WHERE name = ? AND handled_until = ?",
            (handled_until, next_fire_at, name, handled_from),
        )
        return cursor.rowcount == 1

    def due_schedules(self, now: float) -> list[Schedule]:
        rows = self._rows(
            "SELECT * FROM schedules WHERE enabled = 1 AND next_fire_at IS NOT NULL AND next_fire_at <= ?"
            " ORDER BY next_fire_at, name",
            (now,),
        )
        return [_schedule(row) for row in rows]

    def next_schedule_fire(self) -> float | None:
        row = self._row("SELECT MIN(next_fire_at) AS at FROM schedules WHERE enabled = 1", ())
        return float(row["at"]) if row and row["at"] is not None else None

    def record_fire(self, fire: Fire) -> bool:
        """Record a fire; ``False`` if that fire time was already recorded (it never runs twice)."""
        cursor = self._execute(
            "INSERT INTO schedule_fires (schedule, fire_at, job_id, outcome, recorded_at, reason)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (fire.schedule, fire.fire_at, fire.job_id, fire.outcome, fire.recorded_at, fire.reason),
        )
        return cursor.rowcount == 1

    def list_fires(self, schedule: str, *, limit: int) -> list[Fire]:
        rows = self._rows(
            "SELECT * FROM schedule_fires WHERE schedule = ? ORDER BY fire_at DESC LIMIT ?", (schedule, limit)
        )
        return [_fire(row) for row in rows]
