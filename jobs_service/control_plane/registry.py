"""Things and thing groups on the control plane."""

from __future__ import annotations

from typing import Any

from .. import http_payloads as wire
from ..models import ThingGroup
from ..pagination import decode_token, encode_token, page_size
from .base import Handler, HandlerBase, Params, page

__all__ = ["RegistryHandlers"]


class RegistryHandlers(HandlerBase):
    def handlers(self) -> dict[str, Handler]:
        """This family's operations, by their names in the AWS API model."""
        return {
            "CreateThing": self.create_thing,
            "DescribeThing": self.describe_thing,
            "ListThings": self.list_things,
            "UpdateThing": self.update_thing,
            "DeleteThing": self.delete_thing,
            "CreateThingGroup": self.create_thing_group,
            "DescribeThingGroup": self.describe_thing_group,
            "UpdateThingGroup": self.update_thing_group,
            "DeleteThingGroup": self.delete_thing_group,
            "ListThingGroups": self.list_thing_groups,
            "ListThingGroupsForThing": self.list_thing_groups_for_thing,
            "AddThingToThingGroup": self.add_thing_to_thing_group,
            "RemoveThingFromThingGroup": self.remove_thing_from_thing_group,
            "ListThingsInThingGroup": self.list_things_in_thing_group,
            "CreateDynamicThingGroup": self.create_dynamic_thing_group,
            "UpdateDynamicThingGroup": self.update_dynamic_thing_group,
            "DeleteDynamicThingGroup": self.delete_dynamic_thing_group,
        }

    # -- things -----------------------------------------------------------
    def create_thing(self, params: Params) -> dict[str, Any]:
        payload = params.get("attributePayload") or {}
        thing = self._sent(
            self.engine.membership.create_thing(
                params["thingName"],
                thing_type_name=params.get("thingTypeName"),
                attributes=payload.get("attributes"),
            )
        )
        return {"thingName": thing.name, "thingArn": self.arns.thing(thing.name), "thingId": thing.thing_id}

    def describe_thing(self, params: Params) -> dict[str, Any]:
        return wire.thing(self.registry.get_thing(params["thingName"]), self.arns)

    def list_things(self, params: Params) -> dict[str, Any]:
        if params.get("thingTypeName") is not None:
            # No thing types exist here, so no thing has one.
            return {"things": []}
        limit = page_size(params.get("maxResults"))
        name, value = params.get("attributeName"), params.get("attributeValue")
        prefix = bool(params.get("usePrefixAttributeValue"))
        after = decode_token(params.get("nextToken"), "ListThings", str)
        found: list[dict[str, Any]] = []
        more = False
        # Scan in name order until a page of matches is filled and one more match is seen.
        while not more:
            batch = self.registry.store.registry.list_things(after=after, limit=max(limit, 100))
            if not batch:
                break
            for thing in batch:
                if not _attribute_matches(thing.attributes, name, value, prefix):
                    continue
                if len(found) == limit:
                    more = True
                    break
                found.append(wire.thing_summary(thing, self.arns))
                after = thing.name
            else:
                after = batch[-1].name
        result: dict[str, Any] = {"things": found}
        if more:
            result["nextToken"] = encode_token("ListThings", found[-1]["thingName"])
        return result

    def update_thing(self, params: Params) -> None:
        payload = params.get("attributePayload")
        self._sent(
            self.engine.membership.update_thing(
                params["thingName"],
                attributes=None if payload is None else (payload.get("attributes") or {}),
                merge=bool(payload and payload.get("merge")),
                thing_type_name=params.get("thingTypeName"),
                remove_thing_type=bool(params.get("removeThingType")),
                expected_version=params.get("expectedVersion"),
            )
        )

    def delete_thing(self, params: Params) -> None:
        self._sent(
            self.engine.membership.delete_thing(
                params["thingName"], expected_version=params.get("expectedVersion")
            )
        )

    # -- groups -----------------------------------------------------------
    def create_thing_group(self, params: Params) -> dict[str, Any]:
        properties = params.get("thingGroupProperties") or {}
        group = self.registry.create_group(
            params["thingGroupName"],
            parent_name=params.get("parentGroupName"),
            description=properties.get("thingGroupDescription"),
            attributes=(properties.get("attributePayload") or {}).get("attributes"),
        )
        return self._group_reference(group)

    def _group_reference(self, group: ThingGroup) -> dict[str, Any]:
        return {
            "thingGroupName": group.name,
            "thingGroupArn": self.arns.thing_group(group.name),
            "thingGroupId": group.group_id,
        }

    def describe_thing_group(self, params: Params) -> dict[str, Any]:
        group = self.registry.get_group(params["thingGroupName"])
        ancestors = list(reversed(self.registry.store.registry.ancestor_groups(group.name)[1:]))
        return wire.thing_group(group, self.arns, ancestors)

    def update_thing_group(self, params: Params) -> dict[str, Any]:
        group = self.registry.update_group(
            params["thingGroupName"], params["thingGroupProperties"], params.get("expectedVersion")
        )
        return {"version": group.version}

    def delete_thing_group(self, params: Params) -> None:
        self._sent(
            self.engine.membership.delete_group(
                params["thingGroupName"], expected_version=params.get("expectedVersion")
            )
        )

    def list_thing_groups(self, params: Params) -> dict[str, Any]:
        parent = params.get("parentGroup")
        names: list[str] | None = None
        if parent is not None:
            self.registry.get_group(parent)
            if params.get("recursive"):
                names = [
                    name for name in self.registry.store.registry.descendant_groups(parent) if name != parent
                ]
            else:
                names = self.registry.store.registry.child_groups(parent)
        limit = page_size(params.get("maxResults"))
        groups = self.registry.store.registry.list_groups(
            names=names,
            prefix=params.get("namePrefixFilter"),
            after=decode_token(params.get("nextToken"), "ListThingGroups", str),
            limit=limit + 1,
        )
        return self._group_page("ListThingGroups", groups, params)

    def list_thing_groups_for_thing(self, params: Params) -> dict[str, Any]:
        thing = self.registry.get_thing(params["thingName"])
        limit = page_size(params.get("maxResults"))
        groups = self.registry.store.registry.list_groups(
            names=self.registry.store.registry.groups_of_thing(thing.name),
            prefix=None,
            after=decode_token(params.get("nextToken"), "ListThingGroupsForThing", str),
            limit=limit + 1,
        )
        return self._group_page("ListThingGroupsForThing", groups, params)

    def _group_page(self, operation: str, groups: list[ThingGroup], params: Params) -> dict[str, Any]:
        items, token = page(operation, groups, params, lambda group: group.name)
        result: dict[str, Any] = {
            "thingGroups": [{"groupName": g.name, "groupArn": self.arns.thing_group(g.name)} for g in items]
        }
        if token:
            result["nextToken"] = token
        return result

    def add_thing_to_thing_group(self, params: Params) -> None:
        group = self.registry.group_name_from(params.get("thingGroupName"), params.get("thingGroupArn"))
        thing = self.registry.thing_name_from(params.get("thingName"), params.get("thingArn"))
        self._sent(
            self.engine.membership.add_thing_to_group(
                group, thing, override_dynamic=bool(params.get("overrideDynamicGroups"))
            )
        )

    def remove_thing_from_thing_group(self, params: Params) -> None:
        group = self.registry.group_name_from(params.get("thingGroupName"), params.get("thingGroupArn"))
        thing = self.registry.thing_name_from(params.get("thingName"), params.get("thingArn"))
        self._sent(self.engine.membership.remove_thing_from_group(group, thing))

    def list_things_in_thing_group(self, params: Params) -> dict[str, Any]:
        names = self.registry.things_in_group(
            params["thingGroupName"],
            recursive=bool(params.get("recursive")),
            after=decode_token(params.get("nextToken"), "ListThingsInThingGroup", str),
            limit=page_size(params.get("maxResults")) + 1,
        )
        items, token = page("ListThingsInThingGroup", names, params, lambda name: name)
        result: dict[str, Any] = {"things": items}
        if token:
            result["nextToken"] = token
        return result

    # -- dynamic groups ---------------------------------------------------
    def create_dynamic_thing_group(self, params: Params) -> dict[str, Any]:
        properties = params.get("thingGroupProperties") or {}
        group = self._sent(
            self.engine.membership.create_dynamic_group(
                params["thingGroupName"],
                query_string=params["queryString"],
                query_version=params.get("queryVersion"),
                index_name=params.get("indexName"),
                description=properties.get("thingGroupDescription"),
                attributes=(properties.get("attributePayload") or {}).get("attributes"),
            )
        )
        return {
            **self._group_reference(group),
            "indexName": group.index_name,
            "queryString": group.query_string,
            "queryVersion": group.query_version,
        }

    def update_dynamic_thing_group(self, params: Params) -> dict[str, Any]:
        group = self._sent(
            self.engine.membership.update_dynamic_group(
                params["thingGroupName"],
                query_string=params.get("queryString"),
                query_version=params.get("queryVersion"),
                index_name=params.get("indexName"),
                properties=params["thingGroupProperties"],
                expected_version=params.get("expectedVersion"),
            )
        )
        return {"version": group.version}

    def delete_dynamic_thing_group(self, params: Params) -> None:
        self._sent(
            self.engine.membership.delete_dynamic_group(
                params["thingGroupName"], expected_version=params.get("expectedVersion")
            )
        )


def _attribute_matches(attributes: dict[str, str], name: str | None, value: str | None, prefix: bool) -> bool:
    if name is None:
        return True
    if name not in attributes:
        return False
    if value is None:
        return True
    return attributes[name].startswith(value) if prefix else attributes[name] == value
