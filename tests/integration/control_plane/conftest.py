"""Fixtures of the control-plane suite (the server fixtures come from tests/integration/conftest.py)."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest


@pytest.fixture(scope="session")
def many_things(server):
    """ARNs of 101 things: one more than a job may target."""
    prefix = f"m{uuid.uuid4().hex[:8]}"
    iot = server.iot()
    names = [f"{prefix}-{i:03d}" for i in range(101)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda name: iot.create_thing(thingName=name)["thingArn"], names))
