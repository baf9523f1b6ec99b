import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge.schemas import topics
from iot_jobs_bridge.schemas.topics import Operation, ThingTopics

things = st.from_regex(r"[a-zA-Z0-9:_-]{1,40}", fullmatch=True)
job_ids = st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True)


@pytest.mark.parametrize(
    ("topic", "operation", "job_id"),
    [
        ("$aws/things/t1/jobs/get", Operation.GET_PENDING, None),
        ("$aws/things/t1/jobs/start-next", Operation.START_NEXT, None),
        ("$aws/things/t1/jobs/job-1/get", Operation.DESCRIBE, "job-1"),
        ("$aws/things/t1/jobs/$next/get", Operation.DESCRIBE, "$next"),
        ("$aws/things/t1/jobs/job-1/update", Operation.UPDATE, "job-1"),
        ("$aws/things/t1/jobs/foo/bar/baz", Operation.INVALID, None),
        ("$aws/things/t1/jobs/$next/update", Operation.INVALID, None),
    ],
)
def test_requests_parse(topic, operation, job_id):
    request = topics.parse_request(topic)
    assert request is not None
    assert (request.thing_name, request.operation, request.job_id) == ("t1", operation, job_id)


@pytest.mark.parametrize(
    "topic",
    [
        "$aws/things/t1/jobs/get/accepted",
        "$aws/things/t1/jobs/start-next/rejected",
        "$aws/things/t1/jobs/$next/get/accepted",
        "$aws/things/t1/jobs/j1/update/accepted",
        "$aws/things/t1/jobs/notify",
        "$aws/things/t1/jobs/notify-next",
        "$aws/things/t1/shadow/update",
        "aws/things/t1/jobs/get",
        "$aws/things/t1/jobs/get/extra/$aws/things/t2/jobs/get",
    ],
)
def test_replies_and_foreign_topics_are_not_requests(topic):
    request = topics.parse_request(topic)
    assert request is None or request.operation is Operation.INVALID
    if topic.endswith(("accepted", "rejected", "notify", "notify-next")):
        assert request is None


@given(things, job_ids)
def test_what_the_sdk_builds_the_service_parses_and_the_broker_places(thing, job_id):
    built = ThingTopics(thing)
    assert topics.parse_request(built.get_pending).operation is Operation.GET_PENDING
    assert topics.parse_request(built.start_next).operation is Operation.START_NEXT
    described = topics.parse_request(built.describe(job_id))
    assert (described.thing_name, described.job_id) == (thing, job_id)
    updated = topics.parse_request(built.update(job_id))
    assert (updated.thing_name, updated.job_id, updated.operation) == (thing, job_id, Operation.UPDATE)
    for request in (built.get_pending, built.start_next, built.describe(job_id), built.update(job_id)):
        assert topics.place(request) == (thing, False)
        for reply in (topics.accepted(request), topics.rejected(request)):
            assert topics.parse_request(reply) is None and topics.place(reply) == (thing, True)
            assert built.classify(reply).request_topic == request
    for notification in (built.notify, built.notify_next):
        assert topics.parse_request(notification) is None and topics.place(notification) == (thing, True)
    for topic_filter in built.subscriptions:
        assert topics.thing_of_filter(topic_filter) == thing


def test_reply_topic_keeps_next_literal():
    assert topics.accepted("$aws/things/t1/jobs/$next/get") == "$aws/things/t1/jobs/$next/get/accepted"


@pytest.mark.parametrize(
    ("topic_filter", "thing"),
    [
        ("$aws/things/t1/jobs/#", "t1"),
        ("$aws/things/t1/jobs/+/get/+", "t1"),
        ("$aws/things/t1/jobs/notify", "t1"),
        ("$aws/things/+/jobs/#", None),  # every thing's
        ("$aws/things/#", None),
        ("$aws/things/t1/jobs", None),
        ("$aws/things/t1/jobs/#/get", None),  # `#` only last
        ("$aws/things/t1/jobs/a+/get", None),  # a wildcard is a whole level
        ("$aws/things/t1/jobs//get", None),
        ("$aws/things/t.1/jobs/#", None),
    ],
)
def test_the_thing_a_filter_stays_inside(topic_filter, thing):
    assert topics.thing_of_filter(topic_filter) == thing
