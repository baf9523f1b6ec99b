import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge.jobs_service.errors import InvalidQuery, InvalidRequest
from iot_jobs_bridge.jobs_service.fleet_query import (
    LEADING_WILDCARD_MAX_LENGTH,
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    Query,
    ThingFacts,
    parse,
)

SENSOR = ThingFacts(
    name="Sensor-1",
    thing_type_name="thermo",
    attributes={"color": "Red", "temp": "25.5", "serial": "abc*def", "mac:addr": "aa"},
    group_names=frozenset({"edge", "eu-west"}),
)
LAMP = ThingFacts(name="lamp_2", attributes={"color": "blue", "temp": "hot"})
BARE = ThingFacts(name="bare")
FLEET = (SENSOR, LAMP, BARE)
EVERY = {"Sensor-1", "lamp_2", "bare"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("*", EVERY),
        # thingName: anchored globs, case-insensitive values
        ("thingName:Sensor-1", {"Sensor-1"}),
        ("thingName:sensor-1", {"Sensor-1"}),
        ("thingName:SENSOR*", {"Sensor-1"}),
        ("thingName:lamp?2", {"lamp_2"}),
        ("thingName:?amp_2", {"lamp_2"}),
        ("thingName:lamp", set()),
        ("thingName:amp*", set()),
        ("thingName:*", EVERY),
        ('thingName:""', set()),
        # thingTypeName and thingGroupNames
        ("thingTypeName:thermo", {"Sensor-1"}),
        ("thingTypeName:*", {"Sensor-1"}),
        ("NOT thingTypeName:*", {"lamp_2", "bare"}),
        ("thingGroupNames:edge", {"Sensor-1"}),
        ("thingGroupNames:EU*", {"Sensor-1"}),
        ("thingGroupNames:eu", set()),
        ("thingGroupNames:*", {"Sensor-1"}),
        # attributes: globs, quotes, escapes, existence
        ("attributes.color:red", {"Sensor-1"}),
        ("attributes.color:bl?e", {"lamp_2"}),
        ("attributes.color:*", {"Sensor-1", "lamp_2"}),
        ("NOT attributes.color:*", {"bare"}),
        ('attributes.serial:"abc*def"', {"Sensor-1"}),
        ('attributes.serial:"abc*"', set()),
        ('attributes.serial:"abc\\*def"', {"Sensor-1"}),
        ("attributes.serial:abc\\*def", {"Sensor-1"}),
        ("attributes.color:R\\*", set()),
        ("attributes.mac\\:addr:aa", {"Sensor-1"}),
        ('attributes.color:"r~d" OR thingName:bare\\~', set()),
        ("attributes.missing:x", set()),
        ("NOT attributes.missing:x", EVERY),
        ("attributes.temp:25.5", {"Sensor-1"}),
        ("attributes.temp:25.50", set()),
        # numeric comparisons: non-numeric and missing values never match
        ("attributes.temp>25", {"Sensor-1"}),
        ("attributes.temp>25.5", set()),
        ("attributes.temp>=25.5", {"Sensor-1"}),
        ("attributes.temp<26", {"Sensor-1"}),
        ("attributes.temp<25.5", set()),
        ("attributes.temp<=2.55e1", {"Sensor-1"}),
        ("attributes.temp>-1", {"Sensor-1"}),
        ("attributes.color>0", set()),
        ("NOT attributes.temp>100", EVERY),
        # ranges
        ("attributes.temp:[25.5 TO 30]", {"Sensor-1"}),
        ("attributes.temp:{25.5 TO 30]", set()),
        ("attributes.temp:[20 TO 25.5]", {"Sensor-1"}),
        ("attributes.temp:[20 TO 25.5}", set()),
        ("attributes.temp:[25 TO *]", {"Sensor-1"}),
        ("attributes.temp:{* TO 25.5]", {"Sensor-1"}),
        ("attributes.temp:[* TO *]", {"Sensor-1"}),
        ("attributes.temp:[ 20  TO  30 ]", {"Sensor-1"}),
        ("attributes.temp:[30 TO 20]", set()),
        # boolean structure
        ("thingName:sensor* OR thingName:lamp*", {"Sensor-1", "lamp_2"}),
        ("thingName:sensor* thingTypeName:thermo", {"Sensor-1"}),
        ("thingName:sensor* AND thingTypeName:lamp", set()),
        ("thingName:* NOT thingGroupNames:edge", {"lamp_2", "bare"}),
        ("thingName:bare OR thingName:lamp_2 AND attributes.color:red", {"bare"}),
        ("(thingName:bare OR thingName:lamp_2) AND attributes.color:*", {"lamp_2"}),
        ("NOT thingName:bare AND NOT thingName:lamp_2", {"Sensor-1"}),
        ("NOT (thingName:bare OR thingName:lamp_2)", {"Sensor-1"}),
        ("NOT NOT thingName:bare", {"bare"}),
        ("attributes.color:* AND attributes.temp<30 NOT attributes.temp>26", {"Sensor-1"}),
        ("  (( thingName:bare ))\t", {"bare"}),
        ("thingName:bare OR *", EVERY),
    ],
)
def test_matches(query, expected):
    parsed = parse(query)
    assert {thing.name for thing in FLEET if parsed.matches(thing)} == expected


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("*", set()),
        ("thingName:a*", {"thingName"}),
        ("thingTypeName:t OR NOT thingGroupNames:g", {"thingTypeName", "thingGroupNames"}),
        (
            "attributes.color:red attributes.temp>3 attributes.temp:[1 TO 2]",
            {"attributes.color", "attributes.temp"},
        ),
        ("attributes.mac\\:addr:* OR *", {"attributes.mac:addr"}),
    ],
)
def test_fields(query, fields):
    assert parse(query).fields == frozenset(fields)


