import pytest

from jobs_service.arns import Arns
from jobs_service.clock import FakeClock
from jobs_service.device_api import DeviceApi
from jobs_service.engine import JobsEngine
from jobs_service.registry import Registry
from jobs_service.store import Store


@pytest.fixture
def clock():
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def store(tmp_path):
    db = Store(tmp_path / "jobs.sqlite3")
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
    return DeviceApi(engine)
