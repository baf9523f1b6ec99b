"""Workers sharing a store share one service clock, kept in the store."""

import time

from iot_jobs_bridge.jobs_service.clock import shared_clock
from iot_jobs_bridge.jobs_service.store import Store
from iot_jobs_bridge.jobs_service.store.service_clock import ClockAnchor


def test_two_workers_started_apart_at_a_scale_read_the_same_time(store, tmp_path):
    first = shared_clock(store.service_clock, 60.0)
    # A second worker with its own connection, starting 0.1 s later: six service seconds at
    # scale 60, which two clocks anchored at their own starts would disagree by.
    time.sleep(0.1)
    other = Store(store.path)
    try:
        second = shared_clock(other.service_clock, 60.0)
        a, b = first.now(), second.now()
    finally:
        other.close()
    # Read back to back: apart by the scaled time between the two reads, not by the start gap.
    assert abs(b - a) < 0.5


def test_a_start_at_another_scale_moves_the_anchor_without_a_jump(store):
    store.service_clock.set_anchor(ClockAnchor(1_000_000.0, time.time() - 10, 60.0), replace=True)
    clock = shared_clock(store.service_clock, 1.0)
    assert 1_000_600.0 <= clock.now() < 1_000_605.0  # ten real seconds at scale 60 have passed
    anchor = store.service_clock.anchor()
    assert anchor.scale == 1.0 and anchor.service >= 1_000_600.0


def test_the_first_anchor_stays_while_the_scale_is_the_same(store):
    first = store.service_clock.set_anchor(ClockAnchor(5.0, 6.0, 2.0), replace=False)
    again = store.service_clock.set_anchor(ClockAnchor(7.0, 8.0, 2.0), replace=False)
    assert first == again == ClockAnchor(5.0, 6.0, 2.0)
    shared_clock(store.service_clock, 2.0)
    assert store.service_clock.anchor() == ClockAnchor(5.0, 6.0, 2.0)
