import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from iot_jobs_bridge.jobs_service.cron import ON_TIME, Cron, CronError, FirePlan, fire_label, plan_fires

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


# The service came up long before the fires these tests look at, unless a test says otherwise.
LONG_UP = at(2026, 5, 1, 0, 0)


def hourly_plan(handled, now, *, up_since=LONG_UP, misfire="skip"):
    return plan_fires(Cron.parse("0 * * * *"), handled, now, up_since=up_since, misfire=misfire)


def test_an_on_time_fire_runs_and_nothing_is_skipped():
    assert hourly_plan(at(2026, 5, 1, 9, 0), at(2026, 5, 1, 10, 0, 5)) == FirePlan(run=(at(2026, 5, 1, 10),))
    assert hourly_plan(at(2026, 5, 1, 10, 0), at(2026, 5, 1, 10, 30)) == FirePlan()


def test_every_fire_a_busy_scheduler_reaches_late_runs_once_in_order():
    cron = Cron.parse("*/2 * * * * *")
    start = at(2026, 5, 1, 9, 0, 0)
    for misfire in ("skip", "run-once"):
        plan = plan_fires(cron, start, start + 7, up_since=start - 3600, misfire=misfire)
        assert plan == FirePlan(run=(start + 2, start + 4, start + 6)), misfire


def test_a_fire_under_a_minute_late_runs_and_one_a_minute_late_could_not_run_at_its_time():
    ten = at(2026, 5, 1, 10, 0)
    assert hourly_plan(ten - 3600, ten + ON_TIME - 1) == FirePlan(run=(ten,))
    assert hourly_plan(ten - 3600, ten + ON_TIME) == FirePlan(skipped=(ten,))
    assert hourly_plan(ten - 3600, ten + ON_TIME, misfire="run-once") == FirePlan(run=(ten,))


def test_fires_due_before_the_service_came_up_are_misfires_and_later_ones_run():
    cron = Cron.parse("* * * * * *")
    up = at(2026, 5, 1, 9, 0, 0)
    plan = plan_fires(cron, up - 4, up + 3, up_since=up, misfire="skip")
    assert plan == FirePlan(run=(up + 1, up + 2, up + 3), skipped=(up - 3, up - 2, up - 1, up))


def test_moments_between_whole_seconds_split_fires_the_same_way():
    cron = Cron.parse("* * * * * *")
    up = at(2026, 5, 1, 9, 0, 0) + 0.25
    plan = plan_fires(cron, up - 3.5, up + 2.5, up_since=up, misfire="skip")
    whole = up - 0.25
    assert plan == FirePlan(run=(whole + 1, whole + 2), skipped=(whole - 3, whole - 2, whole - 1, whole))
    assert cron.latest_fires(whole - 2.5, whole + 0.5, 10) == [whole - 2, whole - 1, whole]


def test_after_downtime_skip_runs_nothing_and_lists_what_it_skipped():
    plan = hourly_plan(at(2026, 5, 1, 9, 0), at(2026, 5, 1, 13, 20), up_since=at(2026, 5, 1, 13, 19))
    assert plan == FirePlan(skipped=tuple(at(2026, 5, 1, hour) for hour in (10, 11, 12, 13)))


def test_after_downtime_run_once_runs_one_catch_up_never_a_storm():
    plan = hourly_plan(
        at(2026, 5, 1, 9, 0), at(2026, 5, 1, 13, 20), up_since=at(2026, 5, 1, 13, 19), misfire="run-once"
    )
    assert plan == FirePlan(run=(at(2026, 5, 1, 13),), skipped=tuple(at(2026, 5, 1, h) for h in (10, 11, 12)))


def test_run_once_needs_no_catch_up_when_a_fire_runs_on_time():
    cron = Cron.parse("* * * * * *")
    up = at(2026, 5, 1, 9, 0, 0)
    plan = plan_fires(cron, up - 3, up + 1, up_since=up, misfire="run-once")
    assert plan == FirePlan(run=(up + 1,), skipped=(up - 2, up - 1, up))


def test_a_long_downtime_lists_only_the_latest_misfires():
    cron = Cron.parse("* * * * * *")
    up = at(2026, 5, 8, 0, 0, 0)
    plan = plan_fires(cron, up - 7 * 86400, up, up_since=up, misfire="skip", keep=100)
    assert plan == FirePlan(skipped=tuple(up - n for n in range(99, -1, -1)))


@pytest.mark.parametrize("expression", ["30 2 * * *", "0 * * * *", "*/20 * * * *", "0 2,3 * * *"])
@pytest.mark.parametrize(
    ("start", "end"),
    [(at(2026, 3, 28, 12), at(2026, 3, 31, 12)), (at(2026, 10, 24, 12), at(2026, 10, 26, 12))],
)
def test_walking_back_finds_the_fires_walking_forward_finds(expression, start, end):
    cron = Cron.parse(expression, "Europe/Berlin")
    forward = cron.fires_between(start, end)
    assert len(forward) >= 2
    assert cron.latest_fires(start, end, len(forward) + 5) == forward
    assert cron.latest_fires(start, forward[-1], 2) == forward[-2:]


def test_overlong_expressions_and_zone_names_are_refused_before_parsing():
    with pytest.raises(CronError, match="is longer than 200 characters"):
        Cron.parse("1," * 150 + " * * * *")
    with pytest.raises(CronError, match="is longer than 64 characters"):
        Cron.parse("* * * * *", "Europe/" + "x" * 100)


def test_fire_labels_are_compact_utc():
    assert fire_label(at(2026, 11, 21, 2, 0, 0)) == "20261121T020000Z"
    assert fire_label(at(2026, 3, 29, 1, 0, zone=UTC)) == "20260329T010000Z"
