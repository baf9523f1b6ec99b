"""SQL for AWS IoT policies, their versions, and what they are attached to."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Repository

__all__ = ["PoliciesRepository", "Policy"]


@dataclass(frozen=True)
class Policy:
    name: str
    default_version: int
    document: str  # the default version's document
    created_at: float
    last_modified_at: float


class PoliciesRepository(Repository):
    def insert_policy(self, name: str, document: str, now: float) -> None:
        self._execute(
            "INSERT INTO policies (name, default_version, created_at, last_modified_at) VALUES (?, 1, ?, ?)",
            (name, now, now),
        )
        self._execute(
            "INSERT INTO policy_versions (name, version, document, created_at) VALUES (?, 1, ?, ?)",
            (name, document, now),
        )

    def get_policy(self, name: str) -> Policy | None:
        row = self._row(
            "SELECT p.*, v.document FROM policies AS p JOIN policy_versions AS v"
            " ON v.name = p.name AND v.version = p.default_version WHERE p.name = ?",
            (name,),
        )
        if row is None:
            return None
        return Policy(
            row["name"], row["default_version"], row["document"], row["created_at"], row["last_modified_at"]
        )

    def list_policies(self, *, after: str | None, limit: int) -> list[str]:
        rows = self._rows(
            "SELECT name FROM policies WHERE name > ? ORDER BY name LIMIT ?", (after or "", limit)
        )
        return [row["name"] for row in rows]

    def add_policy_version(self, name: str, document: str, now: float, *, make_default: bool) -> int:
        row = self._row("SELECT MAX(version) AS v FROM policy_versions WHERE name = ?", (name,))
        version = int(row["v"] or 0) + 1 if row else 1
        self._execute(
            "INSERT INTO policy_versions (name, version, document, created_at) VALUES (?, ?, ?, ?)",
            (name, version, document, now),
        )
        if make_default:
            self._execute(
                "UPDATE policies SET default_version = ?, last_modified_at = ? WHERE name = ?",
                (version, now, name),
            )
        return version

    def delete_policy(self, name: str) -> None:
        self._execute("DELETE FROM policy_versions WHERE name = ?", (name,))
        self._execute("DELETE FROM policies WHERE name = ?", (name,))

    def attach_policy(self, name: str, target: str) -> None:
        self._execute(
            "INSERT INTO policy_targets (name, target) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, target)
        )

    def detach_policy(self, name: str, target: str) -> None:
        self._execute("DELETE FROM policy_targets WHERE name = ? AND target = ?", (name, target))

    def policy_targets(self, name: str) -> list[str]:
        rows = self._rows("SELECT target FROM policy_targets WHERE name = ? ORDER BY target", (name,))
        return [row["target"] for row in rows]

    def policies_of(self, target: str) -> list[str]:
        rows = self._rows("SELECT name FROM policy_targets WHERE target = ? ORDER BY name", (target,))
        return [row["name"] for row in rows]
