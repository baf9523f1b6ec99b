"""Registry changes that move things in or out of job targets.

Creating, updating or deleting a thing, changing static membership and
changing dynamic groups can all change which continuous jobs cover a thing.
Every such change runs through :meth:`MembershipOps._membership_change`,
which compares coverage before and after: a thing that starts being covered
gets an execution, one that stops being covered has its pending execution
REMOVED (spec §7.1). Snapshot jobs ignore later membership changes, except
that deleting a thing REMOVEs its pending executions of every job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, TypeVar

from .. import fleet_query
from ..errors import InvalidRequest, ResourceAlreadyExists, ResourceNotFound, VersionConflict
from ..models import ExecutionStatus, Thing, ThingGroup
from ..states import is_terminal
from .base import EngineCore, Outcome, Part
from .lifecycle import LifecycleOps

__all__ = ["MAX_ATTRIBUTES", "MAX_GROUPS_PER_THING", "MembershipOps"]

T = TypeVar("T")
MAX_ATTRIBUTES = 3
MAX_GROUPS_PER_THING = 10
FLEET_INDEX = "AWS_Things"
DEFAULT_QUERY_VERSION = "2017-09-30"


@lru_cache(maxsize=256)
def _query(text: str) -> fleet_query.Query:
    return fleet_query.parse(text)


class MembershipOps(Part):
    def __init__(self, core: EngineCore, lifecycle: LifecycleOps) -> None:
        super().__init__(core)
        self.lifecycle = lifecycle

    # -- machinery --------------------------------------------------------
    def _covering_jobs(self, thing_name: str) -> set[str]:
        """IN_PROGRESS continuous jobs whose targets cover the thing now."""
        if not self.store.registry.thing_exists(thing_name):
            return set()
        arns = [self.arns.thing(thing_name)]
        for group in self.store.registry.groups_of_thing(thing_name):
            arns += [self.arns.thing_group(name) for name in self.store.registry.ancestor_groups(group)]
        return {job.job_id for job in self.store.jobs.continuous_jobs_targeting(list(dict.fromkeys(arns)))}

    def _membership_change(
        self, things: Iterable[str] | Callable[[], Iterable[str]], change: Callable[[], T]
    ) -> Outcome:
        names: list[str] = []

        def affected() -> list[str]:
            names.extend(dict.fromkeys(things() if callable(things) else things))
            return names

        def wrapped() -> T:
            before = {name: self._covering_jobs(name) for name in names}
            value = change()
            for name in names:
                self._refresh_dynamic_groups(name)
            now = self.clock.now()
            for name in names:
                after = self._covering_jobs(name)
                for job_id in sorted(after - before[name]):
                    latest = self.store.jobs.get_execution(job_id, name)
                    if latest is None or is_terminal(latest.status):
                        self.core.queue(job_id, name, now)
                for job_id in sorted(before[name] - after):
                    self.store.jobs.drop_from_rollout(job_id, [name])
                    latest = self.store.jobs.get_execution(job_id, name)
                    if latest is not None and not is_terminal(latest.status):
                        self.core.end_by_service(latest, ExecutionStatus.REMOVED, now)
            return value

        return self.core.watching(affected, wrapped)

    def _refresh_dynamic_groups(self, thing_name: str) -> None:
        """Re-evaluate every dynamic group's query for one thing."""
        thing = self.store.registry.get_thing(thing_name)
        dynamic = self.store.registry.dynamic_groups()
        if thing is None or not dynamic:
            return
        dynamic_names = {group.name for group in dynamic}
        member_of = set(self.store.registry.groups_of_thing(thing_name))
        facts = fleet_query.ThingFacts(
            name=thing.name,
            thing_type_name=thing.thing_type_name,
            attributes=thing.attributes,
            group_names=frozenset(member_of - dynamic_names),
        )
        for group in dynamic:
            assert group.query_string is not None
            matches = _query(group.query_string).matches(facts)
            if matches and group.name not in member_of:
                self.store.registry.add_member(group.name, thing_name)
            elif not matches and group.name in member_of:
                self.store.registry.remove_member(group.name, thing_name)

    # -- things -----------------------------------------------------------
    def create_thing(
        self, name: str, *, thing_type_name: str | None = None, attributes: dict[str, str] | None = None
    ) -> Outcome:
        """Create a thing; the same name with the same settings returns the existing one."""
        if thing_type_name is not None:
            raise ResourceNotFound(f"Thing type {thing_type_name} does not exist")
        attributes = _checked_attributes(dict(attributes or {}))

        def change() -> Thing:
            existing = self.store.registry.get_thing(name)
            if existing is not None:
                if existing.attributes != attributes or existing.thing_type_name != thing_type_name:
                    raise ResourceAlreadyExists(
                        f"Thing {name} already exists with different attributes",
                        extra={"resourceId": existing.thing_id, "resourceArn": self.arns.thing(name)},
                    )
                return existing
            thing = Thing(
                name=name, thing_id=str(uuid.uuid4()), attributes=attributes, created_at=self.clock.now()
            )
            self.store.registry.insert_thing(thing)
            return thing

        return self._membership_change([name], change)

    def update_thing(
        self,
        name: str,
        *,
        attributes: dict[str, str] | None,
        merge: bool,
        thing_type_name: str | None,
        remove_thing_type: bool,
        expected_version: int | None,
    ) -> Outcome:
        """UpdateThing: replace or merge attributes (an empty value deletes a key when merging)."""
        if thing_type_name is not None:
            raise ResourceNotFound(f"Thing type {thing_type_name} does not exist")
        if remove_thing_type and thing_type_name is not None:
            raise InvalidRequest("Give either thingTypeName or removeThingType, not both")

        def change() -> Thing:
            thing = self.store.registry.get_thing(name)
            if thing is None:
                raise ResourceNotFound(f"Thing {name} does not exist")
            _check_version(f"Thing {name}", thing.version, expected_version)
            new_attributes = dict(thing.attributes)
            if attributes is not None:
                new_attributes = _merged(thing.attributes, attributes) if merge else dict(attributes)
            updated = thing.model_copy(
                update={"attributes": _checked_attributes(new_attributes), "version": thing.version + 1}
            )
            self.store.registry.save_thing(updated)
            return updated

        return self._membership_change([name], change)

    def delete_thing(self, name: str, *, expected_version: int | None) -> Outcome:
        """DeleteThing: succeeds for unknown things; pending executions become REMOVED."""

        def change() -> bool:
            thing = self.store.registry.get_thing(name)
            if thing is None:
                return False
            _check_version(f"Thing {name}", thing.version, expected_version)
            if self.store.certificates.principals_of(name):
                # As on AWS: a certificate must not go on standing for a thing that is gone.
                raise InvalidRequest(
                    f"Cannot delete. Thing {name} is still attached to one or more principals"
                )
            now = self.clock.now()
            for execution in self.store.jobs.pending_executions(name):
                self.core.end_by_service(execution, ExecutionStatus.REMOVED, now)
                self.lifecycle.complete_if_done(execution.job_id, now)
            self.store.registry.delete_thing(name)
            return True

        return self.core.watching([name], change)

    # -- static membership ------------------------------------------------
    def add_thing_to_group(
        self, group_name: str, thing_name: str, *, override_dynamic: bool = False
    ) -> Outcome:
        group = self._static_group(group_name, "add things to")

        def change() -> bool:
            member_of = self.store.registry.groups_of_thing(thing_name)
            if group_name in member_of:
                return False
            roots = {self.store.registry.ancestor_groups(name)[-1] for name in member_of}
            if self.store.registry.ancestor_groups(group.name)[-1] in roots:
                raise InvalidRequest(
                    f"Thing {thing_name} is already in a group of the hierarchy of {group_name};"
                    " a thing can be in only one group of a hierarchy"
                )
            if len(member_of) >= MAX_GROUPS_PER_THING:
                dynamic = [name for name in member_of if self._is_dynamic(name)]
                if not (override_dynamic and dynamic):
                    raise InvalidRequest(
                        f"Thing {thing_name} is already in {MAX_GROUPS_PER_THING} thing groups, the maximum"
                    )
                self.store.registry.remove_member(dynamic[-1], thing_name)
            return self.store.registry.add_member(group_name, thing_name)

        return self._membership_change([thing_name], change)

    def remove_thing_from_group(self, group_name: str, thing_name: str) -> Outcome:
        self._static_group(group_name, "remove things from")
        return self._membership_change(
            [thing_name], lambda: self.store.registry.remove_member(group_name, thing_name)
        )

    def delete_group(self, name: str, *, expected_version: int | None) -> Outcome:
        """DeleteThingGroup: succeeds for unknown groups; refuses groups with children."""
        group = self.store.registry.get_group(name)
        if group is None:
            return Outcome(False)
        if group.is_dynamic:
            raise InvalidRequest(f"Thing group {name} is dynamic; delete it with DeleteDynamicThingGroup")
        return self._delete_group(group, expected_version)

    def _delete_group(self, group: ThingGroup, expected_version: int | None) -> Outcome:
        def change() -> bool:
            _check_version(f"Thing group {group.name}", group.version, expected_version)
            if self.store.registry.child_groups(group.name):
                raise InvalidRequest(f"Thing group {group.name} has child groups; delete them first")
            self.store.registry.delete_group(group.name)
            return True

        return self._membership_change(lambda: self.store.registry.group_things([group.name]), change)

    # -- dynamic groups ---------------------------------------------------
    def create_dynamic_group(
        self,
        name: str,
        *,
        query_string: str,
        query_version: str | None,
        index_name: str | None,
        description: str | None,
        attributes: dict[str, str] | None,
    ) -> Outcome:
        _query(query_string)
        _check_index(index_name)

        def change() -> ThingGroup:
            if self.store.registry.get_group(name) is not None:
                raise ResourceAlreadyExists(
                    f"Thing group {name} already exists",
                    extra={"resourceArn": self.arns.thing_group(name)},
                )
            group = ThingGroup(
                name=name,
                group_id=str(uuid.uuid4()),
                description=description,
                attributes=dict(attributes or {}),
                created_at=self.clock.now(),
                query_string=query_string,
                query_version=query_version or DEFAULT_QUERY_VERSION,
                index_name=FLEET_INDEX,
            )
            self.store.registry.insert_group(group)
            return group

        return self._membership_change(self.store.registry.all_thing_names, change)

    def update_dynamic_group(
        self,
        name: str,
        *,
        query_string: str | None,
        query_version: str | None,
        index_name: str | None,
        properties: dict[str, Any],
        expected_version: int | None,
    ) -> Outcome:
        if query_string is not None:
            _query(query_string)
        _check_index(index_name)

        def change() -> ThingGroup:
            group = self.store.registry.get_group(name)
            if group is None or not group.is_dynamic:
                raise ResourceNotFound(f"Dynamic thing group {name} does not exist")
            _check_version(f"Thing group {name}", group.version, expected_version)
            updated = apply_group_properties(group, properties).model_copy(
                update={
                    "query_string": query_string or group.query_string,
                    "query_version": query_version or group.query_version,
                    "version": group.version + 1,
                }
            )
            self.store.registry.save_group(updated)
            return updated

        return self._membership_change(self.store.registry.all_thing_names, change)

    def delete_dynamic_group(self, name: str, *, expected_version: int | None) -> Outcome:
        group = self.store.registry.get_group(name)
        if group is None:
            return Outcome(False)
        if not group.is_dynamic:
            raise InvalidRequest(f"Thing group {name} is static; delete it with DeleteThingGroup")
        return self._delete_group(group, expected_version)

    # -- helpers ----------------------------------------------------------
    def _static_group(self, name: str, action: str) -> ThingGroup:
        group = self.store.registry.get_group(name)
        if group is None:
            raise ResourceNotFound(f"Thing group {name} does not exist")
        if group.is_dynamic:
            raise InvalidRequest(f"Thing group {name} is dynamic; you cannot {action} it directly")
        return group

    def _is_dynamic(self, name: str) -> bool:
        group = self.store.registry.get_group(name)
        return group is not None and group.is_dynamic


def apply_group_properties(group: ThingGroup, properties: dict[str, Any]) -> ThingGroup:
    """Apply ``thingGroupProperties`` (description; attributes replaced or merged)."""
    payload = properties.get("attributePayload")
    attributes = dict(group.attributes)
    if payload is not None:
        given = payload.get("attributes") or {}
        attributes = _merged(group.attributes, given) if payload.get("merge") else dict(given)
    description = properties.get("thingGroupDescription", group.description)
    return group.model_copy(update={"description": description, "attributes": attributes})


def _merged(current: dict[str, str], changes: dict[str, str]) -> dict[str, str]:
    merged = dict(current)
    for key, value in changes.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _checked_attributes(attributes: dict[str, str]) -> dict[str, str]:
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidRequest(
            f"A thing without a thing type can have at most {MAX_ATTRIBUTES} attributes,"
            f" not {len(attributes)}"
        )
    return attributes


def _check_version(subject: str, current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise VersionConflict(f"{subject} is at version {current}, not {expected}")


def _check_index(index_name: str | None) -> None:
    if index_name is not None and index_name != FLEET_INDEX:
        raise ResourceNotFound(f"Index {index_name} does not exist; this server has only {FLEET_INDEX}")
