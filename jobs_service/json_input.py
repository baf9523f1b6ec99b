"""Strict JSON reading for everything a client or a device sends.

One reader serves the device plane, the control-plane body parser, the
``/schedules`` API and job documents, so every edge refuses the same things:

* :class:`~jobs_service.errors.InvalidJson`, for what is not JSON: bytes that
  are not UTF-8, bad syntax (brackets that do not balance included), and
  ``NaN``/``Infinity``/``-Infinity`` (Python's parser takes them; strict
  parsers on devices do not).
* :class:`~jobs_service.errors.InvalidRequest`, for JSON the service will not
  hold: nesting deeper than :data:`MAX_DEPTH`, a number literal longer than
  :data:`MAX_NUMBER_CHARS` characters or too large for a double, and strings
  with a lone UTF-16 surrogate (``"\\ud800"``), which no UTF-8 text can carry.

Depth, bracket balance and number length are checked before parsing, by scans
without recursion, so hostile nesting never reaches the recursive parser and a
long literal never reaches ``int()`` (a long literal is refused even where the
text around it is not JSON).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import InvalidJson, InvalidRequest

__all__ = ["MAX_DEPTH", "MAX_NUMBER_CHARS", "check_text", "parse_json", "read_json"]

#: Deepest nesting of arrays and objects accepted (a job document still nests freely within it).
MAX_DEPTH = 64
#: Longest number literal accepted; a 64-bit integer has 20 characters, a double at most 24.
MAX_NUMBER_CHARS = 100

# The bounds check sees the text with its strings blanked out (their brackets and digits are
# text). The string pattern is the unrolled-loop form, linear on any input; a quote that is
# never closed takes the rest of the text with it (the parser reports it).
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|"[\s\S]*')
# A run of number characters longer than the limit; tried only where a run starts, so linear.
_LONG_NUMBER = re.compile(rf"(?<![-+.0-9eE])[-+.0-9eE]{{{MAX_NUMBER_CHARS + 1},}}")
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOWN_KEY = 40
_SHOWN_PATH = 200


class _OutOfRange(ValueError):
    """A float literal too large for a double (Python would read it as infinity)."""


def read_json(data: bytes | str, *, what: str) -> Any:
    """Decode one JSON text strictly; ``what`` names it in error messages ("The payload")."""
    return check_text(parse_json(data, what=what), what=what, source=data)


def parse_json(data: bytes | str, *, what: str) -> Any:
    """Everything :func:`read_json` does except the lone-surrogate check.

    The device plane reads a request's ``clientToken`` before that check, so that
    its rejection can echo the token; it must then call :func:`check_text`.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJson(f"{what} is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    else:
        text = data
    _check_bounds(text, what)
    try:
        return _DECODER.decode(text)
    except _OutOfRange as exc:
        raise InvalidRequest(f"{what} has a number too large for a double: {exc}") from exc
    except ValueError as exc:  # JSONDecodeError, and the constants refused above
        raise InvalidJson(f"{what} is not valid JSON: {exc}") from exc


def check_text(value: Any, *, what: str, source: bytes | str | None = None) -> Any:
    """Return ``value`` (decoded JSON) if no string or key in it holds a lone surrogate.

    Python's parser turns ``"\\ud800"`` into a string that cannot be encoded as
    UTF-8, which would fail later wherever the value is stored or rendered.
    ``source``, the JSON text ``value`` was read from, spares the walk over
    ``value`` when that text cannot hold one.
    """
    if source is not None and not _may_hold_surrogate(source):
        return value
    try:
        # Depth is bounded, so the C encoder's recursion is safe; this is the fast check.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(f"{what} has a lone UTF-16 surrogate {_where_surrogate(value)}") from exc
    return value


def _may_hold_surrogate(source: bytes | str) -> bool:
    # UTF-8 cannot encode a surrogate (the strict decoder refuses one), so in bytes
    # only a \u escape can make one; text may also hold one as it is.
    if isinstance(source, bytes):
        return b"\\u" in source
    return "\\u" in source or _SURROGATE.search(source) is not None


def _check_bounds(text: str, what: str) -> None:
    outside = _STRINGS.sub(" ", text)
    long_number = _LONG_NUMBER.search(outside)
    if long_number is not None:
        length = len(long_number.group())
        raise InvalidRequest(f"{what} has a number of {length} characters; the limit is {MAX_NUMBER_CHARS}")
    # Depth without a recursive parser: one pass over the brackets, which must balance
    # before the parser sees them (it would recurse into every unclosed level).
    depth = deepest = 0
    for bracket in _NOT_BRACKET.sub("", outside):
        if bracket in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
            if depth < 0:
                break
    if depth != 0:
        raise InvalidJson(f"{what} is not valid JSON: its brackets do not balance")
    if deepest > MAX_DEPTH:
        raise InvalidRequest(f"{what} nests arrays and objects deeper than {MAX_DEPTH} levels")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise _OutOfRange(literal)
    return number


def _where_surrogate(value: Any) -> str:
    """Name the first place in ``value`` holding a lone surrogate, walking without recursion."""
    # Entries are (path, item, whether item is a key); pushed in reverse to pop in document order.
    stack: list[tuple[str, Any, bool]] = [("", value, False)]
    while stack:
        path, item, is_key = stack.pop()
        if isinstance(item, str):
            found = _SURROGATE.search(item)
            if found:
                place = f"a key of {_shown_path(path)}" if is_key else _shown_path(path)
                return f"({_shown(found.group())}) in {place}"
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                stack.append((f"{path}.{_shown(key)}" if path else _shown(key), child, False))
                stack.append((path, key, True))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child, False) for i, child in reversed(list(enumerate(item))))
    return "(position unknown)"


def _shown(text: str) -> str:
    """``text`` with lone surrogates and other non-ASCII as escapes, cut to a readable length."""
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    return escaped if len(escaped) <= _SHOWN_KEY else escaped[:_SHOWN_KEY] + "..."


def _shown_path(path: str) -> str:
    if not path:
        return "the top-level value"
    return f"'{path}'" if len(path) <= _SHOWN_PATH else f"'{path[:_SHOWN_PATH]}...'"


# One decoder for every call: ``json.loads`` with these options would build a new one each time.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)
