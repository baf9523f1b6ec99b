"""Static thing groups: create, describe, update, delete, list, membership."""

import datetime

from ._support import fails_with, group_arn, thing_arn


def _names(groups):
    return [group["groupName"] for group in groups]


def test_create_and_describe_a_hierarchy(iot, unique):
    root = iot.create_thing_group(
        thingGroupName=f"{unique}-root",
        thingGroupProperties={
            "thingGroupDescription": "top level",
            "attributePayload": {"attributes": {"site": "berlin"}},
        },
    )
    assert root["thingGroupName"] == f"{unique}-root"
    assert root["thingGroupArn"] == group_arn(f"{unique}-root")
    assert root["thingGroupId"]
    iot.create_thing_group(thingGroupName=f"{unique}-mid", parentGroupName=f"{unique}-root")
    leaf = iot.create_thing_group(thingGroupName=f"{unique}-leaf", parentGroupName=f"{unique}-mid")

    described = iot.describe_thing_group(thingGroupName=f"{unique}-root")
    assert described["thingGroupId"] == root["thingGroupId"]
    assert described["thingGroupArn"] == root["thingGroupArn"]
    assert described["version"] == 1
    assert described["thingGroupProperties"] == {
        "thingGroupDescription": "top level",
        "attributePayload": {"attributes": {"site": "berlin"}},
    }
    assert isinstance(described["thingGroupMetadata"]["creationDate"], datetime.datetime)
    assert "parentGroupName" not in described["thingGroupMetadata"]
    assert "queryString" not in described

    described = iot.describe_thing_group(thingGroupName=f"{unique}-leaf")
    assert described["thingGroupId"] == leaf["thingGroupId"]
    assert described["thingGroupMetadata"]["parentGroupName"] == f"{unique}-mid"
    assert described["thingGroupMetadata"]["rootToParentThingGroups"] == [
        {"groupName": f"{unique}-root", "groupArn": group_arn(f"{unique}-root")},
        {"groupName": f"{unique}-mid", "groupArn": group_arn(f"{unique}-mid")},
    ]


def test_describe_unknown_group(iot, unique):
    with fails_with(iot, "ResourceNotFoundException", 404, f"Thing group {unique}-ghost does not exist"):
        iot.describe_thing_group(thingGroupName=f"{unique}-ghost")


def test_parent_must_exist(iot, unique):
    with fails_with(
        iot, "ResourceNotFoundException", 404, f"Parent thing group {unique}-ghost does not exist"
    ):
        iot.create_thing_group(thingGroupName=f"{unique}-orphan", parentGroupName=f"{unique}-ghost")
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_thing_group(thingGroupName=f"{unique}-orphan")


def test_create_thing_group_is_idempotent_for_the_same_properties(iot, unique):
    properties = {"thingGroupDescription": "d1", "attributePayload": {"attributes": {"k": "v"}}}
    iot.create_thing_group(thingGroupName=f"{unique}-p")
    first = iot.create_thing_group(
        thingGroupName=f"{unique}-g", parentGroupName=f"{unique}-p", thingGroupProperties=properties
    )
    again = iot.create_thing_group(
        thingGroupName=f"{unique}-g", parentGroupName=f"{unique}-p", thingGroupProperties=properties
    )
    assert again["thingGroupId"] == first["thingGroupId"]
    assert again["thingGroupArn"] == first["thingGroupArn"]

    with fails_with(iot, "ResourceAlreadyExistsException", 409):
        iot.create_thing_group(
            thingGroupName=f"{unique}-g",
            parentGroupName=f"{unique}-p",
            thingGroupProperties={**properties, "thingGroupDescription": "d2"},
        )
    with fails_with(iot, "ResourceAlreadyExistsException", 409):
        iot.create_thing_group(thingGroupName=f"{unique}-g", thingGroupProperties=properties)
    described = iot.describe_thing_group(thingGroupName=f"{unique}-g")
    assert described["thingGroupProperties"]["thingGroupDescription"] == "d1"
    assert described["version"] == 1


