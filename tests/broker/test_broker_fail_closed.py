"""The plugins fail closed when the authenticator itself breaks."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio


class BrokenAuthenticator:
    def authenticate(self, client_id, username, password):
        raise RuntimeError("thing registry unavailable")


@pytest.fixture
def authenticator():
    return BrokenAuthenticator()


async def test_authenticator_error_refuses_the_connection_and_names_the_client(connect, caplog):
    await connect("t1", accepted=False)
    assert "authentication error, connection refused: client id 't1'" in caplog.text
