"""Handlers run one at a time on one thread; ``settle`` waits on the loop, holding no one back."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from iot_jobs_bridge.jobs_service.http_api import build_app
from iot_jobs_bridge.jobs_service.http_api.app import handler_worker
from tests.http_api.conftest import KEY_ID, REGION, SECRET, client_for, serve


class Overlap:
    """The threads handlers ran on, and the most that ran at once."""

    def __init__(self) -> None:
        self.threads: set[int] = set()
        self.running = self.most = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.threads.add(threading.get_ident())
            self.running += 1
            self.most = max(self.most, self.running)

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self.running -= 1


def test_concurrent_calls_are_handled_one_at_a_time_on_one_thread():
    overlap = Overlap()
    first_entered, release_first = threading.Event(), threading.Event()

    def describe_thing(params: dict[str, Any]) -> dict[str, Any]:
        with overlap:
            if params["thingName"] == "t0":
                first_entered.set()
                release_first.wait(10)  # the others arrive while this one holds the worker
        return {"thingName": params["thingName"]}

    worker = handler_worker()
    app = build_app({"DescribeThing": describe_thing}, {KEY_ID: SECRET}, region=REGION, worker=worker)
    with serve(app) as url, ThreadPoolExecutor(8) as clients:
        iot = client_for(url)
        first = clients.submit(iot.describe_thing, thingName="t0")
        assert first_entered.wait(10)
        rest = [clients.submit(iot.describe_thing, thingName=f"t{n}") for n in range(1, 8)]
        release_first.set()
        names = [call.result(30)["thingName"] for call in [first, *rest]]
    worker.shutdown()

    assert names == [f"t{n}" for n in range(8)]
    assert overlap.most == 1
    assert len(overlap.threads) == 1


def test_settle_runs_after_the_handler_and_before_the_answer_without_holding_others_back():
    order: list[str] = []
    settling = threading.Event()
    held: dict[str, Any] = {}

    def update_certificate(params: dict[str, Any]) -> None:
        order.append("handled UpdateCertificate")

    def describe_thing(params: dict[str, Any]) -> dict[str, Any]:
        order.append("handled DescribeThing")
        return {"thingName": params["thingName"]}

    async def settle(operation: str) -> None:
        if operation != "UpdateCertificate":
            return
        held["loop"], held["gate"] = asyncio.get_running_loop(), asyncio.Event()
        settling.set()
        await held["gate"].wait()
        order.append("settled UpdateCertificate")

    handlers = {"UpdateCertificate": update_certificate, "DescribeThing": describe_thing}
    app = build_app(handlers, {KEY_ID: SECRET}, region=REGION, settle=settle)
    with serve(app) as url, ThreadPoolExecutor(1) as clients:
        iot = client_for(url)
        update = clients.submit(iot.update_certificate, certificateId="a" * 64, newStatus="INACTIVE")
        assert settling.wait(10)
        # While the update settles, another call is handled and answered.
        assert iot.describe_thing(thingName="t1")["thingName"] == "t1"
        assert not update.done()
        held["loop"].call_soon_threadsafe(held["gate"].set)
        update.result(10)

    assert order == ["handled UpdateCertificate", "handled DescribeThing", "settled UpdateCertificate"]


def test_inline_operations_run_on_the_event_loop_and_the_others_on_the_worker():
    ran_on: dict[str, str] = {}

    def describe_thing(params: dict[str, Any]) -> dict[str, Any]:
        ran_on["DescribeThing"] = threading.current_thread().name
        return {"thingName": params["thingName"]}

    def create_thing(params: dict[str, Any]) -> dict[str, Any]:
        ran_on["CreateThing"] = threading.current_thread().name
        return {"thingName": params["thingName"]}

    handlers = {"DescribeThing": describe_thing, "CreateThing": create_thing}
    app = build_app(handlers, {KEY_ID: SECRET}, region=REGION, inline=frozenset({"DescribeThing"}))
    with serve(app) as url:
        iot = client_for(url)
        iot.describe_thing(thingName="t1")
        iot.create_thing(thingName="t1")

    assert ran_on["DescribeThing"] == "uvicorn-test"  # the thread serving the event loop
    assert ran_on["CreateThing"].startswith("control-plane")
