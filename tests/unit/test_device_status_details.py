import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge import schemas
from iot_jobs_bridge.device_sdk.status_details import MAX_PAIRS, MAX_VALUE_CHARS, fit, head, tail


def test_limits_are_those_of_aws():
    assert MAX_PAIRS == 10
    assert MAX_VALUE_CHARS == 1024


def test_tail_keeps_short_text_whole():
    assert tail("all is well") == "all is well"


def test_tail_keeps_the_last_1024_characters():
    text = "".join(str(i % 10) for i in range(3000)) + "END"
    kept = tail(text)
    assert len(kept) == 1024
    assert kept == text[-1024:]
    assert kept.endswith("END")


def test_tail_with_explicit_limit():
    assert tail("abcdef", 2) == "ef"


def test_head_keeps_short_text_whole():
    assert head("x" * 1024) == "x" * 1024


def test_head_cuts_long_text_to_1024_characters_ending_in_dots():
    text = "START" + "y" * 2000
    kept = head(text)
    assert len(kept) == 1024
    assert kept.startswith("START")
    assert kept == text[:1021] + "..."


def test_head_with_explicit_limit():
    assert head("abcdefgh", 5) == "ab..."
    assert head("abcde", 5) == "abcde"


@pytest.mark.parametrize(
    "char", ["\x00", "\x07", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x1f", "\x7f", "\x85", "\x9f"]
)
def test_control_characters_become_question_marks(char):
    assert tail(f"a{char}b") == "a?b"
    assert head(f"a{char}b") == "a?b"


def test_tab_newline_and_carriage_return_are_kept():
    text = "a\tb\nc\r\nd"
    assert tail(text) == text
    assert head(text) == text


def test_non_control_unicode_is_kept():
    text = "h\u00e9llo \u2713 \U0001f600 \u00a0"
    assert tail(text) == text


def test_tail_limit_counts_characters_after_replacement():
    text = "\x00" * 2000
    assert tail(text) == "?" * 1024


def test_fit_keeps_valid_pairs_unchanged():
    details = {"step": "download", "progress": "1/3", "a:b_c-D9": "x"}
    assert fit(details) == details


def test_fit_keeps_at_most_ten_pairs_in_order():
    details = {f"k{i:02d}": str(i) for i in range(15)}
    fitted = fit(details)
    assert list(fitted) == [f"k{i:02d}" for i in range(10)]
    assert list(fitted.values()) == [str(i) for i in range(10)]


def test_fit_drops_empty_values_before_counting():
    details = {"empty": "", **{f"k{i}": "v" for i in range(10)}, "late": "v"}
    fitted = fit(details)
    assert "empty" not in fitted
    assert list(fitted) == [f"k{i}" for i in range(10)]


def test_fit_cuts_long_values_to_their_tail():
    fitted = fit({"stdout": "start " + "." * 2000 + " exit 3"})
    assert len(fitted["stdout"]) == 1024
    assert fitted["stdout"].endswith(" exit 3")
    assert not fitted["stdout"].startswith("start")


def test_fit_replaces_control_characters_in_values():
    assert fit({"stderr": "\x1b[31mred\x1b[0m\n"}) == {"stderr": "?[31mred?[0m\n"}


def test_fit_turns_non_string_values_into_text():
    assert fit({"count": 3}) == {"count": "3"}  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "key", ["", "with space", "dot.ted", "slash/key", "x" * 129, "caf\u00e9", "new\nline"]
)
def test_fit_raises_naming_a_bad_key(key):
    with pytest.raises(ValueError) as caught:
        fit({"good": "v", key: "value"})
    assert str(caught.value) == f"statusDetails key {key!r} is not 1-128 of letters, digits, ':', '_' or '-'"


def test_fit_checks_keys_even_past_the_tenth_pair():
    details = {**{f"k{i}": "v" for i in range(10)}, "bad key": "v"}
    with pytest.raises(ValueError, match="'bad key'"):
        fit(details)


def test_fit_accepts_a_key_of_128_characters():
    key = "k" * 128
    assert fit({key: "v"}) == {key: "v"}


_keys = st.from_regex(r"[a-zA-Z0-9:_-]{1,128}", fullmatch=True)
# Short text of any characters, and text repeated to well past the 1,024-character limit.
_values = st.text() | st.builds(lambda s, n: s * n, st.text(max_size=20), st.integers(1, 150))


@given(st.dictionaries(_keys, _values, max_size=14))
def test_fitted_details_pass_the_request_schema(details):
    fitted = fit(details)
    assert len(fitted) <= MAX_PAIRS
    if fitted:
        schemas.check(
            "device_requests", "UpdateJobExecutionRequest", {"status": "IN_PROGRESS", "statusDetails": fitted}
        )
