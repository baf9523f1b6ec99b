"""SQL for custom job templates."""

from __future__ import annotations

import sqlite3

from ..models import JobTemplate
from .base import Repository, dumps, loads

__all__ = ["TemplatesRepository"]


def _template(row: sqlite3.Row) -> JobTemplate:
    return JobTemplate(
        template_id=row["template_id"],
        description=row["description"],
        document=row["document"],
        document_source=row["document_source"],
        settings=loads(row["settings"]) or {},
        created_at=row["created_at"],
    )


class TemplatesRepository(Repository):
    def insert_template(self, template: JobTemplate) -> None:
        self._execute(
            "INSERT INTO job_templates (template_id, description, document, document_source, settings,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                template.template_id,
                template.description,
                template.document,
                template.document_source,
                dumps(template.settings),
                template.created_at,
            ),
        )

    def get_template(self, template_id: str) -> JobTemplate | None:
        row = self._row("SELECT * FROM job_templates WHERE template_id = ?", (template_id,))
        return _template(row) if row else None

    def list_templates(self, *, after: str | None, limit: int) -> list[JobTemplate]:
        rows = self._rows(
            "SELECT * FROM job_templates WHERE template_id > ? ORDER BY template_id LIMIT ?",
            (after or "", limit),
        )
        return [_template(row) for row in rows]

    def delete_template(self, template_id: str) -> bool:
        cursor = self._execute("DELETE FROM job_templates WHERE template_id = ?", (template_id,))
        return cursor.rowcount == 1
