"""Each module of this suite runs against its own server on a scaled clock.

A module sets ``TIME_SCALE`` (service minutes per real minute); the ``server``
fixture here replaces the session-wide one for it, so ``iot`` and every other
fixture of ``tests/integration`` talk to the scaled server.
"""

import pytest

from ._support import start_scaled_server


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    scale = request.module.TIME_SCALE
    running = start_scaled_server(tmp_path_factory.mktemp("rollout-data"), scale)
    yield running
    assert running.stop() == 0, "\n".join(running.lines)
