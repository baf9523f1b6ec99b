"""The request pump on a real SQLite store: batches share one commit, failures stay alone."""

import asyncio
import contextlib
import logging
import sqlite3

import pytest

from iot_jobs_bridge.jobs_service.device_plane import Message
from iot_jobs_bridge.jobs_service.device_plane.request_pump import Request, RequestPump
from iot_jobs_bridge.jobs_service.models import Thing
from iot_jobs_bridge.jobs_service.store import Store


@pytest.fixture
def store(tmp_path):
    opened = Store(tmp_path / "jobs.sqlite3")
    yield opened
    opened.close()


def committed_things(store) -> set[str]:
    """What another connection sees: only committed rows."""
    with contextlib.closing(sqlite3.connect(store.path)) as other:
        return {row[0] for row in other.execute("SELECT name FROM things")}


class Device:
    """A handler that registers the thing a request names, as the engine would: in its own block."""

    def __init__(self, store, fail=()):
        self.store = store
        self.fail = set(fail)

    def handle(self, topic: str, payload: bytes) -> list[Message]:
        name = topic.split("/")[2]
        with self.store.atomic():
            self.store.registry.insert_thing(Thing(name=name, thing_id=name, created_at=1.0))
            if name in self.fail:
                raise RuntimeError(f"{name} breaks")
        return [Message(f"{topic}/accepted", {"thing": name})]


def request(name: str) -> tuple[str, bytes]:
    return f"$aws/things/{name}/jobs/get", b"{}"


def test_a_batch_is_one_commit_and_its_replies_follow_it(store):
    seen_before_commit: list[set[str]] = []
    store_atomic = store.atomic

    @contextlib.contextmanager
    def watched():
        with store_atomic() as work:
            yield work
            seen_before_commit.append(committed_things(store))

    pump = RequestPump(Device(store).handle, lambda _: None, watched)
    replies = pump.answer([request("a"), request("b"), request("c")])
    assert [m.payload["thing"] for m in replies] == ["a", "b", "c"]
    assert pump.shared_commits == 1
    # Nothing was visible until the one commit, then everything was.
    assert seen_before_commit[0] == set()
    assert committed_things(store) == {"a", "b", "c"}


def test_a_failing_request_is_undone_alone(store, caplog):
    caplog.set_level(logging.ERROR)
    pump = RequestPump(Device(store, fail={"b"}).handle, lambda _: None, store.atomic)
    replies = pump.answer([request("a"), request("b"), request("c")])
    assert [m.payload["thing"] for m in replies] == ["a", "c"]
    assert committed_things(store) == {"a", "c"}
    assert "Handling $aws/things/b/jobs/get failed" in caplog.text


def test_when_the_shared_commit_fails_each_request_is_answered_alone(store, caplog):
    caplog.set_level(logging.ERROR)
    refusals = [RuntimeError("disk I/O error")]
    depth = 0

    @contextlib.contextmanager
    def flaky():
        nonlocal depth
        depth += 1
        try:
            with store.atomic() as work:
                yield work
                if refusals and depth == 1:  # the outermost block, about to commit
                    raise refusals.pop()
        finally:
            depth -= 1

    pump = RequestPump(Device(store).handle, lambda _: None, flaky)
    replies = pump.answer([request("a"), request("b")])
    assert [m.payload["thing"] for m in replies] == ["a", "b"]
    assert pump.shared_commits == 0
    assert committed_things(store) == {"a", "b"}
    assert "2 requests could not be committed together; answering each alone" in caplog.text


def test_requests_that_wait_together_are_answered_together(store):
    async def main():
        sent: list[list[Message]] = []
        arrived = asyncio.Event()

        def send(messages):
            sent.append(messages)
            arrived.set()

        pump = RequestPump(Device(store).handle, send, store.atomic, max_batch=3)
        for name in ("a", "b", "c", "d"):
            pump.put(*request(name))
        pump.start()
        try:
            while sum(len(batch) for batch in sent) < 4:
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), 5)
        finally:
            await pump.close()
        return sent, pump.shared_commits

    sent, shared = asyncio.run(main())
    assert [[m.payload["thing"] for m in batch] for batch in sent] == [["a", "b", "c"], ["d"]]
    assert shared == 1


