"""AWS IoT policies and the per-thing default rule as Mosquitto ACL files."""

import json

from iot_jobs_bridge.broker.mosquitto_acl import (
    FULL_ACCESS,
    MosquittoUser,
    acl_file,
    anonymous_thing_patterns,
    policy_rules,
    thing_rules,
)
from iot_jobs_bridge.broker.policy import parse_policy

PREFIX = "arn:aws:iot:us-east-1:123456789012"
THING = "${iot:Connection.Thing.ThingName}"
CLIENT = "${iot:ClientId}"
ALLOW_ALL = {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}
EVERYTHING = [("readwrite", "#"), ("readwrite", "$aws/#")]


def statements(*raw):
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": list(raw)}))


def rules(*raw, things=("t1",)):
    return policy_rules(statements(*raw), things, PREFIX)


def topic(name):
    return f"{PREFIX}:topic/{name}"


def topicfilter(name):
    return f"{PREFIX}:topicfilter/{name}"


def allow(action, *resources):
    return {"Effect": "Allow", "Action": action, "Resource": list(resources)}


def deny(action, *resources):
    return {"Effect": "Deny", "Action": action, "Resource": list(resources)}


def read_and_write(name):
    """Statements granting Publish, Subscribe and Receive on one name (topic and filter alike)."""
    return (
        allow(["iot:Publish", "iot:Receive"], topic(name)),
        allow("iot:Subscribe", topicfilter(name)),
    )


# -- the per-thing default ---------------------------------------------------


def test_thing_rules_read_the_jobs_subtree_and_write_the_four_request_topics():
    assert thing_rules("t1") == [
        ("read", "$aws/things/t1/jobs/#"),
        ("write", "$aws/things/t1/jobs/get"),
        ("write", "$aws/things/t1/jobs/start-next"),
        ("write", "$aws/things/t1/jobs/+/get"),
        ("write", "$aws/things/t1/jobs/+/update"),
    ]


def test_anonymous_patterns_are_the_thing_rules_for_the_client_id():
    patterns = anonymous_thing_patterns()
    assert patterns == thing_rules("%c")
    assert all("/%c/" in name for _access, name in patterns)


def test_full_access_covers_plain_and_dollar_topics_and_reads_sys():
    assert FULL_ACCESS == (("readwrite", "#"), ("readwrite", "$aws/#"), ("read", "$SYS/#"))


# -- acl_file ----------------------------------------------------------------


def test_acl_file_writes_patterns_then_one_section_per_user():
    text = acl_file(
        [
            MosquittoUser("svc", (("readwrite", "#"),)),
            MosquittoUser("ab12", (("read", "x/#"), ("write", "y"))),
            MosquittoUser("cd34", ()),
        ],
        [("read", "$aws/things/%c/jobs/#")],
    )
    lines = text.splitlines()
    assert lines[0].startswith("#")
    assert lines[1:] == [
        "pattern read $aws/things/%c/jobs/#",
        "",
        "user svc",
        "topic readwrite #",
        "",
        "user ab12",
        "topic read x/#",
        "topic write y",
        "",
        "user cd34",
    ]
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_acl_file_without_users_or_patterns_is_only_the_header():
    text = acl_file([])
    assert text.count("\n") == 1 and text.startswith("# ")


def test_acl_file_skips_usernames_that_cannot_be_written():
    text = acl_file(
        [
            MosquittoUser("evil\nuser other", (("readwrite", "#"),)),
            MosquittoUser("cr\rname", (("readwrite", "#"),)),
            MosquittoUser("   ", (("readwrite", "#"),)),
            MosquittoUser("", (("readwrite", "#"),)),
            MosquittoUser("good", (("read", "a"),)),
        ]
    )
    assert "user good\ntopic read a\n" in text
    assert "evil" not in text and "other" not in text and "name" not in text
    assert text.count("user ") == 1
    assert "topic readwrite #" not in text


# -- whole policies ----------------------------------------------------------


def test_allow_everything_reads_and_writes_every_topic_including_dollar_ones():
    assert rules(ALLOW_ALL) == EVERYTHING


def test_a_star_resource_in_this_account_and_region_is_everything():
    assert rules(allow("iot:*", f"{PREFIX}:*")) == EVERYTHING
    assert rules(allow("iot:*", "arn:aws:iot:*:*:*")) == EVERYTHING
    assert rules(allow("iot:*", "arn:aws:iot:us-east-?:123456789012:*")) == EVERYTHING


