"""Control-plane calls per second through boto3: this server against moto's, in one run.

    python bench/control_plane.py [--calls 300] [--big 10000]

For each server: CreateJob with one target, DescribeJob, and a full
ListJobExecutionsForJob of a job with BIG executions (every page). Calls are
made one after another from one boto3 client, as an operator's script would.
moto's server is installed into this environment if it is missing, and runs
as its own process on loopback, like ours. Ours keeps everything in SQLite
(committed before each reply); moto keeps it in memory.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from _server import KEY_ID, SECRET, running_server
from botocore.config import Config


def client(url: str) -> Any:
    return boto3.client(
        "iot",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}, max_pool_connections=16),
    )


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    if importlib.util.find_spec("moto") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "moto[server]"], check=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def rate(calls: int, action: Callable[[int], object]) -> float:
    began = time.perf_counter()
    for n in range(calls):
        action(n)
    return calls / (time.perf_counter() - began)


def measure(url: str, calls: int, big: int) -> dict[str, float]:
    iot = client(url)
    thing_arn = iot.create_thing(thingName="one")["thingArn"]
    group_arn = iot.create_thing_group(thingGroupName="big")["thingGroupArn"]

    def register(n: int) -> str:
        name = f"big-{n:05d}"
        arn: str = iot.create_thing(thingName=name)["thingArn"]
        iot.add_thing_to_thing_group(thingGroupName="big", thingName=name)
        return arn

    with ThreadPoolExecutor(8) as pool:
        thing_arns = list(pool.map(register, range(big)))
    iot.create_job(jobId="big-job", targets=[group_arn], document=json.dumps({"operation": "x"}))
    if _count_executions(iot, "big-job") < big:
        # A server that does not expand group targets gets the things themselves.
        iot.create_job(jobId="big-job-things", targets=thing_arns, document=json.dumps({"operation": "x"}))
        big_job = "big-job-things"
    else:
        big_job = "big-job"
    listed = _count_executions(iot, big_job)
    document = json.dumps({"operation": "x"})
    results = {
        "CreateJob": rate(
            calls, lambda n: iot.create_job(jobId=f"job-{n}", targets=[thing_arn], document=document)
        ),
        "DescribeJob": rate(calls, lambda n: iot.describe_job(jobId=f"job-{n}")),
    }
    timings = []
    for _ in range(3):
        began = time.perf_counter()
        _count_executions(iot, big_job)
        timings.append(time.perf_counter() - began)
    results["ListJobExecutionsForJob (executions listed/s)"] = listed / statistics.median(timings)
    results["executions in the big job"] = listed
    return results


def _count_executions(iot: Any, job_id: str) -> int:
    count = 0
    for page in iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id):
        count += len(page["executionSummaries"])
    return count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--big", type=int, default=10_000)
    args = parser.parse_args()
    with running_server() as server:
        ours = measure(server.http_url, args.calls, args.big)
    with moto_server() as url:
        moto = measure(url, args.calls, args.big)
    print(f"{args.calls} calls of each, one after another; the big job has {args.big} executions")
    print("| call | this server (per s) | moto server (per s) | this ÷ moto |")
    print("|---|---|---|---|")
    for name in ours:
        if name.startswith("executions"):
            continue
        print(f"| {name} | {ours[name]:.0f} | {moto[name]:.0f} | {ours[name] / moto[name]:.2f} |")


if __name__ == "__main__":
    main()
