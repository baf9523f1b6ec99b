import pytest

from iot_jobs_bridge.schemas.topics import Incoming, ThingTopics

T = ThingTopics("dev-1")


def test_prefix_and_thing_name():
    assert T.thing_name == "dev-1"
    assert T.prefix == "$aws/things/dev-1/jobs"


def test_request_topics():
    assert T.get_pending == "$aws/things/dev-1/jobs/get"
    assert T.start_next == "$aws/things/dev-1/jobs/start-next"
    assert T.describe("job_1-A") == "$aws/things/dev-1/jobs/job_1-A/get"
    assert T.describe("$next") == "$aws/things/dev-1/jobs/$next/get"
    assert T.update("job-1") == "$aws/things/dev-1/jobs/job-1/update"


def test_notification_topics():
    assert T.notify == "$aws/things/dev-1/jobs/notify"
    assert T.notify_next == "$aws/things/dev-1/jobs/notify-next"


def test_subscriptions_cover_notifications_and_every_reply():
    assert T.subscriptions == (
        "$aws/things/dev-1/jobs/notify",
        "$aws/things/dev-1/jobs/notify-next",
        "$aws/things/dev-1/jobs/get/+",
        "$aws/things/dev-1/jobs/start-next/+",
        "$aws/things/dev-1/jobs/+/get/+",
        "$aws/things/dev-1/jobs/+/update/+",
    )


def test_job_id_of_64_characters_is_accepted():
    job_id = "a" * 64
    assert T.update(job_id) == f"$aws/things/dev-1/jobs/{job_id}/update"


@pytest.mark.parametrize(
    "job_id", ["", "a" * 65, "job/1", "job+1", "job#", "job 1", "job.1", "$nex", "$next2", "next$", "j\u00e9"]
)
def test_invalid_job_ids_raise(job_id):
    with pytest.raises(ValueError) as caught:
        T.describe(job_id)
    assert str(caught.value) == f"{job_id!r} is not a valid job id"
    with pytest.raises(ValueError, match="is not a valid job id"):
        T.update(job_id)


# The service would never parse such a name from a topic, so a client cannot be built on one.
@pytest.mark.parametrize("thing_name", ["", "a/b", "a+b", "a#", "+", "#", "a.b", "x" * 129, "th\u00efng"])
def test_invalid_thing_names_raise(thing_name):
    with pytest.raises(ValueError) as caught:
        ThingTopics(thing_name)
    assert str(caught.value) == f"{thing_name!r} is not a usable thing name"


@pytest.mark.parametrize("thing_name", ["t", "my:thing_1-2", "x" * 128])
def test_valid_thing_names(thing_name):
    assert ThingTopics(thing_name).notify == f"$aws/things/{thing_name}/jobs/notify"


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("$aws/things/dev-1/jobs/notify", Incoming("notify")),
        ("$aws/things/dev-1/jobs/notify-next", Incoming("notify-next")),
        ("$aws/things/dev-1/jobs/get/accepted", Incoming("accepted", "$aws/things/dev-1/jobs/get")),
        ("$aws/things/dev-1/jobs/get/rejected", Incoming("rejected", "$aws/things/dev-1/jobs/get")),
        (
            "$aws/things/dev-1/jobs/start-next/accepted",
            Incoming("accepted", "$aws/things/dev-1/jobs/start-next"),
        ),
        (
            "$aws/things/dev-1/jobs/start-next/rejected",
            Incoming("rejected", "$aws/things/dev-1/jobs/start-next"),
        ),
        ("$aws/things/dev-1/jobs/j1/get/accepted", Incoming("accepted", "$aws/things/dev-1/jobs/j1/get")),
        (
            "$aws/things/dev-1/jobs/$next/get/accepted",
            Incoming("accepted", "$aws/things/dev-1/jobs/$next/get"),
        ),
        (
            "$aws/things/dev-1/jobs/j1/update/accepted",
            Incoming("accepted", "$aws/things/dev-1/jobs/j1/update"),
        ),
        (
            "$aws/things/dev-1/jobs/j1/update/rejected",
            Incoming("rejected", "$aws/things/dev-1/jobs/j1/update"),
        ),
    ],
)
def test_classify_our_topics(topic, expected):
    assert T.classify(topic) == expected


@pytest.mark.parametrize(
    "topic",
    [
        # another thing's topics, including one whose name extends ours
        "$aws/things/dev-2/jobs/notify",
        "$aws/things/dev-2/jobs/get/accepted",
        "$aws/things/dev-10/jobs/notify-next",
        "$aws/things/dev-10/jobs/j1/update/rejected",
        # foreign topics
        "$aws/things/dev-1/shadow/update/accepted",
        "$aws/things/dev-1/jobs/notify/extra",
        "$aws/things/dev-1/jobs/get",
        "$aws/things/dev-1/jobs/j1/update",
        "$aws/things/dev-1/jobs/get/accepted/more",
        "$aws/things/dev-1/jobs/get/accepteD",
        "$aws/things/dev-1/jobs/accepted",
        "$aws/things/dev-1/jobs//accepted",
        "aws/things/dev-1/jobs/notify",
        "prefix/$aws/things/dev-1/jobs/get/accepted",
        "",
    ],
)
def test_classify_other_topics_gives_none(topic):
    assert T.classify(topic) is None


def test_incoming_default_request_topic_is_empty():
    assert Incoming("notify").request_topic == ""
