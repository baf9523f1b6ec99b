"""Fixtures for the device-plane suite, on the shared server from ``tests/integration/conftest.py``."""

from contextlib import ExitStack

import pytest

from ..clients import subscribe
from ._support import EventWatcher, admin_client, raw_device, v2_device


@pytest.fixture
def connect(server, iot, unique):
    """``connect(suffix)`` registers the thing ``<unique>-<suffix>`` and connects it as a raw paho device."""
    with ExitStack() as stack:

        def connect(suffix: str = "dev"):
            name = f"{unique}-{suffix}"
            iot.create_thing(thingName=name)
            return stack.enter_context(raw_device(server, name))

        yield connect


@pytest.fixture
def device(connect):
    return connect("dev")


@pytest.fixture
def v2(server, iot, unique):
    """A thing on the official SDK's ``IotJobsClientV2``, notify and notify-next streams open."""
    thing = f"{unique}-v2"
    iot.create_thing(thingName=thing)
    with v2_device(server, thing) as device:
        yield device


@pytest.fixture
def watcher(server, unique):
    """An admin client on ``$aws/events/#`` watching the events of this test's jobs."""
    with admin_client(server, f"{unique}-events") as client:
        watcher = EventWatcher(client, server.iot(), unique)
        assert not subscribe(client, "$aws/events/#")[0].is_failure
        yield watcher
