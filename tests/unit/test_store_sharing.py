"""Several processes on one PostgreSQL store: each transaction sees the last commit, none is lost."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from iot_jobs_bridge.jobs_service.arns import Arns
from iot_jobs_bridge.jobs_service.clock import FakeClock
from iot_jobs_bridge.jobs_service.engine import JobsEngine
from iot_jobs_bridge.jobs_service.store import Store
from tests.stores import postgres_database

UPDATES = 40


@pytest.fixture
def shared_location():
    return postgres_database()


def test_read_then_write_transactions_of_two_stores_on_one_database_lose_no_update(shared_location):
    # Two Stores are two connections, as two workers would have; each engine reads a thing's
    # version and writes the next one, at once with the other.
    stores = [Store(shared_location), Store(shared_location)]
    try:
        engines = [JobsEngine(store, FakeClock(start=1_700_000_000.0), Arns()) for store in stores]
        engines[0].membership.create_thing("t1")

        def bump(engine: JobsEngine) -> None:
            for _ in range(UPDATES):
                engine.membership.update_thing(
                    "t1",
                    attributes={"by": str(id(engine))},
                    merge=True,
                    thing_type_name=None,
                    remove_thing_type=False,
                    expected_version=None,
                )

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(bump, engines))
        thing = stores[1].registry.get_thing("t1")
    finally:
        for store in stores:
            store.close()

    assert thing is not None
    assert thing.version == 1 + 2 * UPDATES
