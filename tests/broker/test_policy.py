"""AWS IoT policy evaluation: actions, resources, wildcards, variables, Deny over Allow."""

import json

import pytest

from iot_jobs_bridge.broker.policy import PolicyError, allowed, parse_policy, resource_arn

PREFIX = "arn:aws:iot:us-east-1:123456789012"


def policy(*statements):
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def check(statements, action, name, thing="t1", client="t1"):
    variables = {"iot:Connection.Thing.ThingName": thing, "iot:ClientId": client}
    return allowed(statements, action, resource_arn(PREFIX, action, name), variables)


def test_allow_everything_allows_any_client_id_and_any_topic():
    everything = policy({"Effect": "Allow", "Action": "iot:*", "Resource": "*"})
    assert check(everything, "iot:Connect", "monitor-42", client="monitor-42")
    assert check(everything, "iot:Publish", "$aws/things/other/jobs/get")
    assert check(everything, "iot:Subscribe", "$aws/things/+/jobs/#")


def test_no_matching_allow_is_refused():
    publish_only = policy({"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{PREFIX}:topic/a/*"})
    assert check(publish_only, "iot:Publish", "a/b")
    assert not check(publish_only, "iot:Receive", "a/b")
    assert not check(publish_only, "iot:Publish", "b/a")


def test_an_explicit_deny_wins_over_an_allow():
    statements = policy(
        {"Effect": "Allow", "Action": "iot:*", "Resource": "*"},
        {"Effect": "Deny", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{PREFIX}:topic/secret/*"},
    )
    assert check(statements, "iot:Publish", "open/x")
    assert not check(statements, "iot:Publish", "secret/x")
    assert not check(statements, "iot:Receive", "secret/x")
    assert check(statements, "iot:Subscribe", "secret/#"), "a topicfilter is not a topic"


def test_policy_variables_confine_a_certificate_to_its_thing():
    thing = "${iot:Connection.Thing.ThingName}"
    statements = policy(
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{PREFIX}:client/{thing}"},
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"{PREFIX}:topic/$aws/things/{thing}/jobs/*",
        },
    )
    assert check(statements, "iot:Connect", "t1")
    assert not check(statements, "iot:Connect", "t2", client="t2")
    assert check(statements, "iot:Publish", "$aws/things/t1/jobs/get")
    assert not check(statements, "iot:Publish", "$aws/things/t2/jobs/get")
    assert not check(statements, "iot:Publish", "$aws/things/t1/jobs/get", thing="")


def test_question_mark_matches_one_character():
    statements = policy({"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{PREFIX}:topic/room?"})
    assert check(statements, "iot:Publish", "room1")
    assert not check(statements, "iot:Publish", "room12")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"Version": "2012-10-17"}', "needs a Statement"),
        (
            '{"Statement": {"Effect": "Maybe", "Action": "iot:*", "Resource": "*"}}',
            "Effect must be Allow or Deny",
        ),
        ('{"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}', "names no action"),
        ('{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": []}}', "non-empty list"),
        (
            '{"Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "${aws:username}"}}',
            "unsupported variable",
        ),
    ],
)
def test_bad_documents_are_named(document, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(document)
