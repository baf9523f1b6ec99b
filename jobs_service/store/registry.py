"""SQL for things, thing groups and group membership."""

from __future__ import annotations

import sqlite3

from ..models import Thing, ThingGroup
from .base import Repository, dumps, loads, row_limit

__all__ = ["RegistryRepository"]


def _thing(row: sqlite3.Row) -> Thing:
    return Thing(
        name=row["name"],
        thing_id=row["thing_id"],
        thing_type_name=row["thing_type_name"],
        attributes=loads(row["attributes"]) or {},
        version=row["version"],
        created_at=row["created_at"],
    )


def _group(row: sqlite3.Row) -> ThingGroup:
    return ThingGroup(
        name=row["name"],
        group_id=row["group_id"],
        parent_name=row["parent_name"],
        description=row["description"],
        attributes=loads(row["attributes"]) or {},
        version=row["version"],
        created_at=row["created_at"],
        query_string=row["query_string"],
        query_version=row["query_version"],
        index_name=row["index_name"],
    )


class RegistryRepository(Repository):
    # -- things -----------------------------------------------------------
    def insert_thing(self, thing: Thing) -> None:
        self._execute(
            "INSERT INTO things (name, thing_id, thing_type_name, attributes, version, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                thing.name,
                thing.thing_id,
                thing.thing_type_name,
                dumps(thing.attributes),
                thing.version,
                thing.created_at,
            ),
        )

    def get_thing(self, name: str) -> Thing | None:
        row = self._row("SELECT * FROM things WHERE name = ?", (name,))
        return _thing(row) if row else None

    def save_thing(self, thing: Thing) -> None:
        self._execute(
            "UPDATE things SET thing_type_name = ?, attributes = ?, version = ? WHERE name = ?",
            (thing.thing_type_name, dumps(thing.attributes), thing.version, thing.name),
        )

    def delete_thing(self, name: str) -> None:
        """Remove a thing and its group memberships (its executions stay, as history)."""
        self._execute("DELETE FROM group_members WHERE thing_name = ?", (name,))
        self._execute("DELETE FROM things WHERE name = ?", (name,))

    def thing_exists(self, name: str) -> bool:
        return self._row("SELECT 1 FROM things WHERE name = ?", (name,)) is not None

    def list_things(self, *, after: str | None, limit: int) -> list[Thing]:
        """Things in name order, starting after the name ``after``."""
        rows = self._rows("SELECT * FROM things WHERE name > ? ORDER BY name LIMIT ?", (after or "", limit))
        return [_thing(row) for row in rows]

    # -- groups -----------------------------------------------------------
    def insert_group(self, group: ThingGroup) -> None:
        self._execute(
            "INSERT INTO thing_groups (name, group_id, parent_name, description, attributes, version,"
            " created_at, query_string, query_version, index_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                group.name,
                group.group_id,
                group.parent_name,
                group.description,
                dumps(group.attributes),
                group.version,
                group.created_at,
                group.query_string,
                group.query_version,
                group.index_name,
            ),
        )

    def save_group(self, group: ThingGroup) -> None:
        self._execute(
            "UPDATE thing_groups SET description = ?, attributes = ?, version = ?, query_string = ?,"
            " query_version = ?, index_name = ? WHERE name = ?",
            (
                group.description,
                dumps(group.attributes),
                group.version,
                group.query_string,
                group.query_version,
                group.index_name,
                group.name,
            ),
        )

    def delete_group(self, name: str) -> None:
        self._execute("DELETE FROM group_members WHERE group_name = ?", (name,))
        self._execute("DELETE FROM thing_groups WHERE name = ?", (name,))

    def get_group_by_id(self, group_id: str) -> ThingGroup | None:
        row = self._row("SELECT * FROM thing_groups WHERE group_id = ?", (group_id,))
        return _group(row) if row else None

    def child_groups(self, name: str) -> list[str]:
        rows = self._rows("SELECT name FROM thing_groups WHERE parent_name = ? ORDER BY name", (name,))
        return [row["name"] for row in rows]

    def dynamic_groups(self) -> list[ThingGroup]:
        rows = self._rows("SELECT * FROM thing_groups WHERE query_string IS NOT NULL ORDER BY name")
        return [_group(row) for row in rows]

    def list_groups(
        self, *, names: list[str] | None, prefix: str | None, after: str | None, limit: int
    ) -> list[ThingGroup]:
        """Groups in name order; ``names`` restricts to a set (None: all groups)."""
        rows = self._rows(
            "SELECT * FROM thing_groups WHERE name > ?"
            " AND (CAST(? AS TEXT) IS NULL OR substr(name, 1, length(CAST(? AS TEXT))) = ?)"
            " ORDER BY name",
            (after or "", prefix, prefix, prefix),
        )
        wanted = None if names is None else set(names)
        groups = [_group(row) for row in rows if wanted is None or row["name"] in wanted]
        return groups[:limit] if limit >= 0 else groups

    def get_group(self, name: str) -> ThingGroup | None:
        row = self._row("SELECT * FROM thing_groups WHERE name = ?", (name,))
        return _group(row) if row else None

    def descendant_groups(self, name: str) -> list[str]:
        """``name`` and every group below it."""
        # Anchored on the table's own column, so the names keep its collation on PostgreSQL.
        rows = self._rows(
            "WITH RECURSIVE tree(name) AS (SELECT name FROM thing_groups WHERE name = ?"
            " UNION SELECT g.name FROM thing_groups g JOIN tree ON g.parent_name = tree.name)"
            " SELECT name FROM tree",
            (name,),
        )
        return sorted({name, *(row["name"] for row in rows)})

    def ancestor_groups(self, name: str) -> list[str]:
        """``name`` and every group above it, nearest first."""
        chain: list[str] = []
        current: str | None = name
        while current is not None and current not in chain:
            chain.append(current)
            row = self._row("SELECT parent_name FROM thing_groups WHERE name = ?", (current,))
            current = row["parent_name"] if row else None
        return chain

    def add_member(self, group_name: str, thing_name: str) -> bool:
        """Add a thing to a group; False when it already was a member."""
        cursor = self._execute(
            "INSERT INTO group_members (group_name, thing_name) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (group_name, thing_name),
        )
        return cursor.rowcount == 1

    def group_things(self, group_names: list[str], *, after: str | None = None, limit: int = -1) -> list[str]:
        """Distinct things that belong to any of ``group_names``, in name order."""
        if not group_names:
            return []
        marks = ",".join("?" * len(group_names))
        rows = self._rows(
            f"SELECT DISTINCT thing_name FROM group_members WHERE group_name IN ({marks})"
            " AND thing_name > ? ORDER BY thing_name LIMIT ?",
            (*group_names, after or "", row_limit(limit)),
        )
        return [row["thing_name"] for row in rows]

    def remove_member(self, group_name: str, thing_name: str) -> bool:
        """Remove a thing from a group; False when it was not a member."""
        cursor = self._execute(
            "DELETE FROM group_members WHERE group_name = ? AND thing_name = ?", (group_name, thing_name)
        )
        return cursor.rowcount == 1

    def all_thing_names(self) -> list[str]:
        return [row["name"] for row in self._rows("SELECT name FROM things ORDER BY name")]

    def groups_of_thing(self, thing_name: str) -> list[str]:
        rows = self._rows(
            "SELECT group_name FROM group_members WHERE thing_name = ? ORDER BY group_name", (thing_name,)
        )
        return [row["group_name"] for row in rows]
