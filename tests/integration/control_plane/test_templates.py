"""Job templates: custom templates, AWS-managed templates, and jobs created from both."""

import datetime
import json

from ._support import (
    create_things,
    device,
    fails_with,
    job_arn,
    managed_template_arn,
    template_arn,
    thing_arn,
)

ROLLOUT = {"maximumPerMinute": 120}
ABORT = {
    "criteriaList": [
        {
            "failureType": "REJECTED",
            "action": "CANCEL",
            "thresholdPercentage": 10.0,
            "minNumberOfExecutedThings": 3,
        }
    ]
}
TIMEOUT = {"inProgressTimeoutInMinutes": 45}
RETRY = {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 3}]}
PRESIGNED = {"roleArn": "arn:aws:iam::123456789012:role/jobs-s3-access", "expiresInSec": 1200}
WINDOWS = [{"startTime": "cron(0 2 ? * SUN *)", "durationInMinutes": 120}]
MANAGED_NAMES = [
    "AWS-Download-File",
    "AWS-Install-Application",
    "AWS-Reboot",
    "AWS-Remove-Application",
    "AWS-Restart-Application",
    "AWS-Run-Command",
    "AWS-Start-Application",
    "AWS-Stop-Application",
]


# -- custom templates ----------------------------------------------------------
def test_create_and_describe_a_template(iot, unique):
    document = '{"operation": "upgrade", "version": "2.1"}'
    created = iot.create_job_template(
        jobTemplateId=f"{unique}-tpl",
        description="upgrade to 2.1",
        document=document,
        presignedUrlConfig=PRESIGNED,
        jobExecutionsRolloutConfig=ROLLOUT,
        abortConfig=ABORT,
        timeoutConfig=TIMEOUT,
        jobExecutionsRetryConfig=RETRY,
        maintenanceWindows=WINDOWS,
    )
    created.pop("ResponseMetadata")
    assert created == {"jobTemplateArn": template_arn(f"{unique}-tpl"), "jobTemplateId": f"{unique}-tpl"}

    described = iot.describe_job_template(jobTemplateId=f"{unique}-tpl")
    described.pop("ResponseMetadata")
    created_at = described.pop("createdAt")
    assert isinstance(created_at, datetime.datetime)
    assert described == {
        "jobTemplateArn": template_arn(f"{unique}-tpl"),
        "jobTemplateId": f"{unique}-tpl",
        "description": "upgrade to 2.1",
        "document": document,
        "presignedUrlConfig": PRESIGNED,
        "jobExecutionsRolloutConfig": ROLLOUT,
        "abortConfig": ABORT,
        "timeoutConfig": TIMEOUT,
        "jobExecutionsRetryConfig": RETRY,
        "maintenanceWindows": WINDOWS,
    }


def test_duplicate_template_id_is_a_conflict(iot, unique):
    iot.create_job_template(jobTemplateId=f"{unique}-tpl", description="first", document='{"n": 1}')
    with fails_with(iot, "ConflictException", 409, f"Job template {unique}-tpl already exists"):
        iot.create_job_template(jobTemplateId=f"{unique}-tpl", description="second", document='{"n": 2}')
    described = iot.describe_job_template(jobTemplateId=f"{unique}-tpl")
    assert (described["description"], described["document"]) == ("first", '{"n": 1}')


def test_template_document_sources(iot, unique):
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job_template(jobTemplateId=f"{unique}-none", description="d")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job_template(jobTemplateId=f"{unique}-array", description="d", document="[]")
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job_template(
            jobTemplateId=f"{unique}-s3", description="d", documentSource="https://s3.amazonaws.com/b/k.json"
        )
    with fails_with(iot, "InvalidRequestException", 400, match="regular expression pattern"):
        iot.create_job_template(jobTemplateId="has space", description="d", document="{}")
    for refused in ("none", "array", "s3"):
        with fails_with(iot, "ResourceNotFoundException", 404):
            iot.describe_job_template(jobTemplateId=f"{unique}-{refused}")