def test_query_is_immutable_and_keeps_its_text():
    query = parse("thingName:a*")
    assert query.text == "thingName:a*"
    assert query == parse("thingName:a*")
    with pytest.raises(dataclasses.FrozenInstanceError):
        query.text = "*"  # type: ignore[misc]


def _long(length):
    """An accepted query of exactly ``length`` characters."""
    return "thingName:" + "a" * (length - len("thingName:"))


@pytest.mark.parametrize(
    "query",
    [
        _long(MAX_QUERY_LENGTH),
        " OR ".join(["thingName:a"] * MAX_TERMS),
        "NOT " * MAX_DEPTH + "thingName:a",
        "(" * MAX_DEPTH + "thingName:a" + ")" * MAX_DEPTH,
        "thingName:*a" + " " * (LEADING_WILDCARD_MAX_LENGTH - len("thingName:*a")),
        "thingName:*a OR thingName:b* OR thingName:*",
        "attributes.a,b@c/d#e-f_g.h:1",
    ],
)
def test_limits_are_inclusive(query):
    assert isinstance(parse(query), Query)


Q = " in query: "
FIELDS = "(supported fields: thingName, thingTypeName, thingGroupNames, attributes.<name>)"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Query string is empty"),
        (" \t\n", "Query string is empty"),
        ("a" * (MAX_QUERY_LENGTH + 1), "Query string is 1025 characters long; the limit is 1024"),
        ("(thingName:a))", "Unexpected ')' at position 14" + Q + "(thingName:a))"),
        ("()", "Unexpected ')' at position 2" + Q + "()"),
        ("(thingName:a", "Missing ')' for the '(' at position 1" + Q + "(thingName:a"),
        ("(", "Expected a term after '(' at position 1" + Q + "("),
        ("thingName:a AND", "Expected a term after 'AND' at position 13" + Q + "thingName:a AND"),
        ("thingName:a OR", "Expected a term after 'OR' at position 13" + Q + "thingName:a OR"),
        ("thingName:a NOT", "Expected a term after 'NOT' at position 13" + Q + "thingName:a NOT"),
        ("OR thingName:a", "Unexpected 'OR' at position 1" + Q + "OR thingName:a"),
        ("AND", "Unexpected 'AND' at position 1" + Q + "AND"),
        (
            "thingName:a AND OR thingName:b",
            "Unexpected 'OR' at position 17" + Q + "thingName:a AND OR thingName:b",
        ),
        ("abc", "Term 'abc' at position 1 has no field (write field:value)" + Q + "abc"),
        ('"abc"', 'Quoted value at position 1 has no field (write field:"value")' + Q + '"abc"'),
        (":abc", "Missing field name at position 1" + Q + ":abc"),
        (
            "attributes.temp > 50",
            "Field 'attributes.temp' at position 1 must be followed by ':', '<' or '>' with no space"
            + Q
            + "attributes.temp > 50",
        ),
        (
            "thingName",
            "Field 'thingName' at position 1 must be followed by ':', '<' or '>' with no space"
            + Q
            + "thingName",
        ),
        (
            "thingName:a and thingName:b",
            "Operator 'and' at position 13 must be written in upper case" + Q + "thingName:a and thingName:b",
        ),
        ("-thingName:a", "'-' at position 1 is not supported (use NOT)" + Q + "-thingName:a"),
        ("!thingName:a", "'!' at position 1 is not supported (use NOT)" + Q + "!thingName:a"),
        (
            "thingName:a && thingName:b",
            "'&&' at position 13 is not supported (use AND)" + Q + "thingName:a && thingName:b",
        ),
        (
            "thingName:a || thingName:b",
            "'||' at position 13 is not supported (use OR)" + Q + "thingName:a || thingName:b",
        ),
        (
            "shadow.reported.x:1",
            f"Field 'shadow.reported.x' at position 1 is not supported by this server {FIELDS}"
            + Q
            + "shadow.reported.x:1",
        ),
        (
            "thingName:a connectivity.connected:true",
            f"Field 'connectivity.connected' at position 13 is not supported by this server {FIELDS}"
            + Q
            + "thingName:a connectivity.connected:true",
        ),
        (
            "thingId:1",
            f"Field 'thingId' at position 1 is not supported by this server {FIELDS}" + Q + "thingId:1",
        ),
        ("foo:bar", f"Unknown field 'foo' at position 1 {FIELDS}" + Q + "foo:bar"),
        ("ThingName:bar", f"Unknown field 'ThingName' at position 1 {FIELDS}" + Q + "ThingName:bar"),
        ("attributes:x", f"Unknown field 'attributes' at position 1 {FIELDS}" + Q + "attributes:x"),
        (
            "attributes.a$b:1",
            "Invalid attribute name 'a$b' at position 1 (names match [a-zA-Z0-9_.,@/:#-]+)"
            + Q
            + "attributes.a$b:1",
        ),
        (
            "attributes.:1",
            "Invalid attribute name '' at position 1 (names match [a-zA-Z0-9_.,@/:#-]+)"
            + Q
            + "attributes.:1",
        ),
        ("thingName:", "Missing value after 'thingName:' at position 10" + Q + "thingName:"),
        ("thingName: a", "Missing value after 'thingName:' at position 10" + Q + "thingName: a"),
        ("(thingName:)", "Missing value after 'thingName:' at position 11" + Q + "(thingName:)"),
        (
            "thingName:(a OR b)",
            "Field grouping 'thingName:(' at position 1 is not supported (repeat the field for each value)"
            + Q
            + "thingName:(a OR b)",
        ),
        ('thingName:"abc', "Unterminated quoted value at position 11" + Q + 'thingName:"abc'),
        ('thingName:"abc\\"', "Unterminated quoted value at position 11" + Q + 'thingName:"abc\\"'),
        ('thingName:"abc\\', "Unterminated quoted value at position 11" + Q + 'thingName:"abc\\'),
        ('thingName:a"b', "Unexpected '\"' at position 12" + Q + 'thingName:a"b'),
        ('thingName:"a"b', "Unexpected 'b' at position 14" + Q + 'thingName:"a"b'),
        ("thingName:a\\", "Dangling '\\' at position 12" + Q + "thingName:a\\"),
        (
            "thingName:abc~",
            "'~' at position 14 is not supported (no fuzzy, proximity or boost)" + Q + "thingName:abc~",
        ),
        (
            "thingName:abc^2",
            "'^' at position 14 is not supported (no fuzzy, proximity or boost)" + Q + "thingName:abc^2",
        ),
        (
            "thingName>5",
            "Comparison 'thingName>' at position 1 is only supported on attributes" + Q + "thingName>5",
        ),
        (
            "attributes.t>abc",
            "'abc' at position 14 is not a number (number after 'attributes.t>')" + Q + "attributes.t>abc",
        ),
        (
            "attributes.t>=nan",
            "'nan' at position 15 is not a number (number after 'attributes.t>=')" + Q + "attributes.t>=nan",
        ),
        ("attributes.t<", "Missing number after 'attributes.t<' at position 14" + Q + "attributes.t<"),
        (
            "attributes.t<5x",
            "'5x' at position 14 is not a number (number after 'attributes.t<')" + Q + "attributes.t<5x",
        ),
        (
            "thingName:[1 TO 2]",
            "Range at position 11 is only supported on attributes" + Q + "thingName:[1 TO 2]",
        ),
        ("attributes.t:[1 TO]", "Missing range bound at position 19" + Q + "attributes.t:[1 TO]"),
        (
            "attributes.t:[1 2]",
            "Expected 'TO' at position 17 in the range at position 14" + Q + "attributes.t:[1 2]",
        ),
        (
            "attributes.t:[1 to 2]",
            "Expected 'TO' at position 17 in the range at position 14" + Q + "attributes.t:[1 to 2]",
        ),
        (
            "attributes.t:[1 TO 2",
            "Expected ']' or '}' at position 21 to close the range at position 14"
            + Q
            + "attributes.t:[1 TO 2",
        ),
        (
            "attributes.t:[1 TO 2)",
            "Expected ']' or '}' at position 21 to close the range at position 14"
            + Q
            + "attributes.t:[1 TO 2)",
        ),
        (
            "attributes.t:[a TO 2]",
            "'a' at position 15 is not a number (range bound)" + Q + "attributes.t:[a TO 2]",
        ),
        (
            'attributes.t:["a" TO "b"]',
            "String range at position 15 is not supported (bounds must be numbers or *)"
            + Q
            + 'attributes.t:["a" TO "b"]',
        ),
        ("attributes.t:[1 TO 2]x", "Unexpected 'x' at position 22" + Q + "attributes.t:[1 TO 2]x"),
        (
            "thingName:*a OR thingGroupNames:?b",
            "Second leading wildcard at position 33 (only one term may start with * or ?)"
            + Q
            + "thingName:*a OR thingGroupNames:?b",
        ),
        (
            "thingName:*a" + " " * 89,
            "Leading wildcard at position 11 needs a query of at most 100 characters, not 101"
            + Q
            + "thingName:*a"
            + " " * 88
            + "...",
        ),
        (
            " OR ".join(["thingName:a"] * 13),
            "Term at position 181 is one too many; a query has at most 12 terms"
            + Q
            + " OR ".join(["thingName:a"] * 13)[:100]
            + "...",
        ),
        (
            "NOT " * 33 + "thingName:a",
            "'NOT' at position 129 nests deeper than 32 levels"
            + Q
            + ("NOT " * 33 + "thingName:a")[:100]
            + "...",
        ),
        (
            "(" * 33 + "thingName:a" + ")" * 33,
            "'(' at position 33 nests deeper than 32 levels" + Q + "(" * 33 + "thingName:a" + ")" * 33,
        ),
    ],
)
def test_invalid_queries_are_rejected_with_a_pinned_message(query, message):
    with pytest.raises(InvalidQuery) as caught:
        parse(query)
    assert caught.value.message == message


