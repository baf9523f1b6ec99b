"""Things: CreateThing, DescribeThing, ListThings, UpdateThing, DeleteThing."""

from ._support import (
    create_things,
    device,
    executions_by_thing,
    fails_with,
    process_details,
    thing_arn,
)


def test_create_thing_is_idempotent_for_the_same_attributes(iot, unique):
    name = f"{unique}-a"
    created = iot.create_thing(thingName=name, attributePayload={"attributes": {"model": "x1"}})
    assert created["thingName"] == name
    assert created["thingArn"] == thing_arn(name)
    assert created["thingId"]

    again = iot.create_thing(thingName=name, attributePayload={"attributes": {"model": "x1"}})
    assert (again["thingName"], again["thingArn"], again["thingId"]) == (
        name,
        created["thingArn"],
        created["thingId"],
    )

    with fails_with(iot, "ResourceAlreadyExistsException", 409):
        iot.create_thing(thingName=name, attributePayload={"attributes": {"model": "x2"}})
    with fails_with(iot, "ResourceAlreadyExistsException", 409):
        iot.create_thing(thingName=name)
    # The refused attempts changed nothing.
    assert iot.describe_thing(thingName=name)["attributes"] == {"model": "x1"}


def test_create_thing_without_attributes_twice_returns_the_same_thing(iot, unique):
    first = iot.create_thing(thingName=f"{unique}-plain")
    assert iot.create_thing(thingName=f"{unique}-plain")["thingId"] == first["thingId"]
    assert (
        iot.create_thing(thingName=f"{unique}-plain", attributePayload={"attributes": {}})["thingId"]
        == (first["thingId"])
    )


def test_describe_thing(iot, unique):
    created = iot.create_thing(thingName=f"{unique}-d", attributePayload={"attributes": {"a": "1", "b": "2"}})
    described = iot.describe_thing(thingName=f"{unique}-d")
    described.pop("ResponseMetadata")
    assert described == {
        "defaultClientId": f"{unique}-d",
        "thingName": f"{unique}-d",
        "thingId": created["thingId"],
        "thingArn": thing_arn(f"{unique}-d"),
        "attributes": {"a": "1", "b": "2"},
        "version": 1,
    }
    bare = iot.create_thing(thingName=f"{unique}-bare")
    assert iot.describe_thing(thingName=f"{unique}-bare")["attributes"] == {}
    assert bare["thingArn"] == thing_arn(f"{unique}-bare")


def test_describe_unknown_thing(iot, unique):
    with fails_with(iot, "ResourceNotFoundException", 404, f"Thing {unique}-ghost does not exist"):
        iot.describe_thing(thingName=f"{unique}-ghost")


def test_a_thing_has_at_most_three_attributes(iot, unique):
    three = {"a": "1", "b": "2", "c": "3"}
    iot.create_thing(thingName=f"{unique}-3", attributePayload={"attributes": three})
    with fails_with(
        iot,
        "InvalidRequestException",
        400,
        "A thing without a thing type can have at most 3 attributes, not 4",
    ):
        iot.create_thing(thingName=f"{unique}-4", attributePayload={"attributes": {**three, "d": "4"}})
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_thing(thingName=f"{unique}-4")
    # A merge that would make a fourth attribute is refused as well.
    with fails_with(iot, "InvalidRequestException", 400):
        iot.update_thing(thingName=f"{unique}-3", attributePayload={"attributes": {"d": "4"}, "merge": True})
    assert iot.describe_thing(thingName=f"{unique}-3")["attributes"] == three


def test_thing_types_are_not_supported(iot, unique):
    with fails_with(iot, "ResourceNotFoundException", 404, "Thing type sensor does not exist"):
        iot.create_thing(thingName=f"{unique}-typed", thingTypeName="sensor")
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_thing(thingName=f"{unique}-typed")
    iot.create_thing(thingName=f"{unique}-t")
    with fails_with(iot, "ResourceNotFoundException", 404, "Thing type sensor does not exist"):
        iot.update_thing(thingName=f"{unique}-t", thingTypeName="sensor")
    assert iot.list_things(thingTypeName="sensor")["things"] == []


def test_invalid_thing_names_are_refused_by_the_server(iot):
    with fails_with(iot, "InvalidRequestException", 400, match="regular expression pattern"):
        iot.create_thing(thingName="has space")
    with fails_with(iot, "InvalidRequestException", 400, match="length less than or equal to 128"):
        iot.create_thing(thingName="x" * 129)


def test_update_thing_replaces_attributes_and_counts_versions(iot, unique):
    name = f"{unique}-u"
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1", "b": "2"}})
    assert iot.describe_thing(thingName=name)["version"] == 1

    iot.update_thing(thingName=name, attributePayload={"attributes": {"c": "3"}})
    described = iot.describe_thing(thingName=name)
    assert (described["attributes"], described["version"]) == ({"c": "3"}, 2)

    iot.update_thing(thingName=name, attributePayload={"attributes": {}})
    described = iot.describe_thing(thingName=name)
    assert (described["attributes"], described["version"]) == ({}, 3)