def test_template_from_an_existing_job(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    document = '{"operation": "cloned"}'
    iot.create_job(
        jobId=f"{unique}-j",
        document=document,
        targets=[target],
        jobExecutionsRolloutConfig=ROLLOUT,
        abortConfig=ABORT,
        timeoutConfig=TIMEOUT,
        jobExecutionsRetryConfig=RETRY,
        presignedUrlConfig=PRESIGNED,
    )
    iot.create_job_template(
        jobTemplateId=f"{unique}-tpl", description="from a job", jobArn=job_arn(f"{unique}-j")
    )
    described = iot.describe_job_template(jobTemplateId=f"{unique}-tpl")
    assert described["description"] == "from a job"
    assert described["document"] == document
    assert described["jobExecutionsRolloutConfig"] == ROLLOUT
    assert described["abortConfig"] == ABORT
    assert described["timeoutConfig"] == TIMEOUT
    assert described["jobExecutionsRetryConfig"] == RETRY
    assert described["presignedUrlConfig"] == PRESIGNED

    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.create_job_template(
            jobTemplateId=f"{unique}-ghost", description="d", jobArn=job_arn(f"{unique}-nope")
        )
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job_template(jobTemplateId=f"{unique}-ghost")


def test_delete_template(iot, unique):
    iot.create_job_template(jobTemplateId=f"{unique}-tpl", description="d", document="{}")
    iot.delete_job_template(jobTemplateId=f"{unique}-tpl")
    with fails_with(iot, "ResourceNotFoundException", 404, f"Job template {unique}-tpl does not exist"):
        iot.describe_job_template(jobTemplateId=f"{unique}-tpl")
    with fails_with(iot, "ResourceNotFoundException", 404, f"Job template {unique}-tpl does not exist"):
        iot.delete_job_template(jobTemplateId=f"{unique}-tpl")
    # The id can be used again.
    iot.create_job_template(jobTemplateId=f"{unique}-tpl", description="again", document='{"v": 2}')
    assert iot.describe_job_template(jobTemplateId=f"{unique}-tpl")["description"] == "again"


def test_list_job_templates_summaries(iot, unique):
    iot.create_job_template(jobTemplateId=f"{unique}-tpl", description="listed", document="{}")
    found = [
        item
        for page in iot.get_paginator("list_job_templates").paginate()
        for item in page["jobTemplates"]
        if item["jobTemplateId"].startswith(unique)
    ]
    assert len(found) == 1
    summary = found[0]
    assert (summary["jobTemplateArn"], summary["jobTemplateId"], summary["description"]) == (
        template_arn(f"{unique}-tpl"),
        f"{unique}-tpl",
        "listed",
    )
    assert isinstance(summary["createdAt"], datetime.datetime)


# -- jobs from custom templates ----------------------------------------------------
def test_job_from_a_custom_template_inherits_document_and_configs(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    document = '{"operation": "from-template"}'
    arn = iot.create_job_template(
        jobTemplateId=f"{unique}-tpl",
        description="d",
        document=document,
        jobExecutionsRolloutConfig=ROLLOUT,
        abortConfig=ABORT,
        timeoutConfig=TIMEOUT,
        jobExecutionsRetryConfig=RETRY,
    )["jobTemplateArn"]

    iot.create_job(jobId=f"{unique}-inherit", jobTemplateArn=arn, targets=[target])
    job = iot.describe_job(jobId=f"{unique}-inherit")["job"]
    assert iot.get_job_document(jobId=f"{unique}-inherit")["document"] == document
    assert job["jobTemplateArn"] == arn
    assert job["jobExecutionsRolloutConfig"] == ROLLOUT
    assert job["abortConfig"] == ABORT
    assert job["timeoutConfig"] == TIMEOUT
    assert job["jobExecutionsRetryConfig"] == RETRY

    override_timeout = {"inProgressTimeoutInMinutes": 5}
    override_abort = {
        "criteriaList": [
            {
                "failureType": "ALL",
                "action": "CANCEL",
                "thresholdPercentage": 50.0,
                "minNumberOfExecutedThings": 1,
            }
        ]
    }
    iot.create_job(
        jobId=f"{unique}-override",
        jobTemplateArn=arn,
        targets=[target],
        timeoutConfig=override_timeout,
        abortConfig=override_abort,
    )
    job = iot.describe_job(jobId=f"{unique}-override")["job"]
    assert job["timeoutConfig"] == override_timeout
    assert job["abortConfig"] == override_abort
    assert job["jobExecutionsRolloutConfig"] == ROLLOUT
    assert job["jobExecutionsRetryConfig"] == RETRY

    # Deleting the template leaves the jobs made from it alone.
    iot.delete_job_template(jobTemplateId=f"{unique}-tpl")
    assert iot.get_job_document(jobId=f"{unique}-inherit")["document"] == document


def test_job_from_a_custom_template_errors(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    arn = iot.create_job_template(jobTemplateId=f"{unique}-tpl", description="d", document="{}")[
        "jobTemplateArn"
    ]
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job(
            jobId=f"{unique}-j", jobTemplateArn=arn, documentParameters={"a": "b"}, targets=[target]
        )
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job(jobId=f"{unique}-j", jobTemplateArn=arn, document="{}", targets=[target])
    with fails_with(iot, "ResourceNotFoundException", 404, f"Job template {unique}-nope does not exist"):
        iot.create_job(jobId=f"{unique}-j", jobTemplateArn=template_arn(f"{unique}-nope"), targets=[target])
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job(jobId=f"{unique}-j")


# -- AWS-managed templates ---------------------------------------------------------
def test_describe_managed_job_template(iot):
    described = iot.describe_managed_job_template(templateName="AWS-Download-File")
    assert described["templateName"] == "AWS-Download-File"
    assert described["templateArn"] == managed_template_arn("AWS-Download-File")
    assert described["templateVersion"] == "1.0"
    assert described["description"] == "A managed job template for downloading a file."
    assert described["environments"] == ["LINUX"]
    assert [(p["key"], p["optional"]) for p in described["documentParameters"]] == [
        ("downloadUrl", False),
        ("filePath", False),
        ("runAsUser", True),
        ("pathToHandler", True),
    ]
    assert described["documentParameters"][2]["regex"] == "(.){0,256}"
    assert "${aws:iot:parameter:downloadUrl}" in described["document"]
    json.loads(described["document"])

    versioned = iot.describe_managed_job_template(templateName="AWS-Download-File", templateVersion="1.0")
    assert versioned["document"] == described["document"]
    with fails_with(iot, "ResourceNotFoundException", 404, "Managed job template AWS-Nope does not exist"):
        iot.describe_managed_job_template(templateName="AWS-Nope")
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_managed_job_template(templateName="AWS-Download-File", templateVersion="9.9")


def test_list_managed_job_templates(iot):
    listed = iot.list_managed_job_templates()["managedJobTemplates"]
    assert [t["templateName"] for t in listed] == MANAGED_NAMES
    reboot = next(t for t in listed if t["templateName"] == "AWS-Reboot")
    assert reboot == {
        "templateArn": managed_template_arn("AWS-Reboot"),
        "templateName": "AWS-Reboot",
        "description": "A managed job template for rebooting the device.",
        "environments": ["LINUX"],
        "templateVersion": "1.0",
    }
    only = iot.list_managed_job_templates(templateName="AWS-Run-Command")["managedJobTemplates"]
    assert [t["templateName"] for t in only] == ["AWS-Run-Command"]


def test_job_from_a_managed_template_substitutes_parameters(server, iot, unique):
    thing = f"{unique}-t"
    create_things(iot, thing)
    arn = managed_template_arn("AWS-Download-File")
    parameters = {"downloadUrl": "https://example.com/app.conf", "filePath": "/etc/app.conf"}
    iot.create_job(
        jobId=f"{unique}-j", jobTemplateArn=arn, documentParameters=parameters, targets=[thing_arn(thing)]
    )

    document = json.loads(iot.get_job_document(jobId=f"{unique}-j")["document"])
    action = document["steps"][0]["action"]
    assert action["input"]["args"] == ["https://example.com/app.conf", "/etc/app.conf"]
    assert action["input"]["handler"] == "download-file.sh"
    assert "${aws:iot:parameter:" not in json.dumps(document)

    raw = iot.get_job_document(jobId=f"{unique}-j", beforeSubstitution=True)["document"]
    assert raw == iot.describe_managed_job_template(templateName="AWS-Download-File")["document"]
    assert "${aws:iot:parameter:downloadUrl}" in raw

    job = iot.describe_job(jobId=f"{unique}-j")["job"]
    assert job["jobTemplateArn"] == arn
    assert job["documentParameters"] == parameters

    # The device receives the substituted document.
    with device(server, thing) as dev:
        started = dev.start_next()
    assert started["jobDocument"] == document


def test_managed_template_parameter_errors(iot, unique):
    [target] = create_things(iot, f"{unique}-t")
    arn = managed_template_arn("AWS-Download-File")
    with fails_with(
        iot,
        "InvalidRequestException",
        400,
        "Managed job template AWS-Download-File:1.0 requires documentParameters: filePath",
    ):
        iot.create_job(
            jobId=f"{unique}-j",
            jobTemplateArn=arn,
            documentParameters={"downloadUrl": "https://example.com/x"},
            targets=[target],
        )
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job(jobId=f"{unique}-j", jobTemplateArn=arn, targets=[target])
    with fails_with(
        iot,
        "InvalidRequestException",
        400,
        "documentParameters value for runAsUser does not match the pattern (.){0,256}"
        " of managed job template AWS-Download-File:1.0",
    ):
        iot.create_job(
            jobId=f"{unique}-j",
            jobTemplateArn=arn,
            documentParameters={"downloadUrl": "u", "filePath": "f", "runAsUser": "u" * 257},
            targets=[target],
        )
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job(
            jobId=f"{unique}-j",
            jobTemplateArn=arn,
            documentParameters={"downloadUrl": "u", "filePath": "f", "unexpected": "x"},
            targets=[target],
        )
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.create_job(jobId=f"{unique}-j", jobTemplateArn=managed_template_arn("AWS-Nope"), targets=[target])
    with fails_with(iot, "InvalidRequestException", 400):
        iot.create_job(
            jobId=f"{unique}-j",
            jobTemplateArn="arn:aws:iot:eu-west-1::jobtemplate/AWS-Reboot:1.0",
            targets=[target],
        )
    with fails_with(iot, "ResourceNotFoundException", 404):
        iot.describe_job(jobId=f"{unique}-j")

    # A template without required parameters needs none.
    iot.create_job(
        jobId=f"{unique}-reboot", jobTemplateArn=managed_template_arn("AWS-Reboot"), targets=[target]
    )
    assert "${aws:iot:parameter:" not in iot.get_job_document(jobId=f"{unique}-reboot")["document"]
