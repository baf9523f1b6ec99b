"""Settings shared by the whole suite."""

import pytest
from hypothesis import HealthCheck, settings

# Property tests judge correctness, not speed: on a loaded two-core CI machine a
# single example can take longer than hypothesis's 200 ms deadline, or input
# generation can look "too slow", and either failed the run by chance.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


@pytest.fixture
def anyio_backend() -> str:
    # The project runs on asyncio only; anyio's plugin would otherwise also run
    # every anyio test on trio whenever trio is installed (selenium brings it).
    return "asyncio"
