"""Shared pieces for the device SDK integration tests."""

import asyncio
import json
import time
from pathlib import Path


def make_thing(iot, name: str) -> str:
    """Register ``name`` and return its ARN (the broker admits registered things only)."""
    iot.create_thing(thingName=name)
    return iot.describe_thing(thingName=name)["thingArn"]


def create_job(iot, job_id: str, thing_arn: str, document: dict, **extra) -> None:
    iot.create_job(jobId=job_id, targets=[thing_arn], document=json.dumps(document), **extra)


def execution(iot, job_id: str, thing: str) -> dict:
    return iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]


def details(record: dict) -> dict:
    return record.get("statusDetails", {}).get("detailsMap", {})


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


async def wait_until_async(predicate, timeout: float = 15.0, interval: float = 0.05):  # noqa: ASYNC109
    """``wait_until`` for async tests; ``predicate`` is a plain (quick) function."""
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(predicate)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def write_handler(directory: Path, name: str, body: str) -> Path:
    """An executable ``#!/bin/sh`` handler in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def pid_alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