def test_resources_of_another_account_or_region_grant_nothing():
    for other in ("arn:aws:iot:eu-west-1:123456789012", "arn:aws:iot:us-east-1:210987654321"):
        assert rules(allow("iot:*", f"{other}:*")) == []
        assert rules(allow("iot:*", f"{other}:topic/*", f"{other}:topicfilter/*")) == []
        assert rules(deny("iot:*", f"{other}:topic/*", f"{other}:topicfilter/*"), ALLOW_ALL) == EVERYTHING


def test_wildcards_in_the_arn_prefix_match_this_account_and_region():
    glob = "arn:aws:iot:*:123456789012"
    assert rules(allow("iot:Publish", f"{glob}:topic/a")) == [("write", "a")]


def test_connect_alone_gives_no_topic_rules():
    assert rules(allow("iot:Connect", f"{PREFIX}:client/t1")) == []
    assert rules(allow("iot:Connect", "*")) == []


def test_deny_publish_of_start_next_for_any_thing_is_a_deny_line_before_the_allows():
    result = rules(ALLOW_ALL, deny("iot:Publish", topic("$aws/things/*/jobs/start-next")))
    assert result == [("deny", "$aws/things/+/jobs/start-next"), *EVERYTHING]


def test_deny_of_any_single_action_denies_the_topic_for_every_action():
    for action in ("iot:Publish", "iot:Receive"):
        assert rules(ALLOW_ALL, deny(action, topic("secret/x")))[0] == ("deny", "secret/x")
    assert rules(ALLOW_ALL, deny("iot:Subscribe", topicfilter("secret/#")))[0] == ("deny", "secret/#")


def test_deny_of_connect_only_adds_no_deny_line():
    assert rules(ALLOW_ALL, deny("iot:Connect", "*")) == EVERYTHING


def test_deny_everything_denies_plain_and_dollar_topics():
    result = rules(ALLOW_ALL, deny("iot:*", "*"))
    assert result[:2] == [("deny", "#"), ("deny", "$aws/#")]


def test_the_same_deny_from_several_actions_is_written_once():
    result = rules(ALLOW_ALL, deny(["iot:Publish", "iot:Receive"], topic("a/b")))
    assert result.count(("deny", "a/b")) == 1


# -- kinds of resource -------------------------------------------------------


def test_publish_and_receive_use_topic_resources_and_subscribe_uses_topicfilter():
    assert rules(allow("iot:Publish", topicfilter("a"))) == []
    assert rules(allow("iot:Publish", topic("a"))) == [("write", "a")]
    # Subscribe on a topic resource, Receive on a topicfilter: neither counts, so nothing is readable.
    assert rules(allow("iot:Subscribe", topic("a")), allow("iot:Receive", topicfilter("a"))) == []
    assert rules(allow("iot:Subscribe", topicfilter("a")), allow("iot:Receive", topic("a"))) == [
        ("read", "a")
    ]


def test_deny_on_a_topicfilter_resource_only_applies_through_subscribe():
    assert rules(ALLOW_ALL, deny("iot:Publish", topicfilter("a/b"))) == EVERYTHING
    assert rules(ALLOW_ALL, deny("iot:Subscribe", topic("a/b"))) == EVERYTHING
    assert rules(ALLOW_ALL, deny("iot:*", topicfilter("a/b")))[0] == ("deny", "a/b")


# -- whole-level and partial-level wildcards ---------------------------------


def test_a_whole_level_star_is_plus_in_the_middle_and_hash_at_the_end():
    assert rules(allow("iot:Publish", topic("$aws/things/*/jobs/get"))) == [
        ("write", "$aws/things/+/jobs/get")
    ]
    assert rules(allow("iot:Publish", topic("$aws/things/t1/jobs/*"))) == [("write", "$aws/things/t1/jobs/#")]
    assert rules(allow("iot:Publish", topic("a/*/b/*"))) == [("write", "a/+/b/#")]


def test_an_allow_with_a_partial_level_star_is_dropped():
    assert rules(allow("iot:Publish", topic("$aws/things/t1/jobs/job-*/get"))) == []
    assert rules(allow("iot:Publish", topic("$aws/things/t1/jobs/job-*"))) == []
    assert rules(*read_and_write("$aws/things/t*/jobs/get")) == []