def test_invalid_query_is_a_400_invalid_query_exception():
    with pytest.raises(InvalidRequest) as caught:
        parse("shadow.reported.x:1")
    assert (caught.value.http_type, caught.value.http_status) == ("InvalidQueryException", 400)


# --- properties -----------------------------------------------------------------------------

ATTRIBUTE_NAMES = ["color", "temp", "mode"]
things = st.builds(
    ThingFacts,
    name=st.sampled_from(["Sensor-1", "sensor-2", "lamp_2", "bare"]),
    thing_type_name=st.none() | st.sampled_from(["thermo", "Lamp"]),
    attributes=st.dictionaries(
        st.sampled_from(ATTRIBUTE_NAMES),
        st.sampled_from(["red", "Red", "blue", "10", "25.5", "-3", "1e2", "hot", ""]),
        max_size=3,
    ),
    group_names=st.frozensets(st.sampled_from(["edge", "eu", "EU-west"]), max_size=3),
)
attributes = st.sampled_from([f"attributes.{name}" for name in ATTRIBUTE_NAMES])
numbers = st.sampled_from(["0", "10", "25.5", "-3", "1e2", "100"])
bounds = numbers | st.just("*")
# No value starts with a wildcard, so any combination stays within the leading-wildcard limit.
terms = st.one_of(
    st.just("*"),
    st.builds("thingName:{}".format, st.sampled_from(["Sensor-1", "sensor*", "lamp?2", "bare", "*"])),
    st.builds("thingTypeName:{}".format, st.sampled_from(["thermo", "LAMP", "t*", "*"])),
    st.builds("thingGroupNames:{}".format, st.sampled_from(["edge", "eu*", "EU-west", "*"])),
    st.builds("{}:{}".format, attributes, st.sampled_from(["red", "r*", "b?ue", "10", '"r*"', '""', "*"])),
    st.builds("{}{}{}".format, attributes, st.sampled_from([">", "<", ">=", "<="]), numbers),
    st.builds(
        "{}:{}{} TO {}{}".format, attributes, st.sampled_from("[{"), bounds, bounds, st.sampled_from("]}")
    ),
)
queries = st.recursive(
    terms,
    lambda inner: st.one_of(
        st.builds("({}) AND ({})".format, inner, inner),
        st.builds("({}) OR ({})".format, inner, inner),
        st.builds("({}) ({})".format, inner, inner),
        st.builds("NOT {}".format, inner),
    ),
    max_leaves=6,
)


