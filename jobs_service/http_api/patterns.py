"""Evaluate the model's ``pattern`` constraints the way AWS (Java) does.

The patterns are Java regular expressions applied with ``matches()``, i.e. to
the whole value. The ``regex`` module understands ``\\p{C}``, ``\\p{L}`` and
friends, but it reads the POSIX classes (``\\p{Graph}``, ``\\p{Upper}``, ...)
and ``\\w``, ``\\d``, ``\\s`` as Unicode classes, whereas Java's defaults are
ASCII-only. :func:`translate` rewrites those into explicit ASCII sets.
"""

from __future__ import annotations

import functools
import logging

import regex

__all__ = ["matches", "translate"]

logger = logging.getLogger("iot_jobs_bridge.jobs_service.http_api")

# Java's POSIX character classes (java.util.regex.Pattern, US-ASCII only).
_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7F",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": "\\x20-~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1F\\x7F",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0B\\f\\r",
}
_SHORTHANDS = {"w": "a-zA-Z_0-9", "d": "0-9", "s": " \\t\\n\\x0B\\f\\r"}

# Patterns are simple, but a pathological one must not stall the server.
_MATCH_TIMEOUT_SECONDS = 0.5


def translate(pattern: str) -> str:
    """Rewrite Java's ASCII-only classes in ``pattern`` for the ``regex`` module.

    The result is meant for ``regex``'s V1 mode, which (like Java) allows sets
    nested inside sets, so a negated class can appear within ``[...]``.
    """
    out: list[str] = []
    depth = 0  # nesting of [...] sets
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            if escaped in "pP" and pattern.startswith("{", i + 2):
                end = pattern.find("}", i + 3)
                name = pattern[i + 3 : end].removeprefix("Is") if end != -1 else ""
                if name in _POSIX:
                    out.append(_ascii_set(_POSIX[name], negated=escaped == "P", in_set=depth > 0))
                    i = end + 1
                    continue
            if escaped.lower() in _SHORTHANDS:
                ranges = _SHORTHANDS[escaped.lower()]
                out.append(_ascii_set(ranges, negated=escaped.isupper(), in_set=depth > 0))
                i += 2
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "[":
            depth += 1
        elif char == "]" and depth and not _opens_set(out):
            depth -= 1
        out.append(char)
        i += 1
    return "".join(out)


def matches(pattern: str, value: str) -> bool:
    """Whether the whole of ``value`` matches the Java ``pattern``.

    A pattern that cannot be compiled is logged once and treated as matching:
    a gap in our translation must not reject valid requests.
    """
    compiled = _compile(pattern)
    if compiled is None:
        return True
    try:
        return compiled.fullmatch(value, timeout=_MATCH_TIMEOUT_SECONDS) is not None
    except TimeoutError:
        return False


@functools.lru_cache(maxsize=512)
def _compile(pattern: str) -> regex.Pattern[str] | None:
    try:
        return regex.compile(translate(pattern), regex.V1)
    except regex.error:
        logger.warning("Cannot evaluate model pattern %r; not enforcing it", pattern)
        return None


def _ascii_set(ranges: str, *, negated: bool, in_set: bool) -> str:
    if in_set and not negated:
        return ranges
    return f"[{'^' if negated else ''}{ranges}]"


def _opens_set(out: list[str]) -> bool:
    # "]" right after "[" or "[^" is a literal, not the end of the class.
    return bool(out) and (out[-1] == "[" or (out[-1] == "^" and len(out) > 1 and out[-2] == "["))
