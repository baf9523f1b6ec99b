"""The AWS IoT policy API through boto3."""

import json

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

ALLOW = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}
DENY = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iot:Publish", "Resource": "*"}]}


def error(call, **params):
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_policies_have_versions_and_attach_to_certificates(iot, unique):
    name = f"{unique}-p"
    created = iot.create_policy(policyName=name, policyDocument=json.dumps(ALLOW))
    assert created["policyArn"].endswith(f":policy/{name}") and created["policyVersionId"] == "1"
    version = iot.create_policy_version(policyName=name, policyDocument=json.dumps(DENY), setAsDefault=True)
    assert version["policyVersionId"] == "2" and version["isDefaultVersion"] is True
    got = iot.get_policy(policyName=name)
    assert got["defaultVersionId"] == "2" and json.loads(got["policyDocument"]) == DENY
    assert name in [p["policyName"] for p in iot.list_policies(pageSize=250)["policies"]]
    cert = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_policy(policyName=name, target=cert)
    assert [p["policyName"] for p in iot.list_attached_policies(target=cert)["policies"]] == [name]
    code, message = error(iot.delete_policy, policyName=name)
    assert code == "DeleteConflictException" and cert in message
    iot.detach_policy(policyName=name, target=cert)
    assert iot.list_attached_policies(target=cert)["policies"] == []
    iot.delete_policy(policyName=name)
    assert error(iot.get_policy, policyName=name)[0] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not valid JSON"),
        (
            json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
            "names no action",
        ),
    ],
)
def test_malformed_policies_are_refused_with_the_reason(iot, unique, document, message):
    code, text = error(iot.create_policy, policyName=f"{unique}-bad", policyDocument=document)
    assert code == "MalformedPolicyException" and message in text


def test_a_policy_attaches_only_to_certificates_that_exist(iot, unique):
    iot.create_policy(policyName=f"{unique}-q", policyDocument=json.dumps(ALLOW))
    missing = "arn:aws:iot:us-east-1:123456789012:cert/" + "0" * 64
    assert (
        error(iot.attach_policy, policyName=f"{unique}-q", target=missing)[0] == "ResourceNotFoundException"
    )
