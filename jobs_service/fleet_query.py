"""Fleet-indexing queries for dynamic thing groups: parse once, match many things.

A dynamic thing group holds every thing that matches its ``queryString``. This
module is pure: :func:`parse` turns the text into an immutable :class:`Query`
(or raises :class:`~jobs_service.errors.InvalidQuery`), and
:meth:`Query.matches` evaluates it against the registry facts of one thing.

Grammar (the subset of the AWS fleet-indexing syntax this server supports;
``docs/fleet-queries.md`` is the user-facing description)::

    query    := or_expr END
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*        juxtaposition means AND, as on AWS
    unary    := "NOT" unary | "(" or_expr ")" | "*" | term
    term     := field ":" value | field ":" range | attribute op number
    field    := thingName | thingTypeName | thingGroupNames | attributes.<name>
    value    := "*" (the field exists) | glob word | "quoted string"
    range    := ("[" | "{") bound "TO" bound ("]" | "}")     bound := number | "*"
    op       := "<" | "<=" | ">" | ">="

Precedence is NOT > AND > OR. Values match case-insensitively (AWS documents
search as case insensitive); field and attribute names are case-sensitive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, NoReturn, TypeAlias, assert_never

from iot_jobs_bridge.jobs_service.errors import InvalidQuery

__all__ = [
    "LEADING_WILDCARD_MAX_LENGTH",
    "MAX_DEPTH",
    "MAX_QUERY_LENGTH",
    "MAX_TERMS",
    "Query",
    "ThingFacts",
    "parse",
]

MAX_QUERY_LENGTH: Final = 1024
"""Longest accepted query, in characters."""
MAX_TERMS: Final = 12
"""Most ``field:value`` terms (and ``*``) in one query; AWS documents the same limit."""
MAX_DEPTH: Final = 32
"""Deepest nesting of parentheses and ``NOT``; keeps parsing and matching bounded."""
LEADING_WILDCARD_MAX_LENGTH: Final = 100
"""AWS allows one term with a leading wildcard, and then only in queries this short."""

_REGISTRY_FIELDS: Final = frozenset({"thingName", "thingTypeName", "thingGroupNames"})
_ATTRIBUTES: Final = "attributes."
_ATTRIBUTE_NAME: Final = re.compile(r"[a-zA-Z0-9_.,@/:#-]+")
# Fields AWS indexes from sources this server does not keep (shadows, connectivity, ...).
_AWS_ONLY_FIELD: Final = re.compile(r"(?:thingId|shadow|connectivity|deviceDefender)(?:\..*)?", re.DOTALL)
# Exponents are bounded so that every accepted number fits a Decimal.
_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,6})?")
_LUCENE_HINTS: Final = {"&&": "AND", "||": "OR", "!": "NOT", "-": "NOT", "+": "AND"}
_FIELDS_HINT: Final = "supported fields: thingName, thingTypeName, thingGroupNames, attributes.<name>"


@dataclass(frozen=True)
class ThingFacts:
    """The registry facts a query can read about one thing."""

    name: str
    thing_type_name: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    group_names: frozenset[str] = frozenset()
    """Names of the static thing groups the thing belongs to."""


@dataclass(frozen=True)
class _All:
    pass


@dataclass(frozen=True)
class _Glob:
    field: str
    pattern: re.Pattern[str]  # anchored by fullmatch; compiled over case-folded text; "*" = exists


@dataclass(frozen=True)
class _Range:
    field: str
    low: Decimal | None
    low_inclusive: bool
    high: Decimal | None
    high_inclusive: bool


@dataclass(frozen=True)
class _Not:
    operand: _Node


@dataclass(frozen=True)
class _And:
    operands: tuple[_Node, ...]


@dataclass(frozen=True)
class _Or:
    operands: tuple[_Node, ...]


_Leaf: TypeAlias = _All | _Glob | _Range
_Node: TypeAlias = _Leaf | _Not | _And | _Or


@dataclass(frozen=True)
class Query:
    """A parsed query; build it with :func:`parse`."""

    text: str
    fields: frozenset[str]
    """The fields the query reads, e.g. ``{"thingName", "attributes.color"}``. A thing
    whose values for these fields did not change still matches (or not) as before."""
    _root: _Node = field(repr=False)

    def matches(self, thing: ThingFacts) -> bool:
        """Whether ``thing`` belongs to a dynamic group defined by this query."""
        return _evaluate(self._root, thing)


def parse(query: str) -> Query:
    """Parse ``query``; raise :class:`InvalidQuery` naming the problem and its position."""
    if not query.strip():
        raise InvalidQuery("Query string is empty")
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidQuery(f"Query string is {len(query)} characters long; the limit is {MAX_QUERY_LENGTH}")
    tokens = _Lexer(query).tokens()
    root = _Parser(query, tokens).parse()
    fields = frozenset(t.node.field for t in tokens if t.node is not None and not isinstance(t.node, _All))
    return Query(query, fields, root)


def _values(name: str, thing: ThingFacts) -> Iterable[str]:
    if name == "thingName":
        return (thing.name,)
    if name == "thingTypeName":
        return () if thing.thing_type_name is None else (thing.thing_type_name,)
    if name == "thingGroupNames":
        return thing.group_names
    value = thing.attributes.get(name.removeprefix(_ATTRIBUTES))
    return () if value is None else (value,)


def _in_range(node: _Range, text: str) -> bool:
    if not _NUMBER.fullmatch(text):
        return False  # a non-numeric value is outside every numeric range
    number = Decimal(text)
    if node.low is not None and (number < node.low or (number == node.low and not node.low_inclusive)):
        return False
    return node.high is None or number < node.high or (number == node.high and node.high_inclusive)


def _evaluate(node: _Node, thing: ThingFacts) -> bool:
    match node:
        case _All():
            return True
        case _Glob():
            return any(node.pattern.fullmatch(v.casefold()) for v in _values(node.field, thing))
        case _Range():
            return any(_in_range(node, v) for v in _values(node.field, thing))
        case _Not():
            return not _evaluate(node.operand, thing)
        case _And():
            return all(_evaluate(operand, thing) for operand in node.operands)
        case _Or():
            return any(_evaluate(operand, thing) for operand in node.operands)
        case _:
            assert_never(node)


def _fail(query: str, message: str) -> NoReturn:
    shown = query if len(query) <= 100 else query[:100] + "..."
    raise InvalidQuery(f"{message} in query: {shown}")


def _at(index: int) -> str:
    return f"at position {index + 1}"  # positions count characters from 1


@dataclass(frozen=True)
class _Token:
    kind: str  # "(", ")", "AND", "OR", "NOT", "TERM" or "END"
    index: int
    text: str
    node: _Leaf | None = None


_Chars: TypeAlias = list[tuple[str, bool]]  # (character, escaped or quoted: never a wildcard)


class _Lexer:
    """Splits the text into operators, parentheses and complete terms."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.i = 0
        self.terms = 0
        self.leading_wildcard = False

    def fail(self, message: str) -> NoReturn:
        _fail(self.query, message)

    def peek(self) -> str:
        return self.query[self.i] if self.i < len(self.query) else ""

    def at_boundary(self) -> bool:
        char = self.peek()
        return char == "" or char.isspace() or char in ("(", ")")

    def skip_space(self) -> None:
        while self.peek().isspace():
            self.i += 1

    def tokens(self) -> list[_Token]:
        tokens: list[_Token] = []
        while True:
            self.skip_space()
            start, char = self.i, self.peek()
            if char == "":
                tokens.append(_Token("END", start, ""))
                return tokens
            if char in ("(", ")"):
                self.i += 1
                tokens.append(_Token(char, start, char))
            else:
                tokens.append(self.word(start))

    def read(self, stops: str) -> tuple[str, _Chars]:
        """Read up to whitespace, a parenthesis or one of ``stops``; ``\\`` escapes."""
        start, chars = self.i, []
        while not self.at_boundary() and self.peek() not in stops:
            if self.peek() == "\\":
                if self.i + 1 == len(self.query):
                    self.fail(f"Dangling '\\' {_at(self.i)}")
                chars.append((self.query[self.i + 1], True))
                self.i += 2
            elif self.peek() in ("~", "^"):  # no name or value holds these: Lucene fuzzy/boost syntax
                self.fail(f"'{self.peek()}' {_at(self.i)} is not supported (no fuzzy, proximity or boost)")
            else:
                chars.append((self.peek(), False))
                self.i += 1
        return self.query[start : self.i], chars

    def word(self, start: int) -> _Token:
        raw, chars = self.read(':<>"')
        after = self.peek()
        for prefix, operator in _LUCENE_HINTS.items():
            if raw.startswith(prefix):
                self.fail(f"'{prefix}' {_at(start)} is not supported (use {operator})")
        if after not in (":", "<", ">"):
            if raw in ("AND", "OR", "NOT"):
                return _Token(raw, start, raw)
            if raw == "*":
                return self.term(start, _All())
            if raw.upper() in ("AND", "OR", "NOT"):
                self.fail(f"Operator '{raw}' {_at(start)} must be written in upper case")
            if not raw:
                self.fail(f'Quoted value {_at(start)} has no field (write field:"value")')
            if raw in _REGISTRY_FIELDS or raw.startswith(_ATTRIBUTES):
                self.fail(f"Field '{raw}' {_at(start)} must be followed by ':', '<' or '>' with no space")
            self.fail(f"Term '{raw}' {_at(start)} has no field (write field:value)")
        name = "".join(char for char, _ in chars)
        self.check_field(name, start)
        operator_at = self.i
        if after == ":":
            self.i += 1
            return self.term(start, self.value(name, start, operator_at))
        operator = after + ("=" if self.query.startswith("=", self.i + 1) else "")
        self.i += len(operator)
        if not name.startswith(_ATTRIBUTES):
            self.fail(f"Comparison '{name}{operator}' {_at(start)} is only supported on attributes")
        number_at = self.i
        number = self.number(self.read('"')[0], number_at, f"number after '{name}{operator}'")
        if operator[0] == ">":
            return self.term(start, _Range(name, number, operator == ">=", None, False))
        return self.term(start, _Range(name, None, False, number, operator == "<="))

    def check_field(self, name: str, start: int) -> None:
        if name in _REGISTRY_FIELDS:
            return
        if name.startswith(_ATTRIBUTES):
            attribute = name.removeprefix(_ATTRIBUTES)
            if not _ATTRIBUTE_NAME.fullmatch(attribute):
                self.fail(
                    f"Invalid attribute name '{attribute}' {_at(start)} (names match [a-zA-Z0-9_.,@/:#-]+)"
                )
            return
        if not name:
            self.fail(f"Missing field name {_at(start)}")
        if _AWS_ONLY_FIELD.fullmatch(name):
            self.fail(f"Field '{name}' {_at(start)} is not supported by this server ({_FIELDS_HINT})")
        self.fail(f"Unknown field '{name}' {_at(start)} ({_FIELDS_HINT})")

    def term(self, start: int, node: _Leaf) -> _Token:
        self.terms += 1
        if self.terms > MAX_TERMS:
            self.fail(f"Term {_at(start)} is one too many; a query has at most {MAX_TERMS} terms")
        if not self.at_boundary():
            self.fail(f"Unexpected '{self.peek()}' {_at(self.i)}")
        return _Token("TERM", start, self.query[start : self.i], node)

    def value(self, name: str, start: int, colon: int) -> _Leaf:
        char = self.peek()
        if char == "" or char.isspace() or char == ")":
            self.fail(f"Missing value after '{name}:' {_at(colon)}")
        if char == "(":
            self.fail(
                f"Field grouping '{name}:(' {_at(start)} is not supported (repeat the field for each value)"
            )
        if char in ("[", "{"):
            if not name.startswith(_ATTRIBUTES):
                self.fail(f"Range {_at(self.i)} is only supported on attributes")
            return self.range(name)
        if char == '"':
            return _Glob(name, _glob(self.quoted()))
        value_at = self.i
        _, chars = self.read('"')
        if self.peek() == '"':
            self.fail(f"Unexpected '\"' {_at(self.i)}")
        if chars != [("*", False)] and chars[0] in (("*", False), ("?", False)):
            if self.leading_wildcard:
                self.fail(f"Second leading wildcard {_at(value_at)} (only one term may start with * or ?)")
            if len(self.query) > LEADING_WILDCARD_MAX_LENGTH:
                self.fail(
                    f"Leading wildcard {_at(value_at)} needs a query of at most "
                    f"{LEADING_WILDCARD_MAX_LENGTH} characters, not {len(self.query)}"
                )
            self.leading_wildcard = True
        return _Glob(name, _glob(chars))

    def quoted(self) -> _Chars:
        start, chars = self.i, []
        self.i += 1
        while self.peek() != '"':
            if self.peek() == "" or (self.peek() == "\\" and self.i + 1 == len(self.query)):
                self.fail(f"Unterminated quoted value {_at(start)}")
            if self.peek() == "\\":
                self.i += 1
            chars.append((self.peek(), True))
            self.i += 1
        self.i += 1
        return chars

    def range(self, name: str) -> _Range:
        start = self.i
        self.i += 1
        self.skip_space()
        low = self.bound()
        self.skip_space()
        keyword_at = self.i
        if self.read("]}")[0] != "TO":
            self.fail(f"Expected 'TO' {_at(keyword_at)} in the range {_at(start)}")
        self.skip_space()
        high = self.bound()
        self.skip_space()
        close = self.peek()
        if close not in ("]", "}"):
            self.fail(f"Expected ']' or '}}' {_at(self.i)} to close the range {_at(start)}")
        self.i += 1
        return _Range(name, low, self.query[start] == "[", high, close == "]")

    def bound(self) -> Decimal | None:
        bound_at = self.i
        if self.peek() == '"':
            self.fail(f"String range {_at(bound_at)} is not supported (bounds must be numbers or *)")
        raw, _ = self.read('"]}')
        return None if raw == "*" else self.number(raw, bound_at, "range bound")

    def number(self, raw: str, index: int, what: str) -> Decimal:
        if not raw:
            self.fail(f"Missing {what} {_at(index)}")
        if not _NUMBER.fullmatch(raw):
            self.fail(f"'{raw}' {_at(index)} is not a number ({what})")
        return Decimal(raw)


