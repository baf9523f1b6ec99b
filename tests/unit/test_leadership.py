"""One worker among those sharing a PostgreSQL store runs the timers; another takes over at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from iot_jobs_bridge.jobs_service.leadership import SoleLeader, leadership_for
from iot_jobs_bridge.jobs_service.store.postgres_leader import PostgresLeadership
from tests.stores import postgres_database

WITHIN = 10.0


class Watcher:
    """Records a leadership's callbacks as events a test can wait for."""

    def __init__(self) -> None:
        self.changed = threading.Event()
        self.due = threading.Event()

    def start(self, leadership: PostgresLeadership) -> PostgresLeadership:
        leadership.start(self.changed.set, self.due.set)
        return leadership


@pytest.fixture
def shared_location():
    return postgres_database()


def test_one_process_alone_on_its_store_always_leads(tmp_path):
    leadership = leadership_for(str(tmp_path / "jobs.sqlite3"))
    assert isinstance(leadership, SoleLeader)
    assert leadership.leading


def test_of_two_workers_one_leads_and_the_other_takes_over_when_it_stops(shared_location):
    first_watch, second_watch = Watcher(), Watcher()
    first = first_watch.start(PostgresLeadership(shared_location, retry=0.05))
    assert first_watch.changed.wait(WITHIN) and first.leading
    second = second_watch.start(PostgresLeadership(shared_location, retry=0.05))
    try:
        # The second keeps trying, and keeps failing, while the first leads.
        assert not second_watch.changed.wait(0.5)
        assert not second.leading
        first.close()
        assert not first.leading
        assert second_watch.changed.wait(WITHIN) and second.leading
    finally:
        first.close()
        second.close()
    assert not second.leading


def test_a_nudge_from_a_worker_that_does_not_lead_reaches_the_leader(shared_location):
    leader_watch, follower_watch = Watcher(), Watcher()
    leader = leader_watch.start(PostgresLeadership(shared_location, retry=0.05))
    assert leader_watch.changed.wait(WITHIN)
    follower = follower_watch.start(PostgresLeadership(shared_location, retry=0.05))
    try:
        assert not leader_watch.due.is_set()
        follower.nudge()
        assert leader_watch.due.wait(WITHIN)
        assert not follower_watch.due.is_set()
    finally:
        leader.close()
        follower.close()


LEADER_PROCESS = """
import sys, threading
from iot_jobs_bridge.jobs_service.store.postgres_leader import PostgresLeadership
leading = threading.Event()
PostgresLeadership(sys.argv[1], retry=0.05).start(leading.set, lambda: None)
leading.wait()
print("leading", flush=True)
threading.Event().wait()
"""


def test_a_leader_killed_outright_hands_over_at_once(shared_location):
    process = subprocess.Popen(
        [sys.executable, "-c", LEADER_PROCESS, shared_location], stdout=subprocess.PIPE, text=True
    )
    watch = Watcher()
    leadership: PostgresLeadership | None = None
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "leading"
        leadership = watch.start(PostgresLeadership(shared_location, retry=0.05))
        assert not watch.changed.wait(0.3)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        # The database drops a dead connection's locks: no lease has to run out.
        assert watch.changed.wait(WITHIN) and leadership.leading
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if leadership is not None:
            leadership.close()
