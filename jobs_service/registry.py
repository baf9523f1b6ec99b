"""Things and thing groups: look-ups and the group changes that move no thing.

Changes that can move things in or out of job targets (creating or deleting
things, membership, dynamic groups) live in ``engine.membership``.
"""

from __future__ import annotations

import uuid
from typing import Any

from .arns import Arns
from .clock import Clock
from .engine.membership import apply_group_properties
from .errors import InvalidRequest, ResourceAlreadyExists, ResourceNotFound, VersionConflict
from .models import Thing, ThingGroup
from .store import Store

__all__ = ["Registry"]


class Registry:
    def __init__(self, store: Store, clock: Clock, arns: Arns) -> None:
        self.store = store
        self.clock = clock
        self.arns = arns

    # -- things -----------------------------------------------------------
    def get_thing(self, name: str) -> Thing:
        thing = self.store.registry.get_thing(name)
        if thing is None:
            raise ResourceNotFound(f"Thing {name} does not exist")
        return thing

    def thing_name_from(self, name: str | None, arn: str | None) -> str:
        """A thing named by name or ARN (or both, if they agree); it must exist."""
        return self._name_from("thing", name, arn)

    # -- groups -----------------------------------------------------------
    def create_group(
        self,
        name: str,
        *,
        parent_name: str | None = None,
        description: str | None = None,
        attributes: dict[str, str] | None = None,
    ) -> ThingGroup:
        """Create a static group; the same name with the same settings returns the existing one."""
        attributes = dict(attributes or {})
        with self.store.atomic():
            existing = self.store.registry.get_group(name)
            if existing is not None:
                same = not existing.is_dynamic and (
                    existing.parent_name,
                    existing.description,
                    existing.attributes,
                ) == (parent_name, description, attributes)
                if not same:
                    raise ResourceAlreadyExists(
                        f"Thing group {name} already exists with different properties",
                        extra={"resourceId": existing.group_id, "resourceArn": self.arns.thing_group(name)},
                    )
                return existing
            if parent_name is not None:
                parent = self.store.registry.get_group(parent_name)
                if parent is None:
                    raise ResourceNotFound(f"Parent thing group {parent_name} does not exist")
                if parent.is_dynamic:
                    raise InvalidRequest(
                        f"Thing group {parent_name} is dynamic; dynamic groups cannot have children"
                    )
            group = ThingGroup(
                name=name,
                group_id=str(uuid.uuid4()),
                parent_name=parent_name,
                description=description,
                attributes=attributes,
                created_at=self.clock.now(),
            )
            self.store.registry.insert_group(group)
            return group

    def get_group(self, name: str) -> ThingGroup:
        group = self.store.registry.get_group(name)
        if group is None:
            raise ResourceNotFound(f"Thing group {name} does not exist")
        return group

    def update_group(self, name: str, properties: dict[str, Any], expected_version: int | None) -> ThingGroup:
        """UpdateThingGroup: description and attributes; the version moves by one."""
        with self.store.atomic():
            group = self.get_group(name)
            if expected_version is not None and expected_version != group.version:
                raise VersionConflict(
                    f"Thing group {name} is at version {group.version}, not {expected_version}"
                )
            updated = apply_group_properties(group, properties).model_copy(
                update={"version": group.version + 1}
            )
            self.store.registry.save_group(updated)
            return updated

    def group_name_from(self, name: str | None, arn: str | None) -> str:
        """A group named by name or ARN (or both, if they agree); it must exist."""
        return self._name_from("thinggroup", name, arn)

    def things_in_group(self, name: str, *, recursive: bool, after: str | None, limit: int) -> list[str]:
        self.get_group(name)
        groups = self.store.registry.descendant_groups(name) if recursive else [name]
        return self.store.registry.group_things(groups, after=after, limit=limit)

    def _name_from(self, kind: str, name: str | None, arn: str | None) -> str:
        label = "thing" if kind == "thing" else "thing group"
        if name is None and arn is None:
            raise InvalidRequest(f"Give the {label} by name or by ARN")
        if arn is not None:
            arn_kind, arn_name = self.arns.parse_target(arn)
            if arn_kind != kind:
                raise InvalidRequest(f"{arn} is not a {label} ARN")
            if name is not None and name != arn_name:
                raise InvalidRequest(f"The {label} name {name} does not match the ARN {arn}")
            name = arn_name
        assert name is not None
        if kind == "thing":
            self.get_thing(name)
        else:
            self.get_group(name)
        return name
