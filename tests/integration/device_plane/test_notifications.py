"""The notify / notify-next trigger matrix (spec §2.11), one test per row.

Each test records what arrived after a point, then makes a later round trip
(get-pending) before checking: anything the service published before that
reply has been delivered by then, so what is missing was never sent.
"""

from ._support import (
    NOTIFY,
    NOTIFY_NEXT,
    create_job,
    group_arn,
    next_execution,
    notify_jobs,
)


def told(device, mark):
    """(notify payloads, notify-next payloads) after ``mark``, once a later reply has arrived."""
    device.marker()
    return (
        [notify_jobs(p) for p in device.notifications(mark, NOTIFY)],
        [next_execution(p) for p in device.notifications(mark, NOTIFY_NEXT)],
    )


def test_job_created_when_nothing_is_pending_sends_notify_and_notify_next(iot, device, unique):
    mark = device.settle()

    job_id = create_job(iot, f"{unique}-a", [device.thing], document='{"new": "head"}')

    (notify,) = device.wait_notification(mark, NOTIFY)
    (head,) = device.wait_notification(mark, NOTIFY_NEXT)
    assert notify_jobs(notify) == {"QUEUED": [job_id]}
    assert head["execution"]["jobDocument"] == {"new": "head"}
    assert (head["execution"]["versionNumber"], head["execution"]["executionNumber"]) == (1, 1)
    assert told(device, mark) == ([{"QUEUED": [job_id]}], [(job_id, "QUEUED")])


def test_job_created_behind_others_sends_notify_only(iot, device, unique):
    first = create_job(iot, f"{unique}-a", [device.thing])
    mark = device.settle()

    second = create_job(iot, f"{unique}-b", [device.thing])

    assert told(device, mark) == ([{"QUEUED": [first, second]}], [])


def test_start_next_of_the_head_sends_nothing(iot, device, unique):
    first = create_job(iot, f"{unique}-a", [device.thing])
    create_job(iot, f"{unique}-b", [device.thing])
    mark = device.settle()

    assert device.accepted("start-next")["execution"]["jobId"] == first

    assert told(device, mark) == ([], [])


def test_update_of_the_head_to_in_progress_sends_nothing(iot, device, unique):
    first = create_job(iot, f"{unique}-a", [device.thing])
    mark = device.settle()

    device.accepted(f"{first}/update", {"status": "IN_PROGRESS", "statusDetails": {"p": "1"}})
    device.accepted(f"{first}/update", {"status": "IN_PROGRESS", "statusDetails": {"p": "2"}})

    assert told(device, mark) == ([], [])


def test_a_later_execution_started_ahead_of_the_head_sends_notify_next_only(iot, device, unique):
    create_job(iot, f"{unique}-a", [device.thing])
    later = create_job(iot, f"{unique}-b", [device.thing])
    mark = device.settle()

    device.accepted(f"{later}/update", {"status": "IN_PROGRESS"})

    assert told(device, mark) == ([], [(later, "IN_PROGRESS")])


def test_head_to_terminal_sends_both(iot, device, unique):
    first = create_job(iot, f"{unique}-a", [device.thing])
    second = create_job(iot, f"{unique}-b", [device.thing])
    device.accepted("start-next")
    mark = device.settle()

    device.accepted(f"{first}/update", {"status": "SUCCEEDED"})

    assert told(device, mark) == ([{"QUEUED": [second]}], [(second, "QUEUED")])

    # The last one leaves an empty set: {"jobs": {}} and no execution.
    mark = device.mark()
    device.accepted(f"{second}/update", {"status": "REJECTED"})
    assert told(device, mark) == ([{}], [None])
    assert device.notifications(mark, NOTIFY)[0]["jobs"] == {}
    assert set(device.notifications(mark, NOTIFY_NEXT)[0]) == {"timestamp"}


def test_non_head_to_terminal_sends_notify_only(iot, device, unique):
    first = create_job(iot, f"{unique}-a", [device.thing])
    second = create_job(iot, f"{unique}-b", [device.thing])
    third = create_job(iot, f"{unique}-c", [device.thing])
    device.accepted("start-next")
    mark = device.settle()

    device.accepted(f"{second}/update", {"status": "FAILED"})

    assert told(device, mark) == ([{"IN_PROGRESS": [first], "QUEUED": [third]}], [])


def test_cancel_job_notifies_each_thing_and_notify_next_where_the_head_changed(iot, connect, unique):
    head_here, behind_here = connect("one"), connect("two")
    before = create_job(iot, f"{unique}-before", [behind_here.thing])
    job_id = create_job(iot, f"{unique}-a", [head_here.thing, behind_here.thing])
    after = create_job(iot, f"{unique}-after", [head_here.thing])
    marks = {d.thing: d.settle() for d in (head_here, behind_here)}

    iot.cancel_job(jobId=job_id, comment="stop")

    assert told(head_here, marks[head_here.thing]) == ([{"QUEUED": [after]}], [(after, "QUEUED")])
    assert told(behind_here, marks[behind_here.thing]) == ([{"QUEUED": [before]}], [])


def test_cancel_job_with_force_ends_an_in_progress_head(iot, device, unique):
    job_id = create_job(iot, f"{unique}-a", [device.thing])
    device.accepted("start-next")
    mark = device.settle()

    iot.cancel_job(jobId=job_id, force=True)

    assert told(device, mark) == ([{}], [None])


def test_cancel_job_execution_of_the_head_sends_both(iot, device, unique):
    first = create_job(iot, f"{unique}-a", [device.thing])
    second = create_job(iot, f"{unique}-b", [device.thing])
    mark = device.settle()

    iot.cancel_job_execution(jobId=first, thingName=device.thing)

    assert told(device, mark) == ([{"QUEUED": [second]}], [(second, "QUEUED")])


