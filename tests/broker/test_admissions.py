"""Admissions per client id: one at a time, in the order they ask, and nothing left behind."""

import asyncio

import pytest

from iot_jobs_bridge.broker.admissions import Admissions

pytestmark = pytest.mark.anyio


async def test_admissions_for_one_client_id_take_turns_in_order_and_others_do_not_wait():
    admissions = Admissions()
    order: list[str] = []
    release_first = asyncio.Event()

    async def admit(name: str, client_id: str, hold: asyncio.Event | None = None) -> None:
        async with admissions.turn(client_id):
            order.append(f"{name} in")
            if hold is not None:
                await hold.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(admit("first", "t1", release_first))
    await asyncio.sleep(0)
    second = asyncio.create_task(admit("second", "t1"))
    await admit("other", "t2")  # another client id is admitted meanwhile
    assert order == ["first in", "other in", "other out"]
    release_first.set()
    await asyncio.gather(first, second)

    assert order[3:] == ["first out", "second in", "second out"]
    assert len(admissions) == 0


async def test_ending_a_turn_early_lets_the_next_in_and_leaving_the_block_ends_nothing_twice():
    admissions = Admissions()
    next_in = asyncio.Event()

    async def next_one() -> None:
        async with admissions.turn("t1"):
            next_in.set()

    async with admissions.turn("t1") as end:
        waiting = asyncio.create_task(next_one())
        await asyncio.sleep(0)
        assert not next_in.is_set()
        end()  # e.g. the connection is registered: the next CONNECT may take it over
        await asyncio.wait_for(next_in.wait(), 1)
        await waiting
        end()  # a second call changes nothing
    assert len(admissions) == 0


async def test_an_admission_cancelled_while_waiting_leaves_nothing_behind():
    admissions = Admissions()
    async with admissions.turn("t1"):
        waiting = asyncio.create_task(admissions.turn("t1").__aenter__())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert len(admissions) == 0
