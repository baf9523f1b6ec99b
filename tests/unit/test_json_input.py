"""The one strict JSON reader: what it refuses, with which error and message, and that it never recurses."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge.jobs_service.errors import InvalidJson, InvalidRequest
from iot_jobs_bridge.jobs_service.json_input import (
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    check_text,
    parse_json,
    read_json,
)


def _refusal(data, what="The payload"):
    with pytest.raises(InvalidRequest) as caught:
        read_json(data, what=what)
    return type(caught.value), caught.value.message


def test_reads_ordinary_json_from_bytes_and_text():
    document = {"op": "run", "args": [1, -2.5, True, None, "ü 😀"], "nested": {"k": {}}}
    assert read_json(json.dumps(document).encode(), what="x") == document
    assert read_json(json.dumps(document, ensure_ascii=False), what="x") == document


def test_nesting_up_to_the_limit_reads():
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    value = read_json(text, what="x")
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []


@pytest.mark.parametrize(
    "text",
    [
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
    ],
    ids=["one-too-deep", "100k-arrays", "100k-objects"],
)
def test_deeper_nesting_is_refused_before_parsing(text):
    assert _refusal(text) == (InvalidRequest, "The payload nests arrays and objects deeper than 64 levels")


@pytest.mark.parametrize(
    "text", ["[" * 100_000, "]" * 3 + "[" * 3, "[[]"], ids=["100k-open", "closed-first", "short"]
)
def test_brackets_that_do_not_balance_are_not_json(text):
    assert _refusal(text) == (InvalidJson, "The payload is not valid JSON: its brackets do not balance")


def test_brackets_and_digits_inside_strings_are_text():
    document = {"a": "[" * 1000, "b": "}" * 10, "hash": "1" * 5000, "quote": 'say "[" \\'}
    assert read_json(json.dumps(document), what="x") == document


def test_number_literals_up_to_the_limit_read():
    digits = "9" * MAX_NUMBER_CHARS
    assert read_json(f"[{digits}]", what="x") == [int(digits)]


@pytest.mark.parametrize(
    "literal", ["1" * 5000, "1" * (MAX_NUMBER_CHARS + 1), "0." + "5" * 200, "-" + "7" * 4301]
)
def test_longer_number_literals_are_refused(literal):
    kind, message = _refusal(f'{{"n": {literal}}}', "The request body")
    assert (kind, message) == (
        InvalidRequest,
        f"The request body has a number of {len(literal)} characters; the limit is 100",
    )


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(literal):
    assert _refusal(f'{{"x": {literal}}}', "The job document") == (
        InvalidJson,
        f"The job document is not valid JSON: {literal} is not a JSON value",
    )


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1.5E+999"])
def test_numbers_beyond_a_double_are_refused(literal):
    assert _refusal(f"[{literal}]") == (
        InvalidRequest,
        f"The payload has a number too large for a double: {literal}",
    )


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ('{"statusDetails": {"k": "\\ud800"}}', "(\\ud800) in 'statusDetails.k'"),
        ('{"targets": ["a", "b\\udfffc"]}', "(\\udfff) in 'targets[1]'"),
        ('{"attributes": {"\\udc00x": "1"}}', "(\\udc00) in a key of 'attributes'"),
        ('"\\ude00\\ud83d"', "(\\ude00) in the top-level value"),
    ],
    ids=["value", "list-item", "key", "reversed-pair"],
)
def test_a_lone_surrogate_is_refused_naming_where_it_is(text, place):
    assert _refusal(text) == (InvalidRequest, f"The payload has a lone UTF-16 surrogate {place}")


def test_a_lone_surrogate_is_refused_from_bytes_and_from_text_that_holds_it_unescaped():
    escaped = '{"k": "\\ud800"}'
    assert _refusal(escaped.encode()) == (
        InvalidRequest,
        "The payload has a lone UTF-16 surrogate (\\ud800) in 'k'",
    )
    # Text (not bytes) can carry the surrogate itself, with no escape to give it away.
    assert _refusal('{"k": "\ud800"}') == (
        InvalidRequest,
        "The payload has a lone UTF-16 surrogate (\\ud800) in 'k'",
    )


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20))
def test_check_text_given_its_source_agrees_with_the_full_walk(text):
    source = json.dumps({"k": text, text: [text]})
    value = json.loads(source)
    assert check_text(value, what="x", source=source.encode()) == check_text(value, what="x")


def test_a_surrogate_pair_and_an_escaped_backslash_are_ordinary_text():
    assert read_json('["\\ud83d\\ude00", "\\\\ud800"]', what="x") == ["😀", "\\ud800"]


def test_parse_json_leaves_the_surrogate_check_to_check_text():
    value = parse_json(b'{"clientToken": "t", "k": "\\ud800"}', what="The payload")
    assert value["clientToken"] == "t"
    with pytest.raises(InvalidRequest, match="surrogate"):
        check_text(value, what="The payload")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xc3\x28", "The payload is not UTF-8: invalid continuation byte at byte 0"),
        ('{"a": 1}'.encode("utf-16"), "The payload is not UTF-8: invalid start byte at byte 0"),
        (b'{"a": }', "The payload is not valid JSON: Expecting value: line 1 column 7 (char 6)"),
    ],
    ids=["bad-utf8", "utf16", "syntax"],
)
def test_what_is_not_utf8_json_is_invalid_json(data, message):
    assert _refusal(data) == (InvalidJson, message)


def test_an_unterminated_string_full_of_escaped_quotes_is_read_in_linear_time():
    # A quadratic scan would take minutes over this; the test's timeout would fail it.
    data = b'"' + b'\\"' * 500_000
    assert _refusal(data)[0] is InvalidJson


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_any_json_value_round_trips(value):
    assert read_json(json.dumps(value).encode(), what="x") == value


@given(st.binary(max_size=300) | st.text(alphabet='[]{}"\\:,0123456789eE.-+ ntrufalsNIiy', max_size=300))
def test_any_input_is_read_or_refused_with_a_client_error(data):
    try:
        read_json(data, what="x")
    except InvalidRequest as error:
        assert error.message.startswith("x ")