@given(queries, things)
def test_not_is_the_complement(query, thing):
    assert parse(query).matches(thing) == (not parse(f"NOT ({query})").matches(thing))


@given(queries, queries, things)
def test_and_or_and_juxtaposition(a, b, thing):
    left, right = parse(a).matches(thing), parse(b).matches(thing)
    assert parse(f"({a}) AND ({b})").matches(thing) == (left and right)
    assert parse(f"({a}) ({b})").matches(thing) == (left and right)
    assert parse(f"({a}) OR ({b})").matches(thing) == (left or right)


@given(queries, things, things)
def test_only_the_reported_fields_matter(query, thing, other):
    parsed = parse(query)
    mixed = ThingFacts(
        name=thing.name if "thingName" in parsed.fields else other.name,
        thing_type_name=thing.thing_type_name if "thingTypeName" in parsed.fields else other.thing_type_name,
        attributes={
            **{k: v for k, v in other.attributes.items() if f"attributes.{k}" not in parsed.fields},
            **{k: v for k, v in thing.attributes.items() if f"attributes.{k}" in parsed.fields},
        },
        group_names=thing.group_names if "thingGroupNames" in parsed.fields else other.group_names,
    )
    assert parsed.matches(mixed) == parsed.matches(thing)
    assert parsed.text == query


SYNTAX = list('thingNameTypeGroupsattributes.ANDORNOT TO:<>=*?"\\()[]{}-+!&|0123456789 \t')


@given(st.text(max_size=300) | st.text(alphabet=SYNTAX, max_size=120), things)
def test_parser_raises_only_invalid_query(text, thing):
    try:
        query = parse(text)
    except InvalidQuery as exc:
        assert " at position " in exc.message or exc.message.startswith("Query string is ")
    else:
        assert isinstance(query.matches(thing), bool)
