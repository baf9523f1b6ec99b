"""A device given a cluster's nodes moves to the next one when its node is gone."""

import asyncio

import pytest

from iot_jobs_bridge.device_sdk import AsyncJobsClient, Backoff
from iot_jobs_bridge.device_sdk.connection import first_endpoint_for

from .helpers import endpoint, free_port, make_thing

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("dead_first", [True, False])
def test_a_device_whose_node_is_gone_connects_to_the_next_one(server, unique, dead_first):
    name = f"{unique}-roamer"
    make_thing(server.iot(), name)
    live, dead = endpoint(server), f"mqtt://127.0.0.1:{free_port()}"
    nodes = [dead, live] if dead_first else [live, dead]
    # Put the dead node where this thing starts, so the move is what the test sees.
    if first_endpoint_for(name, 2) != 0:
        nodes.reverse()

    async def scenario():
        client = AsyncJobsClient(name, ",".join(nodes), request_timeout=5.0, backoff=Backoff(0.05, 0.2))
        async with client:
            await client.wait_connected(timeout=20)
            pending = await client.get_pending()
            return str(client.options.endpoint), pending

    connected_to, pending = asyncio.run(scenario())
    assert connected_to == live
    assert pending.in_progress == () and pending.queued == ()  # answered: the node works
