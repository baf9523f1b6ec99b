"""Messages committed on a worker thread are published on the event loop's thread, in order."""

import asyncio
import threading

from iot_jobs_bridge.jobs_service.device_plane.render import Message
from iot_jobs_bridge.jobs_service.device_plane.transport import publisher_for_any_thread


def test_a_worker_threads_messages_are_published_on_the_loop_thread_in_order():
    async def scenario():
        published: list[tuple[int, str]] = []
        all_in = asyncio.Event()

        def publish(messages: list[Message]) -> None:
            published.extend((threading.get_ident(), message.topic) for message in messages)
            if len(published) == 3:
                all_in.set()

        publish_anywhere = publisher_for_any_thread(asyncio.get_running_loop(), publish)
        publish_anywhere([Message("on/loop", {})])
        await asyncio.to_thread(publish_anywhere, [Message("worker/1", {}), Message("worker/2", {})])
        async with asyncio.timeout(5):
            await all_in.wait()
        return published

    loop_thread_published = asyncio.run(scenario())
    assert [topic for _, topic in loop_thread_published] == ["on/loop", "worker/1", "worker/2"]
    assert len({thread for thread, _ in loop_thread_published}) == 1, "all on the loop's thread"