def test_update_thing_group_returns_the_new_version(iot, unique):
    name = f"{unique}-g"
    iot.create_thing_group(thingGroupName=name, thingGroupProperties={"thingGroupDescription": "old"})
    updated = iot.update_thing_group(
        thingGroupName=name,
        thingGroupProperties={
            "thingGroupDescription": "new",
            "attributePayload": {"attributes": {"a": "1", "b": "2"}},
        },
    )
    assert updated["version"] == 2
    described = iot.describe_thing_group(thingGroupName=name)
    assert described["version"] == 2
    assert described["thingGroupProperties"] == {
        "thingGroupDescription": "new",
        "attributePayload": {"attributes": {"a": "1", "b": "2"}},
    }

    merged = iot.update_thing_group(
        thingGroupName=name,
        thingGroupProperties={"attributePayload": {"attributes": {"a": "", "c": "3"}, "merge": True}},
        expectedVersion=2,
    )
    assert merged["version"] == 3
    assert iot.describe_thing_group(thingGroupName=name)["thingGroupProperties"]["attributePayload"] == {
        "attributes": {"b": "2", "c": "3"}
    }

    with fails_with(iot, "VersionConflictException", 409, f"Thing group {name} is at version 3, not 2"):
        iot.update_thing_group(
            thingGroupName=name, thingGroupProperties={"thingGroupDescription": "x"}, expectedVersion=2
        )
    assert iot.describe_thing_group(thingGroupName=name)["version"] == 3

    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.update_thing_group(
            thingGroupName=f"{unique}-ghost", thingGroupProperties={"thingGroupDescription": "x"}
        )


def test_delete_thing_group(iot, unique):
    iot.create_thing_group(thingGroupName=f"{unique}-parent")
    iot.create_thing_group(thingGroupName=f"{unique}-child", parentGroupName=f"{unique}-parent")
    iot.create_thing(thingName=f"{unique}-t")
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-child", thingName=f"{unique}-t")

    with fails_with(
        iot,
        "InvalidRequestException",
        400,
        f"Thing group {unique}-parent has child groups; delete them first",
    ):
        iot.delete_thing_group(thingGroupName=f"{unique}-parent")
    with fails_with(iot, "VersionConflictException", 409):
        iot.delete_thing_group(thingGroupName=f"{unique}-child", expectedVersion=7)

    iot.delete_thing_group(thingGroupName=f"{unique}-child", expectedVersion=1)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_thing_group(thingGroupName=f"{unique}-child")
    # The member lost the membership, not its existence.
    assert iot.list_thing_groups_for_thing(thingName=f"{unique}-t")["thingGroups"] == []
    iot.describe_thing(thingName=f"{unique}-t")

    iot.delete_thing_group(thingGroupName=f"{unique}-parent")
    iot.delete_thing_group(thingGroupName=f"{unique}-parent")  # already gone: still succeeds
    iot.delete_thing_group(thingGroupName=f"{unique}-never-existed")


def test_delete_thing_group_refuses_a_dynamic_group(iot, unique):
    iot.create_dynamic_thing_group(thingGroupName=f"{unique}-dyn", queryString=f"thingName:{unique}-*")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.delete_thing_group(thingGroupName=f"{unique}-dyn")
    iot.describe_thing_group(thingGroupName=f"{unique}-dyn")