def test_update_thing_merges_and_an_empty_value_deletes(iot, unique):
    name = f"{unique}-m"
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1", "b": "2"}})
    iot.update_thing(thingName=name, attributePayload={"attributes": {"b": "20", "c": "3"}, "merge": True})
    described = iot.describe_thing(thingName=name)
    assert (described["attributes"], described["version"]) == ({"a": "1", "b": "20", "c": "3"}, 2)

    iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "", "zz": ""}, "merge": True})
    described = iot.describe_thing(thingName=name)
    assert (described["attributes"], described["version"]) == ({"b": "20", "c": "3"}, 3)


def test_update_thing_checks_the_expected_version(iot, unique):
    name = f"{unique}-v"
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    with fails_with(iot, "VersionConflictException", 409, f"Thing {name} is at version 1, not 5"):
        iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "2"}}, expectedVersion=5)
    assert iot.describe_thing(thingName=name)["attributes"] == {"a": "1"}

    iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "2"}}, expectedVersion=1)
    with fails_with(iot, "VersionConflictException", 409):
        iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "3"}}, expectedVersion=1)
    described = iot.describe_thing(thingName=name)
    assert (described["attributes"], described["version"]) == ({"a": "2"}, 2)


def test_update_unknown_thing(iot, unique):
    with fails_with(iot, "ResourceNotFoundException", 404, f"Thing {unique}-ghost does not exist"):
        iot.update_thing(thingName=f"{unique}-ghost", attributePayload={"attributes": {"a": "1"}})


def test_delete_thing(iot, unique):
    name = f"{unique}-del"
    iot.create_thing(thingName=name)
    iot.update_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    with fails_with(iot, "VersionConflictException", 409):
        iot.delete_thing(thingName=name, expectedVersion=1)
    iot.describe_thing(thingName=name)

    iot.delete_thing(thingName=name, expectedVersion=2)
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_thing(thingName=name)
    # Deleting a thing that does not exist (any more) succeeds.
    iot.delete_thing(thingName=name)
    iot.delete_thing(thingName=f"{unique}-never-existed")


def test_delete_thing_removes_its_pending_executions(server, iot, unique):
    queued, running, done = f"{unique}-q", f"{unique}-r", f"{unique}-s"
    targets = create_things(iot, queued, running, done)
    iot.create_job(jobId=f"{unique}-job", document="{}", targets=targets)
    with device(server, running) as dev:
        dev.start_next()
    with device(server, done) as dev:
        dev.finish(f"{unique}-job", "SUCCEEDED")
    assert iot.describe_job(jobId=f"{unique}-job")["job"]["jobProcessDetails"] == process_details(
        numberOfQueuedThings=1, numberOfInProgressThings=1, numberOfSucceededThings=1
    )

    iot.delete_thing(thingName=queued)
    iot.delete_thing(thingName=done)
    job = iot.describe_job(jobId=f"{unique}-job")["job"]
    assert job["status"] == "IN_PROGRESS"
    assert job["jobProcessDetails"] == process_details(
        numberOfRemovedThings=1, numberOfInProgressThings=1, numberOfSucceededThings=1
    )

    # Removing the last pending execution completes the snapshot job.
    iot.delete_thing(thingName=running)
    job = iot.describe_job(jobId=f"{unique}-job")["job"]
    assert job["jobProcessDetails"] == process_details(numberOfRemovedThings=2, numberOfSucceededThings=1)
    assert job["status"] == "COMPLETED"
    assert "completedAt" in job
    assert executions_by_thing(iot, f"{unique}-job") == {
        queued: [(1, "REMOVED")],
        running: [(1, "REMOVED")],
        done: [(1, "SUCCEEDED")],
    }


def test_list_things_filters_by_attribute(iot, unique):
    iot.create_thing(thingName=f"{unique}-1", attributePayload={"attributes": {"fw": f"{unique}-1.0"}})
    iot.create_thing(thingName=f"{unique}-2", attributePayload={"attributes": {"fw": f"{unique}-1.1"}})
    iot.create_thing(thingName=f"{unique}-3", attributePayload={"attributes": {"fw": f"{unique}-2.0"}})

    exact = iot.list_things(attributeName="fw", attributeValue=f"{unique}-1.1")["things"]
    assert exact == [
        {
            "thingName": f"{unique}-2",
            "thingArn": thing_arn(f"{unique}-2"),
            "attributes": {"fw": f"{unique}-1.1"},
            "version": 1,
        }
    ]
    prefixed = iot.list_things(attributeName="fw", attributeValue=f"{unique}-1", usePrefixAttributeValue=True)
    assert sorted(t["thingName"] for t in prefixed["things"]) == [f"{unique}-1", f"{unique}-2"]
    everything = [
        t["thingName"] for page in iot.get_paginator("list_things").paginate() for t in page["things"]
    ]
    assert sorted(name for name in everything if name.startswith(unique)) == [
        f"{unique}-1",
        f"{unique}-2",
        f"{unique}-3",
    ]
