from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge.simulator.profiles import PROFILES, assign, parse_mix


def test_a_mix_is_read_as_percentages():
    assert parse_mix("succeed=70, fail=20,timeout=10") == {"succeed": 70.0, "fail": 20.0, "timeout": 10.0}


def test_a_bare_profile_name_means_all_of_the_fleet():
    assert parse_mix("reboot") == {"reboot": 100.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("succeed=50,fail=20", "profile shares add up to 70%, not 100%"),
        ("explode=100", "unknown profile 'explode'; choose from succeed, fail, reject, timeout"),
        ("succeed=lots", "profile 'succeed' needs a percentage, not 'lots'"),
        ("succeed=-5,fail=105", "profile 'succeed' needs a percentage between 0 and 100"),
        ("", "give at least one profile, e.g. succeed=90,fail=10"),
    ],
)
def test_bad_mixes_are_refused_with_a_reason(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_mix(text)


def test_assignment_gives_exact_shares():
    names = assign(200, {"succeed": 40, "fail": 10, "reject": 10, "timeout": 10, "reboot": 30})
    assert Counter(names) == {"succeed": 80, "fail": 20, "reject": 20, "timeout": 20, "reboot": 60}


def test_assignment_rounds_by_largest_remainder():
    assert Counter(assign(3, {"succeed": 50, "fail": 50})) in (
        Counter({"succeed": 2, "fail": 1}),
        Counter({"succeed": 1, "fail": 2}),
    )
    assert len(assign(7, {"succeed": 33.3, "fail": 33.3, "reject": 33.4})) == 7


def test_assignment_is_repeatable_by_seed_and_shuffled():
    shares = {"succeed": 50, "fail": 50}
    assert assign(100, shares, seed=3) == assign(100, shares, seed=3)
    assert assign(100, shares, seed=3) != assign(100, shares, seed=4)
    assert assign(100, shares, seed=3)[:50] != ["succeed"] * 50


@given(
    st.integers(min_value=0, max_value=5000),
    st.lists(st.sampled_from(sorted(PROFILES)), min_size=1, unique=True),
)
def test_assignment_always_covers_every_device(count, names):
    share = 100.0 / len(names)
    shares = {name: share for name in names}
    assigned = assign(count, shares)
    assert len(assigned) == count
    for n in Counter(assigned).values():
        assert abs(n - count * share / 100) < 1


def test_every_profile_predicts_a_terminal_status():
    assert {p.expected_status for p in PROFILES.values()} == {"SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT"}
    assert PROFILES["reboot"].expected_runs == 2
    assert PROFILES["offline"].starts_offline