def test_list_thing_groups(iot, unique):
    # a -> (a1 -> a1x), a2 ; b
    iot.create_thing_group(thingGroupName=f"{unique}-b")
    iot.create_thing_group(thingGroupName=f"{unique}-a")
    iot.create_thing_group(thingGroupName=f"{unique}-a2", parentGroupName=f"{unique}-a")
    iot.create_thing_group(thingGroupName=f"{unique}-a1", parentGroupName=f"{unique}-a")
    iot.create_thing_group(thingGroupName=f"{unique}-a1x", parentGroupName=f"{unique}-a1")

    listed = iot.list_thing_groups(namePrefixFilter=unique)["thingGroups"]
    assert listed == [
        {"groupName": f"{unique}-{suffix}", "groupArn": group_arn(f"{unique}-{suffix}")}
        for suffix in ("a", "a1", "a1x", "a2", "b")
    ]
    everything = [
        group["groupName"]
        for page in iot.get_paginator("list_thing_groups").paginate()
        for group in page["thingGroups"]
    ]
    assert everything == sorted(everything)
    assert [name for name in everything if name.startswith(unique)] == _names(listed)

    assert _names(iot.list_thing_groups(parentGroup=f"{unique}-a")["thingGroups"]) == [
        f"{unique}-a1",
        f"{unique}-a2",
    ]
    assert _names(iot.list_thing_groups(parentGroup=f"{unique}-a", recursive=True)["thingGroups"]) == [
        f"{unique}-a1",
        f"{unique}-a1x",
        f"{unique}-a2",
    ]
    assert _names(
        iot.list_thing_groups(parentGroup=f"{unique}-a", recursive=True, namePrefixFilter=f"{unique}-a1")[
            "thingGroups"
        ]
    ) == [f"{unique}-a1", f"{unique}-a1x"]
    assert iot.list_thing_groups(parentGroup=f"{unique}-b")["thingGroups"] == []
    assert iot.list_thing_groups(namePrefixFilter=f"{unique}-zzz")["thingGroups"] == []

    with fails_with(iot, "ResourceNotFoundException", 404, f"Thing group {unique}-ghost does not exist"):
        iot.list_thing_groups(parentGroup=f"{unique}-ghost")


def test_add_and_remove_things(iot, unique):
    iot.create_thing_group(thingGroupName=f"{unique}-g")
    iot.create_thing(thingName=f"{unique}-t")
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g", thingName=f"{unique}-t")
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g", thingName=f"{unique}-t")  # no-op
    iot.add_thing_to_thing_group(
        thingGroupArn=group_arn(f"{unique}-g"), thingArn=thing_arn(f"{unique}-t")
    )  # by ARN: the same membership
    assert iot.list_things_in_thing_group(thingGroupName=f"{unique}-g")["things"] == [f"{unique}-t"]
    assert iot.list_thing_groups_for_thing(thingName=f"{unique}-t")["thingGroups"] == [
        {"groupName": f"{unique}-g", "groupArn": group_arn(f"{unique}-g")}
    ]

    iot.remove_thing_from_thing_group(thingGroupName=f"{unique}-g", thingName=f"{unique}-t")
    assert iot.list_things_in_thing_group(thingGroupName=f"{unique}-g")["things"] == []
    # Removing a non-member is a no-op.
    iot.remove_thing_from_thing_group(thingGroupName=f"{unique}-g", thingName=f"{unique}-t")
    iot.remove_thing_from_thing_group(
        thingGroupArn=group_arn(f"{unique}-g"), thingArn=thing_arn(f"{unique}-t")
    )
    assert iot.list_thing_groups_for_thing(thingName=f"{unique}-t")["thingGroups"] == []


def test_membership_errors(iot, unique):
    iot.create_thing_group(thingGroupName=f"{unique}-g")
    other = iot.create_thing_group(thingGroupName=f"{unique}-other")
    iot.create_thing(thingName=f"{unique}-t")
    with fails_with(iot, "ResourceNotFoundException", 404, f"Thing {unique}-ghost does not exist"):
        iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g", thingName=f"{unique}-ghost")
    with fails_with(iot, "ResourceNotFoundException", 404, f"Thing group {unique}-ghost does not exist"):
        iot.add_thing_to_thing_group(thingGroupName=f"{unique}-ghost", thingName=f"{unique}-t")
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.remove_thing_from_thing_group(thingGroupName=f"{unique}-ghost", thingName=f"{unique}-t")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.add_thing_to_thing_group(thingName=f"{unique}-t")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.add_thing_to_thing_group(
            thingGroupName=f"{unique}-g", thingGroupArn=other["thingGroupArn"], thingName=f"{unique}-t"
        )
    assert iot.list_thing_groups_for_thing(thingName=f"{unique}-t")["thingGroups"] == []


def test_a_dynamic_group_takes_no_manual_members(iot, unique):
    iot.create_thing(thingName=f"{unique}-t")
    iot.create_dynamic_thing_group(thingGroupName=f"{unique}-dyn", queryString=f"thingName:{unique}-x*")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.add_thing_to_thing_group(thingGroupName=f"{unique}-dyn", thingName=f"{unique}-t")
    assert iot.list_things_in_thing_group(thingGroupName=f"{unique}-dyn")["things"] == []


