"""Schema migrations, applied in order and recorded in ``schema_migrations``.

Never edit a migration that has shipped; add a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = ["MIGRATIONS", "migrate"]


def _run(conn: sqlite3.Connection, script: str) -> None:
    # One statement at a time: executescript() would commit the open transaction.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _v1_initial(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE things (
            name TEXT PRIMARY KEY,
            thing_id TEXT NOT NULL UNIQUE,
            thing_type_name TEXT,
            attributes TEXT NOT NULL DEFAULT '{}',
            version INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL
        );
        CREATE TABLE thing_groups (
            name TEXT PRIMARY KEY,
            group_id TEXT NOT NULL UNIQUE,
            parent_name TEXT REFERENCES thing_groups(name),
            description TEXT,
            attributes TEXT NOT NULL DEFAULT '{}',
            version INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL
        );
        CREATE INDEX thing_groups_parent ON thing_groups(parent_name);
        CREATE TABLE group_members (
            group_name TEXT NOT NULL REFERENCES thing_groups(name),
            thing_name TEXT NOT NULL REFERENCES things(name),
            PRIMARY KEY (group_name, thing_name)
        );
        CREATE INDEX group_members_thing ON group_members(thing_name);
        CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            target_selection TEXT NOT NULL,
            targets TEXT NOT NULL,
            document TEXT NOT NULL,
            description TEXT,
            created_at REAL NOT NULL,
            last_updated_at REAL NOT NULL,
            completed_at REAL,
            force_canceled INTEGER NOT NULL DEFAULT 0,
            reason_code TEXT,
            comment TEXT,
            settings TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX jobs_status ON jobs(status);
        CREATE TABLE job_executions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL REFERENCES jobs(job_id),
            thing_name TEXT NOT NULL,
            execution_number INTEGER NOT NULL,
            status TEXT NOT NULL,
            status_details TEXT NOT NULL DEFAULT '{}',
            queued_at REAL NOT NULL,
            started_at REAL,
            last_updated_at REAL NOT NULL,
            version_number INTEGER NOT NULL DEFAULT 1,
            force_canceled INTEGER NOT NULL DEFAULT 0,
            retry_attempt INTEGER NOT NULL DEFAULT 0,
            UNIQUE (job_id, thing_name, execution_number)
        );
        CREATE INDEX job_executions_thing_status ON job_executions(thing_name, status);
        CREATE INDEX job_executions_job_status ON job_executions(job_id, status);
        """,
    )


def _v2_control_plane(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        ALTER TABLE jobs ADD COLUMN raw_document TEXT;
        ALTER TABLE jobs ADD COLUMN namespace_id TEXT;
        CREATE INDEX jobs_created ON jobs(created_at, job_id);
        ALTER TABLE thing_groups ADD COLUMN query_string TEXT;
        ALTER TABLE thing_groups ADD COLUMN query_version TEXT;
        ALTER TABLE thing_groups ADD COLUMN index_name TEXT;
        CREATE TABLE job_templates (
            template_id TEXT PRIMARY KEY,
            description TEXT NOT NULL,
            document TEXT,
            document_source TEXT,
            settings TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL
        );
        """,
    )


def _v3_step_timers(conn: sqlite3.Connection) -> None:
    _run(conn, "ALTER TABLE job_executions ADD COLUMN step_timeout_at REAL")


def _v4_rollout(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        ALTER TABLE job_executions ADD COLUMN timeout_at REAL;
        CREATE INDEX job_executions_timers ON job_executions(status, timeout_at, step_timeout_at);
        ALTER TABLE jobs ADD COLUMN start_at REAL;
        ALTER TABLE jobs ADD COLUMN end_at REAL;
        ALTER TABLE jobs ADD COLUMN ended INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN next_release_at REAL;
        ALTER TABLE jobs ADD COLUMN released INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE rollout_queue (
            job_id TEXT NOT NULL REFERENCES jobs(job_id),
            thing_name TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (job_id, thing_name)
        );
        CREATE INDEX rollout_queue_order ON rollout_queue(job_id, position);
        """,
    )


def _v5_schedules(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE schedules (
            name TEXT PRIMARY KEY,
            cron TEXT NOT NULL,
            timezone TEXT NOT NULL,
            spec TEXT NOT NULL,
            misfire TEXT NOT NULL,
            overlap TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            created_at REAL NOT NULL,
            handled_until REAL NOT NULL,
            next_fire_at REAL
        );
        CREATE INDEX schedules_next ON schedules(enabled, next_fire_at);
        CREATE TABLE schedule_fires (
            schedule TEXT NOT NULL,
            fire_at REAL NOT NULL,
            job_id TEXT,
            outcome TEXT NOT NULL,
            recorded_at REAL NOT NULL,
            PRIMARY KEY (schedule, fire_at)
        );
        """,
    )


def _v6_certificates(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE certificates (
            certificate_id TEXT PRIMARY KEY,
            pem TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_modified_at REAL NOT NULL
        );
        CREATE TABLE thing_principals (
            thing_name TEXT NOT NULL,
            principal TEXT NOT NULL,
            PRIMARY KEY (thing_name, principal)
        );
        CREATE INDEX thing_principals_principal ON thing_principals(principal);
        """,
    )