def test_an_allow_with_a_question_mark_is_dropped():
    assert rules(allow("iot:Publish", topic("$aws/things/t?/jobs/get"))) == []
    assert rules(*read_and_write("a/b?")) == []


def test_a_dropped_allow_does_not_drop_the_expressible_ones_beside_it():
    result = rules(allow("iot:Publish", topic("a/job-*"), topic("b/*")))
    assert result == [("write", "b/#")]


def test_a_deny_with_a_partial_level_star_is_widened_to_the_subtree_where_it_starts():
    result = rules(ALLOW_ALL, deny("iot:Publish", topic("$aws/things/t1/jobs/job-*/update")))
    assert result[0] == ("deny", "$aws/things/t1/jobs/#")
    result = rules(ALLOW_ALL, deny("iot:Publish", topic("$aws/things/*/jobs/job-*")))
    assert result[0] == ("deny", "$aws/things/+/jobs/#")


def test_a_deny_with_a_question_mark_is_widened_too():
    result = rules(ALLOW_ALL, deny("iot:Receive", topic("$aws/things/t?/jobs/notify")))
    assert result[0] == ("deny", "$aws/things/#")


def test_a_deny_whose_first_level_is_a_glob_becomes_everything_with_its_dollar_twin():
    result = rules(ALLOW_ALL, deny("iot:Publish", topic("x*")))
    assert result[:2] == [("deny", "#"), ("deny", "$aws/#")]


# -- $aws twins --------------------------------------------------------------


def test_filters_starting_with_plus_get_a_dollar_aws_twin():
    assert rules(allow("iot:Publish", topic("*/jobs/get"))) == [
        ("write", "+/jobs/get"),
        ("write", "$aws/jobs/get"),
    ]


def test_a_leading_star_deny_gets_a_dollar_aws_twin():
    result = rules(ALLOW_ALL, deny("iot:Publish", topic("*/x")))
    assert result[:2] == [("deny", "+/x"), ("deny", "$aws/x")]


def test_filters_starting_with_a_literal_level_get_no_twin():
    assert rules(allow("iot:Publish", topic("a/*"))) == [("write", "a/#")]


# -- read access: Subscribe and Receive --------------------------------------


def test_read_needs_both_subscribe_and_receive():
    assert rules(allow("iot:Subscribe", topicfilter("a/*"))) == []
    assert rules(allow("iot:Receive", topic("a/*"))) == []
    assert rules(allow("iot:Subscribe", topicfilter("a/*")), allow("iot:Receive", topic("a/*"))) == [
        ("read", "a/#")
    ]


def test_read_is_the_narrower_of_subscribe_and_receive():
    jobs = "$aws/things/t1/jobs"
    narrow_subscribe = rules(
        allow("iot:Subscribe", topicfilter(f"{jobs}/notify")), allow("iot:Receive", topic(f"{jobs}/*"))
    )
    assert narrow_subscribe == [("read", f"{jobs}/notify")]
    narrow_receive = rules(
        allow("iot:Subscribe", topicfilter(f"{jobs}/*")), allow("iot:Receive", topic(f"{jobs}/notify-next"))
    )
    assert narrow_receive == [("read", f"{jobs}/notify-next")]


def test_read_of_disjoint_subscribe_and_receive_is_nothing():
    assert rules(allow("iot:Subscribe", topicfilter("a/*")), allow("iot:Receive", topic("b/*"))) == []


def test_read_of_partly_overlapping_filters_keeps_only_what_one_side_covers():
    # a/+/c and a/b/# overlap only in a/b/c, which neither filter alone stands for: nothing is granted.
    result = rules(allow("iot:Subscribe", topicfilter("a/*/c")), allow("iot:Receive", topic("a/b/*")))
    assert result == []


def test_read_and_write_on_the_same_filter_is_readwrite():
    assert rules(*read_and_write("a/*")) == [("readwrite", "a/#")]


def test_read_and_write_on_different_filters_stay_apart():
    result = rules(
        allow("iot:Subscribe", topicfilter("in/*")),
        allow("iot:Receive", topic("in/*")),
        allow("iot:Publish", topic("out/*")),
    )
    assert result == [("read", "in/#"), ("write", "out/#")]


def test_repeated_allows_are_written_once():
    result = rules(allow("iot:Publish", topic("a")), allow("iot:Publish", topic("a"), topic("a")))
    assert result == [("write", "a")]


