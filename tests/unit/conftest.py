import pytest

from iot_jobs_bridge.jobs_service.arns import Arns
from iot_jobs_bridge.jobs_service.clock import FakeClock
from iot_jobs_bridge.jobs_service.device_plane import Renderer
from iot_jobs_bridge.jobs_service.device_plane.api import DeviceApi
from iot_jobs_bridge.jobs_service.engine import JobsEngine
from iot_jobs_bridge.jobs_service.registry import Registry
from iot_jobs_bridge.jobs_service.store import Store
from tests.stores import store_location


@pytest.fixture
def clock():
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def store(tmp_path):
    db = Store(store_location(tmp_path))
    yield db
    db.close()


@pytest.fixture
def arns():
    return Arns()


@pytest.fixture
def engine(store, clock, arns):
    return JobsEngine(store, clock, arns)


@pytest.fixture
def registry(store, clock, arns):
    return Registry(store, clock, arns)


@pytest.fixture
def device(engine):
    return DeviceApi(engine, Renderer(engine.arns))
