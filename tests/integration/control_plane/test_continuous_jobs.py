"""Continuous jobs: membership changes after creation create or REMOVE executions."""

from ._support import create_things, executions_by_thing, finish, group_arn, process_details, start


def test_static_group_joiners_and_leavers(server, iot, unique):
    group = f"{unique}-g"
    iot.create_thing_group(thingGroupName=group)
    create_things(iot, f"{unique}-early", f"{unique}-late", f"{unique}-outside")
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=f"{unique}-early")
    iot.create_job(
        jobId=f"{unique}-j", document="{}", targets=[group_arn(group)], targetSelection="CONTINUOUS"
    )
    assert executions_by_thing(iot, f"{unique}-j") == {f"{unique}-early": [(1, "QUEUED")]}

    # A thing that joins later gets a QUEUED execution.
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=f"{unique}-late")
    assert executions_by_thing(iot, f"{unique}-j") == {
        f"{unique}-early": [(1, "QUEUED")],
        f"{unique}-late": [(1, "QUEUED")],
    }
    assert iot.describe_job_execution(jobId=f"{unique}-j", thingName=f"{unique}-late")["execution"][
        "status"
    ] == ("QUEUED")

    # A thing that leaves while QUEUED is REMOVED.
    iot.remove_thing_from_thing_group(thingGroupName=group, thingName=f"{unique}-late")
    assert executions_by_thing(iot, f"{unique}-j")[f"{unique}-late"] == [(1, "REMOVED")]
    assert iot.describe_job(jobId=f"{unique}-j")["job"]["jobProcessDetails"] == process_details(
        numberOfQueuedThings=1, numberOfRemovedThings=1
    )

    # Every execution terminal: a continuous job still stays IN_PROGRESS.
    finish(server, f"{unique}-early", f"{unique}-j", "SUCCEEDED")
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert job["status"] == "IN_PROGRESS"
    assert "completedAt" not in job
    assert job["jobProcessDetails"] == process_details(numberOfSucceededThings=1, numberOfRemovedThings=1)

    # Rejoining after REMOVED queues a new execution with the next number.
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=f"{unique}-late")
    assert executions_by_thing(iot, f"{unique}-j") == {
        f"{unique}-early": [(1, "SUCCEEDED")],
        f"{unique}-late": [(1, "REMOVED"), (2, "QUEUED")],
    }
    assert iot.describe_job(jobId=f"{unique}-j")["job"]["jobProcessDetails"] == process_details(
        numberOfSucceededThings=1, numberOfQueuedThings=1
    )
    assert iot.list_job_executions_for_thing(thingName=f"{unique}-outside")["executionSummaries"] == []


def test_joining_a_child_group_of_the_target(iot, unique):
    iot.create_thing_group(thingGroupName=f"{unique}-parent")
    iot.create_thing_group(thingGroupName=f"{unique}-child", parentGroupName=f"{unique}-parent")
    create_things(iot, f"{unique}-t")
    iot.create_job(
        jobId=f"{unique}-j",
        document="{}",
        targets=[group_arn(f"{unique}-parent")],
        targetSelection="CONTINUOUS",
    )
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-child", thingName=f"{unique}-t")
    assert executions_by_thing(iot, f"{unique}-j") == {f"{unique}-t": [(1, "QUEUED")]}
    iot.remove_thing_from_thing_group(thingGroupName=f"{unique}-child", thingName=f"{unique}-t")
    assert executions_by_thing(iot, f"{unique}-j") == {f"{unique}-t": [(1, "REMOVED")]}


def test_snapshot_jobs_ignore_later_joiners(iot, unique):
    group = f"{unique}-g"
    iot.create_thing_group(thingGroupName=group)
    create_things(iot, f"{unique}-early", f"{unique}-late")
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=f"{unique}-early")
    iot.create_job(jobId=f"{unique}-j", document="{}", targets=[group_arn(group)])
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=f"{unique}-late")
    assert executions_by_thing(iot, f"{unique}-j") == {f"{unique}-early": [(1, "QUEUED")]}


def test_dynamic_group_matches_and_mismatches(server, iot, unique):
    group = f"{unique}-dyn"
    iot.create_thing(thingName=f"{unique}-a", attributePayload={"attributes": {"ring": "beta"}})
    iot.create_thing(thingName=f"{unique}-b", attributePayload={"attributes": {"ring": "stable"}})
    iot.create_dynamic_thing_group(
        thingGroupName=group, queryString=f"thingName:{unique}-* AND attributes.ring:beta"
    )
    iot.create_job(
        jobId=f"{unique}-j", document="{}", targets=[group_arn(group)], targetSelection="CONTINUOUS"
    )
    assert executions_by_thing(iot, f"{unique}-j") == {f"{unique}-a": [(1, "QUEUED")]}

    # UpdateThing makes b match: it gets an execution.
    iot.update_thing(thingName=f"{unique}-b", attributePayload={"attributes": {"ring": "beta"}})
    assert executions_by_thing(iot, f"{unique}-j") == {
        f"{unique}-a": [(1, "QUEUED")],
        f"{unique}-b": [(1, "QUEUED")],
    }
    # UpdateThing makes a stop matching while QUEUED: REMOVED.
    iot.update_thing(thingName=f"{unique}-a", attributePayload={"attributes": {"ring": "stable"}})
    assert executions_by_thing(iot, f"{unique}-j") == {
        f"{unique}-a": [(1, "REMOVED")],
        f"{unique}-b": [(1, "QUEUED")],
    }
    # A new matching thing gets one as well.
    iot.create_thing(thingName=f"{unique}-c", attributePayload={"attributes": {"ring": "beta"}})
    finish(server, f"{unique}-b", f"{unique}-j", "SUCCEEDED")
    finish(server, f"{unique}-c", f"{unique}-j", "FAILED")
    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert job["status"] == "IN_PROGRESS"
    assert job["jobProcessDetails"] == process_details(
        numberOfRemovedThings=1, numberOfSucceededThings=1, numberOfFailedThings=1
    )
    # A thing whose execution already ended keeps it when it stops matching.
    iot.update_thing(thingName=f"{unique}-b", attributePayload={"attributes": {"ring": "stable"}})
    assert executions_by_thing(iot, f"{unique}-j")[f"{unique}-b"] == [(1, "SUCCEEDED")]


def test_a_running_execution_is_removed_when_its_thing_leaves(server, iot, unique):
    group = f"{unique}-g"
    iot.create_thing_group(thingGroupName=group)
    create_things(iot, f"{unique}-t")
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=f"{unique}-t")
    iot.create_job(
        jobId=f"{unique}-j", document="{}", targets=[group_arn(group)], targetSelection="CONTINUOUS"
    )
    start(server, f"{unique}-t", f"{unique}-j")
    iot.remove_thing_from_thing_group(thingGroupName=group, thingName=f"{unique}-t")
    assert executions_by_thing(iot, f"{unique}-j") == {f"{unique}-t": [(1, "REMOVED")]}
