"""Dynamic thing groups: fleet queries, membership that follows the registry, and their errors."""

import uuid

import pytest

from ._support import fails_with, group_arn


def _members(iot, group):
    """The group's things, sorted (ListThingsInThingGroup promises no order)."""
    return sorted(iot.list_things_in_thing_group(thingGroupName=group)["things"])


def test_create_and_describe(iot, unique):
    query = f"thingName:{unique}-* AND attributes.color:red"
    created = iot.create_dynamic_thing_group(
        thingGroupName=f"{unique}-red",
        queryString=query,
        thingGroupProperties={"thingGroupDescription": "red ones"},
    )
    assert created["thingGroupName"] == f"{unique}-red"
    assert created["thingGroupArn"] == group_arn(f"{unique}-red")
    assert created["thingGroupId"]
    assert (created["indexName"], created["queryString"], created["queryVersion"]) == (
        "AWS_Things",
        query,
        "2017-09-30",
    )

    described = iot.describe_thing_group(thingGroupName=f"{unique}-red")
    assert described["thingGroupId"] == created["thingGroupId"]
    assert (
        described["indexName"],
        described["queryString"],
        described["queryVersion"],
        described["status"],
        described["version"],
    ) == ("AWS_Things", query, "2017-09-30", "ACTIVE", 1)
    assert described["thingGroupProperties"] == {"thingGroupDescription": "red ones"}

    with fails_with(iot, "ResourceAlreadyExistsException", 409):
        iot.create_dynamic_thing_group(thingGroupName=f"{unique}-red", queryString=f"thingName:{unique}-x")
    with fails_with(iot, "ResourceAlreadyExistsException", 409):
        iot.create_thing_group(thingGroupName=f"{unique}-red")


def test_explicit_index_name_and_query_version(iot, unique):
    created = iot.create_dynamic_thing_group(
        thingGroupName=f"{unique}-g",
        indexName="AWS_Things",
        queryVersion="2017-09-30",
        queryString=f"thingName:{unique}-*",
    )
    assert created["indexName"] == "AWS_Things"


@pytest.fixture(scope="module")
def sensors(server):
    """Four things for the query tests, named ``<prefix>-sensor-1`` and so on; returns the prefix."""
    iot = server.iot()
    prefix = f"q{uuid.uuid4().hex[:8]}"
    for name, color, temp in (
        ("sensor-1", "red", "15"),
        ("sensor-2", "red", "60"),
        ("sensor-3", "blue", "20"),
        ("valve-1", "green", "70"),
    ):
        iot.create_thing(
            thingName=f"{prefix}-{name}", attributePayload={"attributes": {"color": color, "temp": temp}}
        )
    return prefix


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("attributes.color:red", ["sensor-1", "sensor-2"]),
        ("thingName:{p}-sensor-*", ["sensor-1", "sensor-2", "sensor-3"]),
        ("attributes.temp>50", ["sensor-2", "valve-1"]),
        ("attributes.temp:[10 TO 20]", ["sensor-1", "sensor-3"]),
        ("attributes.color:red AND attributes.temp<50", ["sensor-1"]),
        ("attributes.color:blue OR attributes.temp>=70", ["sensor-3", "valve-1"]),
        ("NOT attributes.color:red", ["sensor-3", "valve-1"]),
        (
            "(attributes.color:red OR attributes.color:blue) AND NOT attributes.temp>50",
            ["sensor-1", "sensor-3"],
        ),
    ],
)
def test_query_language(iot, unique, sensors, query, expected):
    # Scoped to the fixture's things, since every thing on the server is evaluated.
    scoped = f"thingName:{sensors}-* AND ({query.format(p=sensors)})"
    iot.create_dynamic_thing_group(thingGroupName=f"{unique}-dyn", queryString=scoped)
    assert _members(iot, f"{unique}-dyn") == [f"{sensors}-{name}" for name in expected]


def test_membership_follows_the_registry(iot, unique):
    group = f"{unique}-hot"
    iot.create_thing(thingName=f"{unique}-early", attributePayload={"attributes": {"temp": "80"}})
    iot.create_dynamic_thing_group(
        thingGroupName=group, queryString=f"thingName:{unique}-* AND attributes.temp>50"
    )
    assert _members(iot, group) == [f"{unique}-early"]

    iot.create_thing(thingName=f"{unique}-late", attributePayload={"attributes": {"temp": "90"}})
    iot.create_thing(thingName=f"{unique}-cold", attributePayload={"attributes": {"temp": "10"}})
    assert _members(iot, group) == [f"{unique}-early", f"{unique}-late"]

    iot.update_thing(thingName=f"{unique}-cold", attributePayload={"attributes": {"temp": "51"}})
    iot.update_thing(thingName=f"{unique}-early", attributePayload={"attributes": {"temp": "50"}})
    assert _members(iot, group) == [f"{unique}-cold", f"{unique}-late"]
    assert [
        g["groupName"] for g in iot.list_thing_groups_for_thing(thingName=f"{unique}-cold")["thingGroups"]
    ] == [group]
    assert iot.list_thing_groups_for_thing(thingName=f"{unique}-early")["thingGroups"] == []

    iot.delete_thing(thingName=f"{unique}-late")
    assert _members(iot, group) == [f"{unique}-cold"]


