"""Request deadlines and the runner's periodic look, against a scripted broker that plays the service."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest

from iot_jobs_bridge.device_sdk import AsyncJobsClient, JobRunner, RequestTimedOut

from .fake_broker import answering, fake_broker

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def silent_service(_topic: str, _payload: bytes) -> list[tuple[str, bytes]]:
    return []


async def test_each_request_times_out_at_its_own_deadline_whatever_the_order():
    async with (
        fake_broker(lambda peer: answering(peer, silent_service)) as (port, _),
        AsyncJobsClient("t1", f"mqtt://127.0.0.1:{port}") as client,
    ):
        await client.wait_connected(10)
        began = time.monotonic()
        ended: dict[str, float] = {}

        async def call(name: str, limit: float, after: float = 0.0) -> None:
            await asyncio.sleep(after)  # when the request starts is part of the case
            with pytest.raises(RequestTimedOut, match=f"within {limit:g}s"):
                await client.describe("job-1", timeout=limit)
            ended[name] = time.monotonic() - began

        # A long wait first, then a shorter one that must not wait for it, then a
        # shorter one still started later: each ends at its own deadline.
        await asyncio.gather(call("long", 2.0), call("medium", 1.0), call("short", 0.3, after=0.2))
    assert list(sorted(ended, key=ended.__getitem__)) == ["short", "medium", "long"]
    assert ended["short"] >= 0.5 and ended["medium"] >= 1.0 and ended["long"] >= 2.0
    assert ended["long"] < 6.0, "no deadline waits for a later one"


async def test_the_runner_looks_again_every_recheck_interval_after_its_wait_began():
    describes: list[float] = []
    enough = asyncio.Event()

    def service(topic: str, payload: bytes) -> list[tuple[str, bytes]]:
        token = json.loads(payload)["clientToken"]
        if topic == "$aws/things/t1/jobs/get":
            body = {"inProgressJobs": [], "queuedJobs": [], "timestamp": 1, "clientToken": token}
        elif topic == "$aws/things/t1/jobs/$next/get":
            describes.append(time.monotonic())
            if len(describes) >= 6:
                enough.set()
            body = {"timestamp": 1, "clientToken": token}  # nothing pending
        else:
            return []
        return [(f"{topic}/accepted", json.dumps(body).encode())]

    async with (
        fake_broker(lambda peer: answering(peer, service)) as (port, _),
        AsyncJobsClient("t1", f"mqtt://127.0.0.1:{port}") as client,
    ):
        runner = JobRunner(client, recheck_interval=0.3)
        task = asyncio.ensure_future(runner.run())
        async with asyncio.timeout(15):
            await enough.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # The first looks come from starting and from the resync after connecting; after
    # those, only the periodic look asks, never sooner than the interval.
    gaps = [later - earlier for earlier, later in itertools.pairwise(describes[2:])]
    assert gaps and all(gap >= 0.29 for gap in gaps), gaps
