import asyncio

import pytest

from iot_jobs_bridge.jobs_service.device_plane.request_queue import FairQueue
from iot_jobs_bridge.jobs_service.device_plane.throttle import Throttle


class Ticker:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_bucket_allows_the_burst_then_the_rate():
    tick = Ticker()
    throttle = Throttle(rate=2.0, burst=3, monotonic=tick)
    assert [throttle.allow("t1") for _ in range(4)] == [True, True, True, False]
    assert throttle.allow("t2") is True  # buckets are per thing
    tick.now += 0.5  # one token back at 2/s
    assert [throttle.allow("t1") for _ in range(2)] == [True, False]
    tick.now += 100  # never more than the burst
    assert [throttle.allow("t1") for _ in range(4)] == [True, True, True, False]


def test_bad_throttle_settings_are_refused():
    with pytest.raises(ValueError, match="positive rate and burst"):
        Throttle(rate=0, burst=1)


def test_fair_queue_takes_keys_in_turn_and_bounds_each_key():
    async def run():
        queue: FairQueue[str] = FairQueue(per_key_limit=3)
        for i in range(5):
            queue.put("flood", f"f{i}")
        queue.put("quiet", "q0")
        queue.put("other", "o0")
        assert queue.dropped == 2
        assert len(queue) == 5
        return [await queue.get() for _ in range(5)]

    assert asyncio.run(run()) == ["f0", "q0", "o0", "f1", "f2"]


def test_fair_queue_get_waits_for_a_put():
    async def run():
        queue: FairQueue[int] = FairQueue(per_key_limit=1)
        waiter = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        assert not waiter.done()
        queue.put("k", 7)
        return await asyncio.wait_for(waiter, 1)

    assert asyncio.run(run()) == 7


def test_service_clock_resumes_across_restarts(tmp_path):
    import json
    import time

    from iot_jobs_bridge.jobs_service.clock import CLOCK_FILE, resumed_clock

    first = resumed_clock(tmp_path, 60.0)
    assert abs(first.now() - time.time()) < 5
    # As if that run started ten real seconds ago at scale 60: ten service minutes have passed since.
    (tmp_path / CLOCK_FILE).write_text(
        json.dumps({"service": 1_000_000.0, "wall": time.time() - 10, "scale": 60.0})
    )
    second = resumed_clock(tmp_path, 1.0)
    assert 1_000_600.0 <= second.now() < 1_000_605.0
    saved = json.loads((tmp_path / CLOCK_FILE).read_text())
    assert saved["scale"] == 1.0 and saved["service"] >= 1_000_600.0