def _glob(chars: _Chars) -> re.Pattern[str]:
    wildcards = {"*": ".*", "?": "."}
    parts = (
        wildcards[c] if c in wildcards and not literal else re.escape(c.casefold()) for c, literal in chars
    )
    return re.compile("".join(parts), re.DOTALL)


class _Parser:
    """Recursive descent over the tokens; see the grammar in the module docstring."""

    def __init__(self, query: str, tokens: list[_Token]) -> None:
        self.query = query
        self.tokens = tokens
        self.position = 0

    def peek(self) -> _Token:
        return self.tokens[self.position]

    def take(self) -> _Token:
        token = self.tokens[self.position]
        self.position += min(1, len(self.tokens) - 1 - self.position)  # END stays put
        return token

    def parse(self) -> _Node:
        node = self.or_expr(0, None)
        extra = self.peek()
        if extra.kind != "END":  # only an unmatched ')' stops an or_expr early
            _fail(self.query, f"Unexpected '{extra.text}' {_at(extra.index)}")
        return node

    def or_expr(self, depth: int, after: _Token | None) -> _Node:
        operands = [self.and_expr(depth, after)]
        while self.peek().kind == "OR":
            operands.append(self.and_expr(depth, self.take()))
        return operands[0] if len(operands) == 1 else _Or(tuple(operands))

    def and_expr(self, depth: int, after: _Token | None) -> _Node:
        operands = [self.unary(depth, after)]
        while self.peek().kind in ("AND", "NOT", "(", "TERM"):
            explicit = self.take() if self.peek().kind == "AND" else None
            operands.append(self.unary(depth, explicit))
        return operands[0] if len(operands) == 1 else _And(tuple(operands))

    def unary(self, depth: int, after: _Token | None) -> _Node:
        token = self.take()
        if token.kind in ("NOT", "(") and depth >= MAX_DEPTH:
            _fail(self.query, f"'{token.text}' {_at(token.index)} nests deeper than {MAX_DEPTH} levels")
        if token.kind == "NOT":
            return _Not(self.unary(depth + 1, token))
        if token.kind == "(":
            inner = self.or_expr(depth + 1, token)
            if self.take().kind != ")":
                _fail(self.query, f"Missing ')' for the '(' {_at(token.index)}")
            return inner
        if token.node is not None:
            return token.node
        if token.kind == "END" and after is not None:
            _fail(self.query, f"Expected a term after '{after.text}' {_at(after.index)}")
        _fail(self.query, f"Unexpected '{token.text}' {_at(token.index)}")
