"""The store's SQL as the PostgreSQL backend sends it."""

import pytest

from iot_jobs_bridge.jobs_service.store.postgres import translate


@pytest.mark.parametrize(
    ("store_sql", "sent"),
    [
        ("SELECT * FROM jobs WHERE job_id = ?", "SELECT * FROM jobs WHERE job_id = %s"),
        ("WHERE status = :status AND x = :x_1", "WHERE status = %(status)s AND x = %(x_1)s"),
        ("SELECT targets::jsonb", "SELECT targets::jsonb"),  # a cast is no placeholder
        ("WHERE a LIKE 'x?:y%' AND b = ?", "WHERE a LIKE 'x?:y%%' AND b = %s"),  # literals kept
        ("SELECT 7 % 2", "SELECT 7 %% 2"),
        ("VALUES (?, ?) ON CONFLICT DO NOTHING", "VALUES (%s, %s) ON CONFLICT DO NOTHING"),
    ],
    ids=["question-mark", "named", "cast", "literal", "percent", "several"],
)
def test_placeholders_become_psycopgs_and_nothing_else_changes(store_sql, sent):
    assert translate(store_sql) == sent
