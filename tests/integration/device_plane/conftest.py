"""Fixtures for the device-plane suite: every test runs on each broker the service supports.

The package-scoped ``server`` is started once per broker (``embedded``,
``embedded-mqtt``, ``mosquitto``, ``external``; see ``tests/integration/brokers.py``):
the embedded broker runs twice, once with the service in process and once with it
reaching the broker over MQTT, so both transports pass the same suite. Each
test is generated once per broker, its id naming it. A test marked
``embedded_only`` exercises the embedded broker itself rather than the jobs
service, and is generated for ``embedded`` alone.
"""

from contextlib import ExitStack

import pytest

from ..brokers import BROKERS, start_on_broker
from ..clients import subscribe
from ._support import EventWatcher, admin_client, raw_device, v2_device


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "embedded_only: tests the embedded broker itself; generated for the embedded broker only"
    )


def pytest_generate_tests(metafunc):
    if "broker" not in metafunc.fixturenames:
        return
    kinds = ["embedded"] if metafunc.definition.get_closest_marker("embedded_only") else list(BROKERS)
    metafunc.parametrize("broker", kinds, indirect=True, scope="package", ids=kinds)


@pytest.fixture(scope="package")
def broker(request):
    """The broker this test runs on: one of ``brokers.BROKERS``."""
    return request.param


@pytest.fixture(scope="package")
def server(broker, tmp_path_factory):
    running = start_on_broker(broker, tmp_path_factory.mktemp(f"server-{broker}"))
    yield running
    assert running.stop() == 0, "\n".join(running.lines)


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
