"""Fitting what a device reports into AWS's ``statusDetails`` limits.

At most 10 pairs; keys of 1-128 letters, digits, ``:``, ``_`` or ``-``; values of
1-1,024 characters without control characters other than tab and newlines.
Command output is kept by its tail (the end of a log says why it failed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["MAX_PAIRS", "MAX_VALUE_CHARS", "fit", "head", "tail"]

MAX_PAIRS = 10
MAX_VALUE_CHARS = 1024
_KEY = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def tail(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """The last ``limit`` characters of ``text``, control characters replaced by ``?``."""
    return _CONTROL.sub("?", text)[-limit:]


def head(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """The first ``limit`` characters of ``text`` (for messages, whose start says what happened)."""
    clean = _CONTROL.sub("?", text)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def fit(details: Mapping[str, str]) -> dict[str, str]:
    """``details`` made valid: empty values dropped, long ones cut to their tail, 10 pairs kept.

    A key AWS would refuse is a programming error, so it raises ``ValueError`` naming it.
    """
    fitted: dict[str, str] = {}
    for key, value in details.items():
        if _KEY.fullmatch(key) is None:
            raise ValueError(f"statusDetails key {key!r} is not 1-128 of letters, digits, ':', '_' or '-'")
        text = tail(str(value))
        if text and len(fitted) < MAX_PAIRS:
            fitted[key] = text
    return fitted
