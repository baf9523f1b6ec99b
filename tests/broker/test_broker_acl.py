"""The pure topic rules in `broker.acl`."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from iot_jobs_bridge.broker import Principal, may_publish, may_receive, may_subscribe

T1 = Principal("thing", "t1")
ADMIN = Principal("admin", "AKIDEXAMPLEADMIN")
P = "$aws/things/t1/jobs"

REQUESTS = [f"{P}/get", f"{P}/start-next", f"{P}/job1/get", f"{P}/$next/get", f"{P}/job-1_A/update"]
REPLIES = [
    f"{P}/notify",
    f"{P}/notify-next",
    f"{P}/get/accepted",
    f"{P}/get/rejected",
    f"{P}/start-next/accepted",
    f"{P}/start-next/rejected",
    f"{P}/job1/get/accepted",
    f"{P}/$next/get/rejected",
    f"{P}/job1/update/accepted",
    f"{P}/job1/update/rejected",
]
NEITHER = [
    "$aws/things/t2/jobs/get",
    "$aws/things/t2/jobs/notify",
    "$aws/things/t1x/jobs/get",
    "$aws/things/t/jobs/get",
    "$aws/things/t1/shadow/get",
    "$aws/events/job/job1/completed",
    "$aws/events/jobExecution/job1/succeeded",
    f"{P}",
    f"{P}/",
    f"/{P}/get",
    "t1/jobs/get",
    "",
]
# Paths in the thing's own tree that name no operation: they reach the service,
# which answers InvalidTopic on `<path>/rejected`.
UNKNOWN_PATHS = [
    f"{P}/$next/update",  # `$next` is only valid for describe
    f"{P}/job.1/update",
    f"{P}/job1/delete",
    f"{P}/job1/get/other",
    f"{P}/get/accepted/x",
    f"{P}/get/",
    f"{P}/get\n",
]
# Reply-shaped topics outside the four operations (e.g. InvalidTopic answers).
OTHER_REPLIES = [f"{P}/$next/update/accepted", f"{P}/notify/accepted", f"{P}/a/b/c/rejected"]
SERVICE = Principal("service", "AKIDEXAMPLEADMIN")


@pytest.mark.parametrize("topic", REQUESTS)
def test_thing_may_publish_its_requests_but_not_receive_them(topic):
    assert may_publish(T1, topic)
    assert not may_receive(T1, topic)


@pytest.mark.parametrize("topic", REPLIES)
def test_thing_may_receive_its_replies_but_not_publish_them(topic):
    assert may_receive(T1, topic)
    assert not may_publish(T1, topic)


@pytest.mark.parametrize("topic", UNKNOWN_PATHS)
def test_thing_may_publish_unknown_paths_of_its_tree(topic):
    assert may_publish(T1, topic)
    assert not may_receive(T1, topic)


@pytest.mark.parametrize("topic", OTHER_REPLIES)
def test_thing_receives_any_reply_shaped_topic_of_its_tree(topic):
    assert may_receive(T1, topic)
    assert not may_publish(T1, topic)


@pytest.mark.parametrize("topic", [*REQUESTS, *UNKNOWN_PATHS, "$aws/things/t2/jobs/get", "other/topic"])
def test_service_receives_everything_but_replies(topic):
    assert may_receive(SERVICE, topic)
    assert may_publish(SERVICE, topic)


@pytest.mark.parametrize("topic", [*REPLIES, *OTHER_REPLIES])
def test_service_never_receives_replies(topic):
    assert not may_receive(SERVICE, topic)
    assert may_publish(SERVICE, topic)
    assert may_subscribe(SERVICE, "$aws/things/+/jobs/#")


@pytest.mark.parametrize("topic", NEITHER)
def test_thing_may_neither_publish_nor_receive_other_topics(topic):
    assert not may_publish(T1, topic)
    assert not may_receive(T1, topic)


@pytest.mark.parametrize(
    "topic_filter",
    [
        f"{P}/notify",
        f"{P}/notify-next",
        f"{P}/get/+",
        f"{P}/get/accepted",
        f"{P}/start-next/+",
        f"{P}/$next/get/+",
        f"{P}/+/update/accepted",
        f"{P}/job1/update/+",
        f"{P}/+/+/+",
        f"{P}/#",
        f"{P}/+/#",
    ],
)
def test_thing_may_subscribe_inside_its_subtree(topic_filter):
    assert may_subscribe(T1, topic_filter)


@pytest.mark.parametrize(
    "topic_filter",
    [
        "#",
        "+/things/t1/jobs/#",
        "$aws/#",
        "$aws/things/#",
        "$aws/things/+/jobs/#",
        "$aws/things/+/jobs/notify",
        "$aws/things/t2/jobs/#",
        "$aws/things/t1/#",
        "$aws/things/t1/+/notify",
        "$aws/things/t1/shadow/#",
        "$aws/events/#",
        f"{P}",
        f"{P}/",
        f"{P}/#/x",
        f"{P}/no#te",
        f"{P}/a+",
        f"{P}/a//b",
        "",
    ],
)
def test_thing_may_not_subscribe_outside_its_subtree(topic_filter):
    assert not may_subscribe(T1, topic_filter)


@pytest.mark.parametrize("topic", [*REQUESTS, *REPLIES, *NEITHER])
def test_admin_may_do_anything(topic):
    assert may_publish(ADMIN, topic)
    assert may_subscribe(ADMIN, topic)
    assert may_receive(ADMIN, topic)


def test_a_thing_name_is_not_a_pattern():
    dotted = Principal("thing", "a.b")
    assert not may_publish(dotted, "$aws/things/aXb/jobs/get")
    assert not may_publish(dotted, "$aws/things/a.b/jobs/get")  # not a valid thing name at all


def test_unknown_principal_kind_is_refused():
    odd = Principal("robot", "t1")  # type: ignore[arg-type]
    assert not may_publish(odd, f"{P}/get")
    assert not may_subscribe(odd, f"{P}/#")
    assert not may_receive(odd, f"{P}/notify")


THING_NAMES = st.text(alphabet="abcXYZ019:_-", min_size=1, max_size=12)
JOB_IDS = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=12)
SUFFIXES = st.sampled_from(
    [
        "get",
        "start-next",
        "notify",
        "notify-next",
        "{job}/get",
        "$next/get",
        "{job}/update",
        "get/accepted",
        "start-next/rejected",
        "{job}/get/accepted",
        "$next/get/rejected",
        "{job}/update/accepted",
        "#",
        "+",
        "+/update/+",
        "{job}/#",
    ]
)


@given(a=THING_NAMES, b=THING_NAMES, job=JOB_IDS, suffix=SUFFIXES)
def test_nothing_of_one_thing_is_allowed_to_another(a, b, job, suffix):
    assume(a != b)
    topic = f"$aws/things/{b}/jobs/" + suffix.format(job=job)
    thing = Principal("thing", a)
    assert not may_publish(thing, topic)
    assert not may_subscribe(thing, topic)
    assert not may_receive(thing, topic)


@given(name=THING_NAMES, job=JOB_IDS)
def test_every_request_and_reply_of_a_thing_is_its_own(name, job):
    thing = Principal("thing", name)
    prefix = f"$aws/things/{name}/jobs"
    for request in ("get", "start-next", f"{job}/get", "$next/get", f"{job}/update"):
        assert may_publish(thing, f"{prefix}/{request}")
        assert may_receive(thing, f"{prefix}/{request}/accepted")
        assert may_subscribe(thing, f"{prefix}/{request}/+")