# -- action patterns ---------------------------------------------------------


def test_action_wildcards_pick_the_actions_they_match():
    assert rules(allow("iot:Pub*", "*")) == [("write", "#"), ("write", "$aws/#")]
    assert rules(allow(["iot:Sub*", "iot:Rec*"], "*")) == [("read", "#"), ("read", "$aws/#")]
    assert rules(allow("iot:?ublish", topic("a"))) == [("write", "a")]
    assert rules(allow("iot:Sub*", "*")) == [], "Subscribe without Receive reads nothing"


def test_a_deny_with_an_action_wildcard_is_a_deny_line():
    assert rules(ALLOW_ALL, deny("iot:Rec*", topic("a")))[0] == ("deny", "a")


# -- policy variables --------------------------------------------------------


def test_thing_name_variable_with_one_thing():
    jobs = f"$aws/things/{THING}/jobs"
    result = rules(
        allow("iot:Publish", topic(f"{jobs}/*")),
        allow("iot:Subscribe", topicfilter(f"{jobs}/*")),
        allow("iot:Receive", topic(f"{jobs}/*")),
    )
    assert result == [("readwrite", "$aws/things/t1/jobs/#")]


def test_variables_stand_for_every_attached_thing():
    for variable in (THING, CLIENT):
        result = rules(allow("iot:Publish", topic(f"$aws/things/{variable}/jobs/get")), things=("t1", "t2"))
        assert result == [("write", "$aws/things/t1/jobs/get"), ("write", "$aws/things/t2/jobs/get")]


def test_a_variable_allow_without_things_grants_nothing():
    result = rules(
        allow("iot:Publish", topic(f"$aws/things/{THING}/jobs/get"), topic("open")),
        *read_and_write(f"$aws/things/{CLIENT}/jobs/*"),
        things=(),
    )
    assert result == [("write", "open")]


def test_a_variable_deny_names_each_thing():
    result = rules(
        ALLOW_ALL, deny("iot:Publish", topic(f"$aws/things/{THING}/jobs/start-next")), things=("t1", "t2")
    )
    assert result == [
        ("deny", "$aws/things/t1/jobs/start-next"),
        ("deny", "$aws/things/t2/jobs/start-next"),
        *EVERYTHING,
    ]


def test_variables_in_a_level_with_other_text_are_filled_in():
    result = rules(allow("iot:Publish", topic(f"dev/{THING}-telemetry")), things=("t1",))
    assert result == [("write", "dev/t1-telemetry")]


def test_a_thing_name_is_never_read_as_a_glob_or_filter():
    # Thing names may hold ':', '_' and '-'; none of them has a meaning in either syntax.
    result = rules(allow("iot:Publish", topic(f"$aws/things/{THING}/jobs/get")), things=("a:b_c-d",))
    assert result == [("write", "$aws/things/a:b_c-d/jobs/get")]


def test_statements_without_topic_actions_or_resources_add_nothing():
    assert policy_rules((), ("t1",), PREFIX) == []


def test_a_deny_whose_arn_wildcard_reaches_past_the_resource_type_denies_everything():
    for resource in ("arn:aws:iot:*", f"{PREFIX}:*", "arn:*", f"{PREFIX}:top*"):
        got = rules(deny("iot:Publish", resource), ALLOW_ALL)
        assert got[:2] == [("deny", "#"), ("deny", "$aws/#")], resource


def test_a_deny_naming_another_resource_type_denies_nothing_here():
    assert rules(deny("iot:*", f"{PREFIX}:client/*"), ALLOW_ALL) == EVERYTHING


def test_plus_and_hash_in_an_allowed_topic_name_are_literal_and_allow_nothing():
    assert rules(allow("iot:Publish", topic("a/#"))) == []
    assert rules(allow("iot:Publish", topic("a/+/b"))) == []


def test_plus_and_hash_in_a_denied_topic_name_deny_at_least_that_much():
    assert ("deny", "a/#") in rules(deny("iot:Publish", topic("a/#")), ALLOW_ALL)


def test_a_deny_on_the_client_id_of_a_certificate_without_things_covers_any_client_id():
    got = rules(deny("iot:Publish", topic(f"$aws/things/{CLIENT}/jobs/get")), ALLOW_ALL, things=())
    assert ("deny", "$aws/things/+/jobs/get") in got
