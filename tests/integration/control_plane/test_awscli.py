"""The AWS CLI against the control plane: create-job and list-jobs."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ..conftest import ACCESS_KEY_ID, SECRET
from ._support import group_arn, job_arn

AWS = Path(sys.executable).with_name("aws")


def _aws(server, tmp_path, *args: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        # No profile, config or credentials file of the machine running the tests is read.
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_MAX_ATTEMPTS="1",
    )
    completed = subprocess.run(
        [
            str(AWS),
            "iot",
            *args,
            "--endpoint-url",
            server.http_url,
            "--region",
            "us-east-1",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout) if completed.stdout.strip() else {}


def test_create_job_and_list_jobs(server, iot, unique, tmp_path):
    iot.create_thing(thingName=f"{unique}-t")
    iot.create_thing_group(thingGroupName=f"{unique}-g")
    iot.add_thing_to_thing_group(thingGroupName=f"{unique}-g", thingName=f"{unique}-t")

    created = _aws(
        server,
        tmp_path,
        "create-job",
        "--job-id",
        f"{unique}-cli",
        "--targets",
        group_arn(f"{unique}-g"),
        "--document",
        '{"operation": "reboot"}',
        "--description",
        "from the CLI",
        "--timeout-config",
        "inProgressTimeoutInMinutes=15",
    )
    assert created == {
        "jobArn": job_arn(f"{unique}-cli"),
        "jobId": f"{unique}-cli",
        "description": "from the CLI",
    }

    listed = _aws(server, tmp_path, "list-jobs", "--thing-group-name", f"{unique}-g")
    assert [job["jobId"] for job in listed["jobs"]] == [f"{unique}-cli"]
    summary = listed["jobs"][0]
    assert (summary["jobArn"], summary["status"], summary["targetSelection"]) == (
        job_arn(f"{unique}-cli"),
        "IN_PROGRESS",
        "SNAPSHOT",
    )
    # The CLI prints the wire value: epoch seconds as a JSON number.
    assert abs(summary["createdAt"] - time.time()) < 600

    # What the CLI created is what boto3 sees.
    job = iot.describe_job(jobId=f"{unique}-cli")["job"]
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 15}
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 1
    assert iot.get_job_document(jobId=f"{unique}-cli")["document"] == '{"operation": "reboot"}'
