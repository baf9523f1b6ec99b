"""Opaque ``nextToken`` values for keyset pagination on the control plane."""

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


def encode_token(position: Any) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None) -> Any:
    """The position a token stands for; None when there is no token."""
    if token is None:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"The nextToken {token!r} is not valid") from exc