def test_cancel_job_execution_of_a_later_one_sends_notify_only(iot, device, unique):
    first = create_job(iot, f"{unique}-a", [device.thing])
    second = create_job(iot, f"{unique}-b", [device.thing])
    device.accepted(f"{first}/update", {"status": "IN_PROGRESS"})
    mark = device.settle()

    iot.cancel_job_execution(jobId=second, thingName=device.thing)

    assert told(device, mark) == ([{"IN_PROGRESS": [first]}], [])


def test_forced_delete_job_of_the_head_sends_both(iot, device, unique):
    first = create_job(iot, f"{unique}-a", [device.thing])
    second = create_job(iot, f"{unique}-b", [device.thing])
    device.accepted("start-next")
    mark = device.settle()

    iot.delete_job(jobId=first, force=True)

    assert told(device, mark) == ([{"QUEUED": [second]}], [(second, "QUEUED")])


def test_forced_delete_job_of_a_later_one_sends_notify_only(iot, device, unique):
    first = create_job(iot, f"{unique}-a", [device.thing])
    second = create_job(iot, f"{unique}-b", [device.thing])
    mark = device.settle()

    iot.delete_job(jobId=second, force=True)

    assert told(device, mark) == ([{"QUEUED": [first]}], [])


def test_delete_job_execution_of_the_head_sends_both(iot, device, unique):
    first = create_job(iot, f"{unique}-a", [device.thing])
    mark = device.settle()

    iot.delete_job_execution(jobId=first, thingName=device.thing, executionNumber=1)

    assert told(device, mark) == ([{}], [None])


def test_delete_job_execution_of_a_later_one_sends_notify_only(iot, device, unique):
    first = create_job(iot, f"{unique}-a", [device.thing])
    second = create_job(iot, f"{unique}-b", [device.thing])
    third = create_job(iot, f"{unique}-c", [device.thing])
    mark = device.settle()

    iot.delete_job_execution(jobId=second, thingName=device.thing, executionNumber=1)

    assert told(device, mark) == ([{"QUEUED": [first, third]}], [])


def test_removing_the_thing_from_a_continuous_jobs_group_sends_both(iot, device, unique):
    group = f"{unique}-g"
    iot.create_thing_group(thingGroupName=group)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=device.thing)
    job_id = f"{unique}-cont"
    iot.create_job(jobId=job_id, document="{}", targets=[group_arn(group)], targetSelection="CONTINUOUS")
    later = create_job(iot, f"{unique}-later", [device.thing])
    mark = device.settle()

    iot.remove_thing_from_thing_group(thingGroupName=group, thingName=device.thing)

    assert told(device, mark) == ([{"QUEUED": [later]}], [(later, "QUEUED")])
    execution = iot.describe_job_execution(jobId=job_id, thingName=device.thing)["execution"]
    assert execution["status"] == "REMOVED"


def test_adding_the_thing_to_a_continuous_jobs_group_sends_both_when_nothing_was_pending(v2, iot, unique):
    group = f"{unique}-g"
    iot.create_thing_group(thingGroupName=group)
    job_id = f"{unique}-cont"
    iot.create_job(
        jobId=job_id,
        document='{"test": "do-something"}',
        targets=[group_arn(group)],
        targetSelection="CONTINUOUS",
    )
    pending = v2.get_pending()
    assert (pending.in_progress_jobs, pending.queued_jobs) == ([], [])

    iot.add_thing_to_thing_group(thingGroupName=group, thingName=v2.thing)

    announced = v2.next_events.wait_for(lambda e: e.execution is not None)
    assert (announced.execution.job_id, announced.execution.status) == (job_id, "QUEUED")
    assert announced.execution.job_document == {"test": "do-something"}
    listed = v2.list_events.wait_for(lambda e: "QUEUED" in (e.jobs or {}))
    assert [s.job_id for s in listed.jobs["QUEUED"]] == [job_id]
    v2.get_pending()  # a later reply: nothing else is on its way
    assert (v2.next_events.count(), v2.list_events.count()) == (1, 1)


def test_adding_the_thing_behind_pending_work_sends_notify_only(iot, device, unique):
    first = create_job(iot, f"{unique}-a", [device.thing])
    group = f"{unique}-g"
    iot.create_thing_group(thingGroupName=group)
    job_id = f"{unique}-cont"
    iot.create_job(jobId=job_id, document="{}", targets=[group_arn(group)], targetSelection="CONTINUOUS")
    mark = device.settle()

    iot.add_thing_to_thing_group(thingGroupName=group, thingName=device.thing)

    assert told(device, mark) == ([{"QUEUED": [first, job_id]}], [])


def test_a_device_on_the_sdk_streams_sees_the_same_rows(iot, v2, unique):
    first = create_job(iot, f"{unique}-a", [v2.thing])
    v2.next_events.wait_for(lambda e: e.execution is not None and e.execution.job_id == first)
    second = create_job(iot, f"{unique}-b", [v2.thing])
    v2.list_events.wait_for(lambda e: [s.job_id for s in (e.jobs or {}).get("QUEUED", [])] == [first, second])
    v2.start_next().result(10)

    v2.update(first, "SUCCEEDED").result(10)

    head = v2.next_events.wait_for(lambda e: e.execution is not None and e.execution.job_id == second)
    assert head.execution.status == "QUEUED"
    v2.get_pending()
    # create (both), create behind (notify), start-next (none), head ends (both)
    assert (v2.next_events.count(), v2.list_events.count()) == (2, 3)
    assert [s.job_id for s in v2.list_events.items[-1].jobs["QUEUED"]] == [second]
