"""Job documents: what the service accepts as one."""

from __future__ import annotations

import json

from .errors import InvalidRequest

__all__ = ["require_json_object"]


def require_json_object(document: str) -> None:
    """A job document must be a JSON object: MQTT sends it as one (decisions.md D9)."""
    try:
        parsed = json.loads(document)
    except ValueError as exc:
        raise InvalidRequest(f"The job document is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InvalidRequest("The job document must be a JSON object")
