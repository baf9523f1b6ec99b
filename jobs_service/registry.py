"""Things and thing groups: the registry jobs are targeted at."""

from __future__ import annotations

import uuid

from .arns import Arns
from .clock import Clock
from .errors import InvalidRequest, ResourceAlreadyExists, ResourceNotFound
from .models import Thing, ThingGroup
from .store import Store

__all__ = ["Registry"]


class Registry:
    def __init__(self, store: Store, clock: Clock, arns: Arns) -> None:
        self.store = store
        self.clock = clock
        self.arns = arns

    # -- things -----------------------------------------------------------
    def create_thing(
        self, name: str, *, thing_type_name: str | None = None, attributes: dict[str, str] | None = None
    ) -> Thing:
        """Create a thing; the same name with the same settings returns the existing one."""
        if thing_type_name is not None:
            raise ResourceNotFound(f"Thing type {thing_type_name} does not exist")
        attributes = dict(attributes or {})
        with self.store.atomic():
            existing = self.store.get_thing(name)
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
            self.store.insert_thing(thing)
            return thing

    def get_thing(self, name: str) -> Thing:
        thing = self.store.get_thing(name)
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
            existing = self.store.get_group(name)
            if existing is not None:
                same = (existing.parent_name, existing.description, existing.attributes) == (
                    parent_name,
                    description,
                    attributes,
                )
                if not same:
                    raise ResourceAlreadyExists(
                        f"Thing group {name} already exists with different properties",
                        extra={"resourceId": existing.group_id, "resourceArn": self.arns.thing_group(name)},
                    )
                return existing
            if parent_name is not None and self.store.get_group(parent_name) is None:
                raise ResourceNotFound(f"Parent thing group {parent_name} does not exist")
            group = ThingGroup(
                name=name,
                group_id=str(uuid.uuid4()),
                parent_name=parent_name,
                description=description,
                attributes=attributes,
                created_at=self.clock.now(),
            )
            self.store.insert_group(group)
            return group

    def get_group(self, name: str) -> ThingGroup:
        group = self.store.get_group(name)
        if group is None:
            raise ResourceNotFound(f"Thing group {name} does not exist")
        return group

    def group_name_from(self, name: str | None, arn: str | None) -> str:
        """A group named by name or ARN (or both, if they agree); it must exist."""
        return self._name_from("thinggroup", name, arn)

    def things_in_group(self, name: str, *, recursive: bool, after: str | None, limit: int) -> list[str]:
        self.get_group(name)
        groups = self.store.descendant_groups(name) if recursive else [name]
        return self.store.group_things(groups, after=after, limit=limit)

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
