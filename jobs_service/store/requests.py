"""SQL for the marks that make a durable request queue's redeliveries harmless.

A queue that delivers each partition's requests in order, one at a time, needs
only one number per partition: the sequence of the last request answered. A
request at or below it was answered before (its worker died after the commit,
before acknowledging it), so it is acknowledged again, not answered again.
"""

from __future__ import annotations

from .base import Repository

__all__ = ["RequestsRepository"]


class RequestsRepository(Repository):
    def claim(self, partition: int, sequence: int) -> bool:
        """Mark ``sequence`` answered in ``partition``; False when it (or a later one) already was.

        Call it in the transaction that answers the request, so the mark and the
        answer are committed together or not at all.
        """
        cursor = self._execute(
            "INSERT INTO request_marks (partition, handled_sequence) VALUES (?, ?)"
            " ON CONFLICT (partition) DO UPDATE SET handled_sequence = excluded.handled_sequence"
            " WHERE request_marks.handled_sequence < excluded.handled_sequence",
            (partition, sequence),
        )
        return cursor.rowcount == 1

    def handled(self, partition: int) -> int:
        """The sequence of the last request answered in ``partition`` (0: none yet)."""
        row = self._row("SELECT handled_sequence FROM request_marks WHERE partition = ?", (partition,))
        return int(row["handled_sequence"]) if row is not None else 0