def test_a_query_on_static_group_names_follows_static_membership(iot, unique):
    iot.create_thing_group(thingGroupName=f"{unique}-static")
    iot.create_thing(thingName=f"{unique}-t")
    iot.create_dynamic_thing_group(
        thingGroupName=f"{unique}-dyn", queryString=f"thingGroupNames:{unique}-static"
    )
    assert _members(iot, f"{unique}-dyn") == []
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-static", thingName=f"{unique}-t")
    assert _members(iot, f"{unique}-dyn") == [f"{unique}-t"]
    iot.remove_thing_from_thing_group(thingGroupName=f"{unique}-static", thingName=f"{unique}-t")
    assert _members(iot, f"{unique}-dyn") == []


@pytest.mark.parametrize(
    "query",
    [
        "attributes.color:",
        "attributes.temp:[10 TO",
        "(attributes.color:red",
        "attributes.color:red)",
        "attributes.color:red AND",
        "attributes.temp>warm",
    ],
)
def test_unparsable_query(iot, unique, query):
    with fails_with(iot, "InvalidQueryException", 400):
        iot.create_dynamic_thing_group(thingGroupName=f"{unique}-bad", queryString=query)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_thing_group(thingGroupName=f"{unique}-bad")


def test_unknown_index(iot, unique):
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.create_dynamic_thing_group(
            thingGroupName=f"{unique}-g", indexName="My_Index", queryString=f"thingName:{unique}-*"
        )
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_thing_group(thingGroupName=f"{unique}-g")
    iot.create_dynamic_thing_group(thingGroupName=f"{unique}-g", queryString=f"thingName:{unique}-*")
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.update_dynamic_thing_group(
            thingGroupName=f"{unique}-g", thingGroupProperties={}, indexName="My_Index"
        )


def test_update_dynamic_group_reevaluates(iot, unique):
    group = f"{unique}-dyn"
    iot.create_thing(thingName=f"{unique}-a", attributePayload={"attributes": {"zone": "1"}})
    iot.create_thing(thingName=f"{unique}-b", attributePayload={"attributes": {"zone": "2"}})
    iot.create_dynamic_thing_group(
        thingGroupName=group, queryString=f"thingName:{unique}-* AND attributes.zone:1"
    )
    assert _members(iot, group) == [f"{unique}-a"]

    query = f"thingName:{unique}-* AND attributes.zone:2"
    updated = iot.update_dynamic_thing_group(
        thingGroupName=group, thingGroupProperties={"thingGroupDescription": "zone two"}, queryString=query
    )
    assert updated["version"] == 2
    assert _members(iot, group) == [f"{unique}-b"]
    described = iot.describe_thing_group(thingGroupName=group)
    assert (described["queryString"], described["version"]) == (query, 2)
    assert described["thingGroupProperties"]["thingGroupDescription"] == "zone two"

    with fails_with(iot, "VersionConflictException", 409):
        iot.update_dynamic_thing_group(
            thingGroupName=group,
            thingGroupProperties={},
            queryString=f"thingName:{unique}-*",
            expectedVersion=1,
        )
    with fails_with(iot, "InvalidQueryException", 400):
        iot.update_dynamic_thing_group(thingGroupName=group, thingGroupProperties={}, queryString="(((")
    assert _members(iot, group) == [f"{unique}-b"]

    assert (
        iot.update_dynamic_thing_group(
            thingGroupName=group,
            thingGroupProperties={},
            queryString=f"thingName:{unique}-*",
            expectedVersion=2,
        )["version"]
        == 3
    )
    assert _members(iot, group) == [f"{unique}-a", f"{unique}-b"]


def test_update_unknown_dynamic_group(iot, unique):
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.update_dynamic_thing_group(
            thingGroupName=f"{unique}-ghost", thingGroupProperties={}, queryString=f"thingName:{unique}-*"
        )


def test_delete_dynamic_group(iot, unique):
    iot.create_thing(thingName=f"{unique}-t")
    iot.create_dynamic_thing_group(thingGroupName=f"{unique}-dyn", queryString=f"thingName:{unique}-*")
    iot.create_thing_group(thingGroupName=f"{unique}-static")
    with fails_with(
        iot,
        "InvalidRequestException",
        400,
        f"Thing group {unique}-static is static; delete it with DeleteThingGroup",
    ):
        iot.delete_dynamic_thing_group(thingGroupName=f"{unique}-static")
    iot.describe_thing_group(thingGroupName=f"{unique}-static")

    with fails_with(iot, "VersionConflictException", 409):
        iot.delete_dynamic_thing_group(thingGroupName=f"{unique}-dyn", expectedVersion=9)
    iot.delete_dynamic_thing_group(thingGroupName=f"{unique}-dyn")
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_thing_group(thingGroupName=f"{unique}-dyn")
    assert iot.list_thing_groups_for_thing(thingName=f"{unique}-t")["thingGroups"] == []
    # Like DeleteThingGroup, deleting a group that does not exist succeeds.
    iot.delete_dynamic_thing_group(thingGroupName=f"{unique}-dyn")


def test_a_dynamic_group_cannot_be_a_parent(iot, unique):
    iot.create_dynamic_thing_group(thingGroupName=f"{unique}-dyn", queryString=f"thingName:{unique}-*")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_thing_group(thingGroupName=f"{unique}-child", parentGroupName=f"{unique}-dyn")