def test_one_group_per_hierarchy(iot, unique):
    iot.create_thing_group(thingGroupName=f"{unique}-parent")
    iot.create_thing_group(thingGroupName=f"{unique}-child", parentGroupName=f"{unique}-parent")
    iot.create_thing_group(thingGroupName=f"{unique}-sibling", parentGroupName=f"{unique}-parent")
    iot.create_thing(thingName=f"{unique}-t")
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-child", thingName=f"{unique}-t")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.add_thing_to_thing_group(thingGroupName=f"{unique}-parent", thingName=f"{unique}-t")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.add_thing_to_thing_group(thingGroupName=f"{unique}-sibling", thingName=f"{unique}-t")
    assert _names(iot.list_thing_groups_for_thing(thingName=f"{unique}-t")["thingGroups"]) == [
        f"{unique}-child"
    ]


def test_a_thing_is_in_at_most_ten_groups(iot, unique):
    iot.create_thing(thingName=f"{unique}-t")
    for i in range(11):
        iot.create_thing_group(thingGroupName=f"{unique}-g{i:02d}")
    for i in range(10):
        iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g{i:02d}", thingName=f"{unique}-t")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g10", thingName=f"{unique}-t")
    assert iot.list_things_in_thing_group(thingGroupName=f"{unique}-g10")["things"] == []
    # Adding to a group it is already in is still a no-op at the limit.
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g00", thingName=f"{unique}-t")
    assert len(iot.list_thing_groups_for_thing(thingName=f"{unique}-t")["thingGroups"]) == 10


def test_list_thing_groups_for_thing_names_direct_static_and_dynamic_memberships(iot, unique):
    iot.create_thing_group(thingGroupName=f"{unique}-parent")
    iot.create_thing_group(thingGroupName=f"{unique}-child", parentGroupName=f"{unique}-parent")
    iot.create_thing_group(thingGroupName=f"{unique}-other")
    iot.create_dynamic_thing_group(
        thingGroupName=f"{unique}-dyn", queryString=f"thingName:{unique}-* AND attributes.kind:probe"
    )
    iot.create_thing(thingName=f"{unique}-t", attributePayload={"attributes": {"kind": "probe"}})
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-child", thingName=f"{unique}-t")
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-other", thingName=f"{unique}-t")

    groups = iot.list_thing_groups_for_thing(thingName=f"{unique}-t")["thingGroups"]
    assert sorted(groups, key=lambda group: group["groupName"]) == [
        {"groupName": f"{unique}-{suffix}", "groupArn": group_arn(f"{unique}-{suffix}")}
        for suffix in ("child", "dyn", "other")
    ]
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.list_thing_groups_for_thing(thingName=f"{unique}-ghost")


def test_list_things_in_thing_group_recursively(iot, unique):
    iot.create_thing_group(thingGroupName=f"{unique}-root")
    iot.create_thing_group(thingGroupName=f"{unique}-kid", parentGroupName=f"{unique}-root")
    iot.create_thing_group(thingGroupName=f"{unique}-grandkid", parentGroupName=f"{unique}-kid")
    for thing, group in (("c", "root"), ("a", "kid"), ("b", "grandkid"), ("d", "grandkid")):
        iot.create_thing(thingName=f"{unique}-{thing}")
        iot.add_thing_to_thing_group(thingGroupName=f"{unique}-{group}", thingName=f"{unique}-{thing}")

    assert iot.list_things_in_thing_group(thingGroupName=f"{unique}-root")["things"] == [f"{unique}-c"]
    everything = iot.list_things_in_thing_group(thingGroupName=f"{unique}-root", recursive=True)["things"]
    assert sorted(everything) == [f"{unique}-{name}" for name in "abcd"]
    below_kid = iot.list_things_in_thing_group(thingGroupName=f"{unique}-kid", recursive=True)["things"]
    assert sorted(below_kid) == [f"{unique}-{name}" for name in "abd"]
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.list_things_in_thing_group(thingGroupName=f"{unique}-ghost")
