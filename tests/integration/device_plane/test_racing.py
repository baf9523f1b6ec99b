"""Device updates racing with CancelJob(force) and DeleteJob(force) from other threads."""

import json
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..conftest import ACCESS_KEY_ID, SECRET
from ._support import client_token, create_job, wait_until

ALLOWED_REJECTIONS = {"ResourceNotFound", "InvalidStateTransition"}


def test_updates_racing_with_forced_cancel_and_delete(server, iot, connect, unique):
    devices = [connect(f"d{i}") for i in range(3)]
    things = [d.thing for d in devices]
    jobs = [create_job(iot, f"{unique}-j{i:02}", things) for i in range(12)]
    # Interleaved, so that the head after each change is often a job being canceled or deleted.
    cancel, delete, cancel_then_delete, left_alone = jobs[0::4], jobs[1::4], jobs[2::4], jobs[3::4]
    for device in devices:
        device.settle()

    # Each device sends three updates per job, all at once (36 requests, under the burst of 40),
    # in rounds so that every job's updates are spread over the whole stream.
    sent: dict[str, list[tuple[str, str]]] = {d.thing: [] for d in devices}
    for step, status in enumerate(("IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED")):
        for device in devices:
            for job_id in jobs:
                token = f"{job_id}.{step}"
                sent[device.thing].append((token, job_id))
                body = {"status": status, "statusDetails": {"step": str(step)}, "clientToken": token}
                device.client.publish(device.topic(f"{job_id}/update"), json.dumps(body), qos=1)

    http_errors: list[tuple[str, str, int, str]] = []
    start = threading.Barrier(len(cancel) + len(delete) + len(cancel_then_delete))
    # No retries: a first attempt that fails must show here, not be hidden by a second one.
    client = boto3.client(
        "iot",
        endpoint_url=server.http_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )

    def call(name, job_id, operation):
        try:
            operation()
        except ClientError as error:
            status = error.response["ResponseMetadata"]["HTTPStatusCode"]
            http_errors.append((name, job_id, status, error.response["Error"]["Code"]))

    def run(job_id, *operations):
        start.wait(10)
        for name, operation in operations:
            call(name, job_id, operation)

    def canceling(job_id):
        return ("CancelJob", lambda: client.cancel_job(jobId=job_id, force=True, comment="race"))

    def deleting(job_id):
        return ("DeleteJob", lambda: client.delete_job(jobId=job_id, force=True))

    threads = [
        *(threading.Thread(target=run, args=(j, canceling(j))) for j in cancel),
        *(threading.Thread(target=run, args=(j, deleting(j))) for j in delete),
        *(threading.Thread(target=run, args=(j, canceling(j), deleting(j))) for j in cancel_then_delete),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # Never a 5xx; a job the devices completed first may refuse the cancel (it is COMPLETED).
    assert all(status < 500 for _, _, status, _ in http_errors), http_errors
    assert {(name, code) for name, _, _, code in http_errors} <= {("CancelJob", "InvalidRequestException")}

    # Every request got exactly one reply: accepted, or refused because the execution ended or went away.
    outcomes: dict[tuple[str, str], list[dict]] = {}
    for device in devices:
        tokens = {token for token, _ in sent[device.thing]}
        by_token = _update_replies(device, tokens)
        assert sorted(by_token) == sorted(tokens), "a request got no reply"
        assert all(len(answers) == 1 for answers in by_token.values()), "a request got two replies"
        for token, job_id in sent[device.thing]:
            (reply,) = by_token[token]
            if reply["outcome"] == "rejected":
                assert reply["code"] in ALLOWED_REJECTIONS, reply
            outcomes.setdefault((device.thing, job_id), []).append(reply)

    # The final state agrees with what each device was told.
    for job_id in delete + cancel_then_delete:
        wait_until(lambda j=job_id: _gone(iot, j), what=f"deletion of {job_id}")
    for job_id in jobs:
        for thing in things:
            told = outcomes[(thing, job_id)]
            final_update = told[-1]
            # Once refused, every later update of that execution is refused too.
            seen = "".join("a" if t["outcome"] == "accepted" else "r" for t in told)
            assert seen in ("aaa", "aar", "arr", "rrr"), (job_id, thing, told)
            if job_id in delete + cancel_then_delete:
                assert _execution(iot, job_id, thing) is None
                continue
            execution = _execution(iot, job_id, thing)
            if final_update["outcome"] == "accepted":
                assert execution["status"] == "SUCCEEDED", (job_id, thing, told)
            else:
                assert execution["status"] == "CANCELED", (job_id, thing, told)
                if final_update["code"] == "InvalidStateTransition":
                    assert final_update["executionState"]["status"] == "CANCELED"
            if job_id in left_alone:
                assert [t["outcome"] for t in told] == ["accepted"] * 3
        if job_id in cancel + left_alone:
            job = iot.describe_job(jobId=job_id)["job"]
            details = job["jobProcessDetails"]
            assert details["numberOfQueuedThings"] == details["numberOfInProgressThings"] == 0
            assert details["numberOfSucceededThings"] + details["numberOfCanceledThings"] == len(things)
            refused = ("CancelJob", job_id) in {(name, j) for name, j, _, _ in http_errors}
            expected = "COMPLETED" if (job_id in left_alone or refused) else "CANCELED"
            assert job["status"] == expected, job
            assert (details["numberOfCanceledThings"] == 0) == (expected == "COMPLETED"), job
    for device in devices:
        assert device.pending() == ([], [])


def _update_replies(device, tokens):
    """The replies to the update requests with these tokens, by token, once all are in."""

    def is_reply(message):
        topic, payload = message
        return topic.endswith(("/update/accepted", "/update/rejected")) and client_token(payload) in tokens

    device.wait_since(0, is_reply, len(tokens), timeout=30)
    device.marker()  # a later round trip: any duplicate would have arrived by now
    by_token: dict[str, list[dict]] = {}
    for topic, payload in device.since(0, is_reply):
        body = json.loads(payload)
        by_token.setdefault(body["clientToken"], []).append({"outcome": topic.rsplit("/", 1)[1], **body})
    return by_token


def _gone(iot, job_id):
    try:
        iot.describe_job(jobId=job_id)
    except iot.exceptions.ResourceNotFoundException:
        return True
    return False


def _execution(iot, job_id, thing):
    try:
        return iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
    except iot.exceptions.ResourceNotFoundException:
        return None
