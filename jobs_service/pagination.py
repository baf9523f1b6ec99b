"""Opaque ``nextToken`` values for keyset pagination on the control plane.

A token names the operation it belongs to and the position after which the
next page starts; a token from another operation, or one whose position has
the wrong shape, is a client error, never a server one.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from .errors import InvalidRequest

__all__ = ["DEFAULT_PAGE_SIZE", "decode_token", "encode_token", "page_size"]

DEFAULT_PAGE_SIZE = 50


def page_size(max_results: int | None) -> int:
    """The model bounds maxResults to 1-250; None means the default page."""
    return DEFAULT_PAGE_SIZE if max_results is None else max_results


def encode_token(operation: str, position: Any) -> str:
    raw = json.dumps([operation, position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, operation: str, *shape: type) -> Any:
    """The position a token of ``operation`` stands for; None when there is no token.

    ``shape`` gives the type of the position (one type) or of each part of it
    (several types, returned as a tuple).
    """
    if token is None:
        return None
    invalid = InvalidRequest(f"The nextToken is not a valid token for {operation}")
    try:
        padded = token + "=" * (-len(token) % 4)
        kind, position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise invalid from exc
    if kind != operation:
        raise invalid
    parts = [position] if len(shape) == 1 else position
    if not isinstance(parts, list) or len(parts) != len(shape):
        raise invalid
    for part, wanted in zip(parts, shape, strict=True):
        ok = isinstance(part, wanted) or (wanted is float and isinstance(part, int))
        if not ok or isinstance(part, bool):
            raise invalid
    return parts[0] if len(shape) == 1 else tuple(parts)
