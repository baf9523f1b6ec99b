import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge.jobs_service import topics
from iot_jobs_bridge.jobs_service.topics import Operation

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
def test_built_topics_round_trip(thing, job_id):
    assert topics.parse_request(topics.get_pending(thing)).operation is Operation.GET_PENDING
    assert topics.parse_request(topics.start_next(thing)).operation is Operation.START_NEXT
    described = topics.parse_request(topics.describe(thing, job_id))
    assert (described.thing_name, described.job_id) == (thing, job_id)
    updated = topics.parse_request(topics.update(thing, job_id))
    assert (updated.thing_name, updated.job_id, updated.operation) == (thing, job_id, Operation.UPDATE)
    assert topics.parse_request(topics.accepted(topics.update(thing, job_id))) is None
    assert topics.parse_request(topics.notify_next(thing)) is None


def test_reply_topic_keeps_next_literal():
    assert topics.accepted("$aws/things/t1/jobs/$next/get") == "$aws/things/t1/jobs/$next/get/accepted"