def test_a_request_is_settled_only_after_its_commit_and_its_replies(store):
    async def main():
        order: list[str] = []
        settled = asyncio.Event()

        def send(messages):
            # What the settled callback may rely on: the rows are committed, the replies handed over.
            order.append(f"sent {sorted(committed_things(store))} {len(messages)}")

        def settle(name):
            order.append(f"settled {name}")
            if name == "b":
                settled.set()

        pump = RequestPump(Device(store).handle, send, store.atomic)
        pump.put(*request("a"), lambda: settle("a"))
        pump.put(*request("b"), lambda: settle("b"))
        pump.start()
        try:
            await asyncio.wait_for(settled.wait(), 5)
        finally:
            await pump.close()
        return order

    assert asyncio.run(main()) == ["sent ['a', 'b'] 2", "settled a", "settled b"]


def test_a_request_dropped_by_a_full_queue_is_settled_at_once(store):
    pump = RequestPump(Device(store).handle, lambda messages: None, store.atomic, per_thing=1)
    settled: list[str] = []
    pump.put(*request("a"), lambda: settled.append("first"))
    pump.put(*request("a"), lambda: settled.append("second"))
    assert settled == ["second"]  # the first waits for its commit


def test_a_request_claimed_before_is_not_answered_again(store):
    marks = {"seen": False}

    def claim():
        # The first delivery claims it; a redelivery finds the claim committed.
        first = not marks["seen"]
        marks["seen"] = True
        return first

    pump = RequestPump(Device(store).handle, lambda messages: None, store.atomic)
    first = pump.answer([Request(*request("a"), claim=claim)])
    again = pump.answer([Request(*request("a"), claim=claim), Request(*request("b"))])
    assert [m.payload["thing"] for m in first] == ["a"]
    assert [m.payload["thing"] for m in again] == ["b"]


def test_each_request_answered_is_told_with_its_first_reply_and_its_time(store):
    async def main():
        told: list[tuple[str, str | None, float]] = []
        done = asyncio.Event()
        marks = {"seen": False}

        def claim():
            first = not marks["seen"]
            marks["seen"] = True
            return first

        def answered(topic, reply_topic, seconds):
            told.append((topic, reply_topic, seconds))
            if len(told) == 3:
                done.set()

        pump = RequestPump(Device(store).handle, lambda messages: None, store.atomic, answered=answered)
        pump.put(*request("a"), claim=claim)
        pump.put(*request("b"))
        pump.put(*request("a"), claim=claim)  # a redelivery of a request answered before
        pump.start()
        try:
            await asyncio.wait_for(done.wait(), 5)
        finally:
            await pump.close()
        return told

    told = asyncio.run(main())
    assert [(topic, reply) for topic, reply, _ in told] == [
        ("$aws/things/a/jobs/get", "$aws/things/a/jobs/get/accepted"),
        ("$aws/things/b/jobs/get", "$aws/things/b/jobs/get/accepted"),
        ("$aws/things/a/jobs/get", None),
    ]
    assert all(0 <= seconds < 5 for _, _, seconds in told)


def test_an_observer_that_fails_does_not_stop_the_pump(store, caplog):
    caplog.set_level(logging.ERROR)

    async def main():
        sent = asyncio.Event()

        def broken(topic, reply_topic, seconds):
            raise RuntimeError("observer bug")

        pump = RequestPump(Device(store).handle, lambda messages: None, store.atomic, answered=broken)
        pump.put(*request("a"))
        pump.put(*request("b"), lambda: sent.set())
        pump.start()
        try:
            await asyncio.wait_for(sent.wait(), 5)
        finally:
            await pump.close()

    asyncio.run(main())
    assert committed_things(store) == {"a", "b"}
    assert "An observer of answered requests failed" in caplog.text
