"""rest-json responses: successful bodies and the one error mapping.

Every response carries ``x-amzn-RequestId`` (botocore copies it into
``ResponseMetadata.RequestId``). Errors carry ``x-amzn-ErrorType``, from which
botocore takes the error code, and a ``{"message": ...}`` body plus any extra
modeled members of the error shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from iot_jobs_bridge.jobs_service.errors import InternalError, JobsError

__all__ = ["drop_nulls", "error_response", "internal_error_response", "json_response"]

CONTENT_TYPE = "application/json"
INTERNAL_FAILURE_MESSAGE = "An internal error occurred while processing the request"


def drop_nulls(value: Any) -> Any:
    """Remove ``None`` from dicts and lists, recursively: AWS omits absent fields."""
    if isinstance(value, Mapping):
        return {key: drop_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [drop_nulls(item) for item in value if item is not None]
    return value


def json_response(
    body: Mapping[str, Any] | None,
    *,
    request_id: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A JSON response without nulls; ``None`` becomes ``{}``."""
    value = drop_nulls(body or {})
    try:
        content = _dumps(value, ascii_only=False).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (stored before the edges refused them) has no UTF-8 form;
        # ASCII-only JSON writes it as a \ud800 escape, which every JSON reader takes.
        content = _dumps(value, ascii_only=True).encode("ascii")
    all_headers = {"x-amzn-RequestId": request_id, **(headers or {})}
    return Response(content, status_code=status, headers=all_headers, media_type=CONTENT_TYPE)


def _dumps(value: Any, *, ascii_only: bool) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only, allow_nan=False)


def error_response(error: JobsError, *, request_id: str) -> Response:
    """Render any :class:`JobsError` with its HTTP status and AWS error shape name."""
    body = {**error.extra, "message": error.message}
    return json_response(
        body, request_id=request_id, status=error.http_status, headers={"x-amzn-ErrorType": error.http_type}
    )


def internal_error_response(*, request_id: str) -> Response:
    """A 500 ``InternalFailureException`` that reveals nothing about the cause."""
    return error_response(InternalError(INTERNAL_FAILURE_MESSAGE), request_id=request_id)