def _v7_policies(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE policies (
            name TEXT PRIMARY KEY,
            default_version INTEGER NOT NULL,
            created_at REAL NOT NULL,
            last_modified_at REAL NOT NULL
        );
        CREATE TABLE policy_versions (
            name TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            document TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (name, version)
        );
        CREATE TABLE policy_targets (
            name TEXT NOT NULL REFERENCES policies(name),
            target TEXT NOT NULL,
            PRIMARY KEY (name, target)
        );
        CREATE INDEX policy_targets_target ON policy_targets(target);
        """,
    )


def _v8_deleted_certificates(conn: sqlite3.Connection) -> None:
    # A deleted certificate stays refused by brokers that check a revocation list.
    _run(
        conn,
        """
        CREATE TABLE deleted_certificates (
            certificate_id TEXT PRIMARY KEY,
            pem TEXT NOT NULL,
            deleted_at REAL NOT NULL
        );
        """,
    )


def _v9_fire_reasons(conn: sqlite3.Connection) -> None:
    # Why a schedule's fire failed, shown in its history.
    _run(conn, "ALTER TABLE schedule_fires ADD COLUMN reason TEXT")


def _v10_request_marks(conn: sqlite3.Connection) -> None:
    # The last request answered from each partition of a durable request queue (NATS).
    _run(
        conn,
        """
        CREATE TABLE request_marks (
            partition INTEGER PRIMARY KEY,
            handled_sequence INTEGER NOT NULL
        )
        """,
    )


def _v11_service_clock(conn: sqlite3.Connection) -> None:
    # The service clock's anchor, shared by the workers of one store (clock.shared_clock).
    _run(
        conn,
        """
        CREATE TABLE service_clock (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            service REAL NOT NULL,
            wall REAL NOT NULL,
            scale REAL NOT NULL
        )
        """,
    )


# Whether execution {row} is its thing's latest in its job (only the latest are counted).
_LATEST = (
    "NOT EXISTS (SELECT 1 FROM job_executions AS later WHERE later.job_id = {row}.job_id"
    " AND later.thing_name = {row}.thing_name AND later.execution_number > {row}.execution_number)"
)
# The status of the thing's execution just before {row}, or NULL.
_BEFORE = (
    "(SELECT earlier.status FROM job_executions AS earlier WHERE earlier.job_id = {row}.job_id"
    " AND earlier.thing_name = {row}.thing_name AND earlier.execution_number < {row}.execution_number"
    " ORDER BY earlier.execution_number DESC LIMIT 1)"
)
# Add {delta} things to {row}'s job under {status}, when that status is not NULL.
_ADD = (
    "INSERT INTO job_status_counts (job_id, status, things)"
    " SELECT {row}.job_id, counted.status, {delta} FROM (SELECT {status} AS status) AS counted"
    " WHERE counted.status IS NOT NULL"
    " ON CONFLICT (job_id, status) DO UPDATE SET things = things + excluded.things;"
)


def _v12_job_status_counts(conn: sqlite3.Connection) -> None:
    # Things per status of each job (each thing's latest execution), kept by triggers in the
    # transaction of every execution write, so that DescribeJob, the console and the metrics
    # read a job's counts rather than count its executions.
    conn.execute(
        "CREATE TABLE job_status_counts (job_id TEXT NOT NULL, status TEXT NOT NULL,"
        " things INTEGER NOT NULL, PRIMARY KEY (job_id, status)) WITHOUT ROWID"
    )
    # The new execution counts; the one it follows no longer does.
    conn.execute(
        "CREATE TRIGGER job_status_counts_insert AFTER INSERT ON job_executions"
        f" WHEN {_LATEST.format(row='NEW')} BEGIN"
        f" {_ADD.format(row='NEW', status=_BEFORE.format(row='NEW'), delta=-1)}"
        f" {_ADD.format(row='NEW', status='NEW.status', delta=1)} END"
    )
    conn.execute(
        "CREATE TRIGGER job_status_counts_update AFTER UPDATE OF status ON job_executions"
        f" WHEN OLD.status <> NEW.status AND {_LATEST.format(row='NEW')} BEGIN"
        f" {_ADD.format(row='OLD', status='OLD.status', delta=-1)}"
        f" {_ADD.format(row='NEW', status='NEW.status', delta=1)} END"
    )
    # A latest execution deleted: the one before it, if any, counts again.
    conn.execute(
        "CREATE TRIGGER job_status_counts_delete AFTER DELETE ON job_executions"
        f" WHEN {_LATEST.format(row='OLD')} BEGIN"
        f" {_ADD.format(row='OLD', status='OLD.status', delta=-1)}"
        f" {_ADD.format(row='OLD', status=_BEFORE.format(row='OLD'), delta=1)} END"
    )
    conn.execute(
        "INSERT INTO job_status_counts (job_id, status, things) SELECT e.job_id, e.status, COUNT(*)"
        f" FROM job_executions AS e WHERE {_LATEST.format(row='e')} GROUP BY e.job_id, e.status"
    )


_FINISHED = "{row}.status NOT IN ('QUEUED', 'IN_PROGRESS')"
# Whether the thing has a finished execution after {row} (then {row} does not decide its outcome).
_FINISHED_LATER = (
    "EXISTS (SELECT 1 FROM job_executions AS later WHERE later.job_id = {row}.job_id"
    " AND later.thing_name = {row}.thing_name AND later.seq > {row}.seq"
    " AND later.status NOT IN ('QUEUED', 'IN_PROGRESS'))"
)
# The status of the thing's last finished execution before {row}, or NULL.
_FINISHED_BEFORE = (
    "(SELECT earlier.status FROM job_executions AS earlier WHERE earlier.job_id = {row}.job_id"
    " AND earlier.thing_name = {row}.thing_name AND earlier.seq < {row}.seq"
    " AND earlier.status NOT IN ('QUEUED', 'IN_PROGRESS') ORDER BY earlier.seq DESC LIMIT 1)"
)


def _outcome(row: str) -> str:
    """The thing's outcome while execution ``row`` exists as it is: its status, or the one before."""
    return (
        f"CASE WHEN {_FINISHED.format(row=row)} THEN {row}.status ELSE {_FINISHED_BEFORE.format(row=row)} END"
    )


def _v13_job_outcome_counts(conn: sqlite3.Connection) -> None:
    # Things per status of their latest finished execution (the abort arithmetic), kept like
    # job_status_counts: a failure of a job with an abortConfig no longer counts its executions.
    # Each trigger takes the thing's outcome before the write away and adds the one after it.
    conn.execute(
        "CREATE TABLE job_outcome_counts (job_id TEXT NOT NULL, status TEXT NOT NULL,"
        " things INTEGER NOT NULL, PRIMARY KEY (job_id, status)) WITHOUT ROWID"
    )
    add = _ADD.replace("job_status_counts", "job_outcome_counts")
    conn.execute(
        "CREATE TRIGGER job_outcome_counts_insert AFTER INSERT ON job_executions"
        f" WHEN {_FINISHED.format(row='NEW')} AND NOT {_FINISHED_LATER.format(row='NEW')} BEGIN"
        f" {add.format(row='NEW', status=_FINISHED_BEFORE.format(row='NEW'), delta=-1)}"
        f" {add.format(row='NEW', status='NEW.status', delta=1)} END"
    )
    conn.execute(
        "CREATE TRIGGER job_outcome_counts_update AFTER UPDATE OF status ON job_executions"
        " WHEN OLD.status <> NEW.status"
        f" AND ({_FINISHED.format(row='OLD')} OR {_FINISHED.format(row='NEW')})"  # else no outcome changes
        f" AND NOT {_FINISHED_LATER.format(row='NEW')} BEGIN"
        f" {add.format(row='OLD', status=_outcome('OLD'), delta=-1)}"
        f" {add.format(row='NEW', status=_outcome('NEW'), delta=1)} END"
    )
    conn.execute(
        "CREATE TRIGGER job_outcome_counts_delete AFTER DELETE ON job_executions"
        f" WHEN {_FINISHED.format(row='OLD')} AND NOT {_FINISHED_LATER.format(row='OLD')} BEGIN"
        f" {add.format(row='OLD', status='OLD.status', delta=-1)}"
        f" {add.format(row='OLD', status=_FINISHED_BEFORE.format(row='OLD'), delta=1)} END"
    )
    conn.execute(
        "INSERT INTO job_outcome_counts (job_id, status, things) SELECT e.job_id, e.status, COUNT(*)"
        f" FROM job_executions AS e WHERE {_FINISHED.format(row='e')}"
        f" AND NOT {_FINISHED_LATER.format(row='e')} GROUP BY e.job_id, e.status"
    )


def _v14_executions_by_queue_time(conn: sqlite3.Connection) -> None:
    # The console's pace chart counts a job's executions queued in each recent minute: with
    # this index it reads those entries alone, and never the executions' rows.
    conn.execute("CREATE INDEX job_executions_job_queued ON job_executions(job_id, queued_at)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _v1_initial,
    _v2_control_plane,
    _v3_step_timers,
    _v4_rollout,
    _v5_schedules,
    _v6_certificates,
    _v7_policies,
    _v8_deleted_certificates,
    _v9_fire_reasons,
    _v10_request_marks,
    _v11_service_clock,
    _v12_job_status_counts,
    _v13_job_outcome_counts,
    _v14_executions_by_queue_time,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration not yet recorded; return the schema version."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    for version, step in enumerate(MIGRATIONS, start=1):
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, datetime('now'))", (version,)
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return len(MIGRATIONS)
