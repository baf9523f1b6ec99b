import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from iot_jobs_bridge.jobs_service.cron import Cron, CronError, due_fire, fire_label

BERLIN = ZoneInfo("Europe/Berlin")


def at(*args, zone=UTC) -> float:
    return datetime(*args, tzinfo=zone).timestamp()


def local(moment: float, zone=BERLIN) -> str:
    return datetime.fromtimestamp(moment, zone).isoformat()


def test_five_fields_fire_in_the_schedule_time_zone():
    cron = Cron.parse("30 2 * * *", "Europe/Berlin")
    assert local(cron.next_after(at(2026, 1, 10, 12, 0))) == "2026-01-11T02:30:00+01:00"


def test_six_fields_put_seconds_first():
    cron = Cron.parse("*/20 * * * * *")
    start = at(2026, 1, 1, 0, 0, 0)
    assert [t - start for t in cron.fires_between(start, start + 60)] == [20.0, 40.0, 60.0]


def test_clocks_going_forward_move_a_fire_in_the_skipped_hour_to_the_first_instant_after_it():
    cron = Cron.parse("30 2 * * *", "Europe/Berlin")
    fires = cron.fires_between(at(2026, 3, 28, 12, 0), at(2026, 3, 31, 12, 0))
    assert [local(t) for t in fires] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_clocks_going_back_fire_a_repeated_wall_time_once():
    cron = Cron.parse("30 2 * * *", "Europe/Berlin")
    fires = cron.fires_between(at(2026, 10, 24, 12, 0), at(2026, 10, 26, 12, 0))
    assert [local(t) for t in fires] == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    # Starting between the two 02:30s does not fire the second one either.
    assert local(cron.next_after(at(2026, 10, 25, 0, 45))) == "2026-10-26T02:30:00+01:00"


def test_hourly_fires_keep_every_real_hour_when_clocks_go_back():
    cron = Cron.parse("0 * * * *", "Europe/Berlin")
    fires = cron.fires_between(at(2026, 10, 24, 23, 30), at(2026, 10, 25, 2, 30))
    assert len(fires) == 3 and [b - a for a, b in itertools.pairwise(fires)] == [3600.0, 3600.0]


def test_month_ends_skip_months_without_the_day():
    cron = Cron.parse("0 0 31 * *")
    fires = cron.fires_between(at(2026, 1, 1), at(2026, 8, 1))
    assert [datetime.fromtimestamp(t, UTC).date().isoformat() for t in fires] == [
        "2026-01-31",
        "2026-03-31",
        "2026-05-31",
        "2026-07-31",
    ]
    leap = Cron.parse("0 0 29 2 *")
    assert datetime.fromtimestamp(leap.next_after(at(2026, 1, 1)), UTC).date().isoformat() == "2028-02-29"


@pytest.mark.parametrize(
    ("expression", "zone", "message"),
    [
        ("* * * *", "UTC", "has 4 fields; use 5, or 6 with seconds first"),
        ("61 * * * *", "UTC", "cron expression '61 * * * *' is not valid"),
        ("0 0 * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_expressions_and_zones_are_named(expression, zone, message):
    with pytest.raises(CronError, match=message.replace("*", r"\*")):
        Cron.parse(expression, zone)


def test_an_on_time_fire_is_due_and_nothing_is_skipped():
    cron = Cron.parse("0 * * * *")
    assert due_fire(cron, at(2026, 5, 1, 9, 0), at(2026, 5, 1, 10, 0, 5), "skip") == (at(2026, 5, 1, 10), 0)
    assert due_fire(cron, at(2026, 5, 1, 10, 0), at(2026, 5, 1, 10, 30), "skip") == (None, 0)


def test_after_downtime_skip_runs_nothing_and_counts_what_it_skipped():
    cron = Cron.parse("0 * * * *")
    fire, skipped = due_fire(cron, at(2026, 5, 1, 9, 0), at(2026, 5, 1, 13, 20), "skip")
    assert (fire, skipped) == (None, 4)


def test_after_downtime_run_once_runs_one_catch_up_never_a_storm():
    cron = Cron.parse("0 * * * *")
    fire, skipped = due_fire(cron, at(2026, 5, 1, 9, 0), at(2026, 5, 1, 13, 20), "run-once")
    assert (fire, skipped) == (at(2026, 5, 1, 13, 0), 3)


def test_fire_labels_are_compact_utc():
    assert fire_label(at(2026, 11, 21, 2, 0, 0)) == "20261121T020000Z"
    assert fire_label(at(2026, 3, 29, 1, 0, zone=UTC)) == "20260329T010000Z"
