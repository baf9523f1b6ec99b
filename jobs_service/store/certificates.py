"""SQL for device certificates and the principals attached to things."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from .base import Repository

__all__ = ["Certificate", "CertificatesRepository"]


@dataclass(frozen=True)
class Certificate:
    certificate_id: str
    pem: str
    status: str  # ACTIVE | INACTIVE | REVOKED
    created_at: float
    last_modified_at: float


def _certificate(row: sqlite3.Row) -> Certificate:
    return Certificate(
        certificate_id=row["certificate_id"],
        pem=row["pem"],
        status=row["status"],
        created_at=row["created_at"],
        last_modified_at=row["last_modified_at"],
    )


class CertificatesRepository(Repository):
    def insert_certificate(self, certificate: Certificate) -> None:
        self._execute(
            "INSERT INTO certificates (certificate_id, pem, status, created_at, last_modified_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                certificate.certificate_id,
                certificate.pem,
                certificate.status,
                certificate.created_at,
                certificate.last_modified_at,
            ),
        )

    def get_certificate(self, certificate_id: str) -> Certificate | None:
        row = self._row("SELECT * FROM certificates WHERE certificate_id = ?", (certificate_id,))
        return _certificate(row) if row else None

    def list_certificates(self, *, after: str | None, limit: int) -> list[Certificate]:
        rows = self._rows(
            "SELECT * FROM certificates WHERE certificate_id > ? ORDER BY certificate_id LIMIT ?",
            (after or "", limit),
        )
        return [_certificate(row) for row in rows]

    def set_certificate_status(self, certificate_id: str, status: str, now: float) -> None:
        self._execute(
            "UPDATE certificates SET status = ?, last_modified_at = ? WHERE certificate_id = ?",
            (status, now, certificate_id),
        )

    def delete_certificate(self, certificate_id: str, now: float) -> None:
        self._execute(
            "INSERT INTO deleted_certificates (certificate_id, pem, deleted_at)"
            " SELECT certificate_id, pem, ? FROM certificates WHERE certificate_id = ?"
            " ON CONFLICT (certificate_id)"
            " DO UPDATE SET pem = excluded.pem, deleted_at = excluded.deleted_at",
            (now, certificate_id),
        )
        self._execute("DELETE FROM certificates WHERE certificate_id = ?", (certificate_id,))

    def all_certificates(self) -> list[Certificate]:
        return [_certificate(row) for row in self._rows("SELECT * FROM certificates ORDER BY certificate_id")]

    def deleted_certificate_pems(self) -> list[str]:
        rows = self._rows("SELECT pem FROM deleted_certificates ORDER BY certificate_id")
        return [row["pem"] for row in rows]

    def all_thing_principals(self) -> list[tuple[str, str]]:
        """Every (thing name, principal) attachment."""
        rows = self._rows("SELECT thing_name, principal FROM thing_principals ORDER BY principal, thing_name")
        return [(row["thing_name"], row["principal"]) for row in rows]

    def attach_principal(self, thing_name: str, principal: str) -> None:
        self._execute(
            "INSERT INTO thing_principals (thing_name, principal) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (thing_name, principal),
        )

    def detach_principal(self, thing_name: str, principal: str) -> None:
        self._execute(
            "DELETE FROM thing_principals WHERE thing_name = ? AND principal = ?", (thing_name, principal)
        )

    def principals_of(self, thing_name: str) -> list[str]:
        rows = self._rows(
            "SELECT principal FROM thing_principals WHERE thing_name = ? ORDER BY principal", (thing_name,)
        )
        return [row["principal"] for row in rows]

    def things_of(self, principal: str) -> list[str]:
        rows = self._rows(
            "SELECT thing_name FROM thing_principals WHERE principal = ? ORDER BY thing_name", (principal,)
        )
        return [row["thing_name"] for row in rows]
