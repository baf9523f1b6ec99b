"""Job documents: what the service accepts as one."""

from __future__ import annotations

from .errors import InvalidRequest
from .json_input import read_json

__all__ = ["require_json_object"]


def require_json_object(document: str) -> None:
    """A job document must be a strict JSON object: MQTT sends it as one (decisions.md D9).

    Strict as :func:`~jobs_service.json_input.read_json` reads: no ``NaN`` or
    ``Infinity``, which devices' parsers refuse, and nothing too deep, too long
    or with lone surrogates.
    """
    if not isinstance(read_json(document, what="The job document"), dict):
        raise InvalidRequest("The job document must be a JSON object")
