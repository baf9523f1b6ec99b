"""The control plane, called in-process as boto3 calls it over HTTP.

Each call is serialized by botocore for the operation, then routed, parsed and
validated by the same :class:`ServiceApi` that serves signed requests, and
handled on the same worker thread. So the console gets the limits, the checks
and the messages of the API itself, never a second version of them.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from botocore import serialize

from ..errors import InvalidRequest
from ..http_api.service import ServiceApi

__all__ = ["LocalApi"]


class LocalApi:
    def __init__(self, api: ServiceApi, worker: Executor) -> None:
        self._api = api
        self._worker = worker
        self._serializer = serialize.create_serializer("rest-json", include_validation=False)

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run ``operation`` with boto3-style ``params``; raises the API's own JobsError on refusal."""
        return await asyncio.get_running_loop().run_in_executor(
            self._worker, self.call_now, operation, params
        )

    def call_now(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """:meth:`call` on the calling thread."""
        model = self._api.model.operation_model(operation)
        try:
            request = self._serializer.serialize_to_request(params, model)
        except (TypeError, ValueError) as exc:  # a value of the wrong type for its member
            raise InvalidRequest(f"{operation}: {exc}") from exc
        query = [
            (name, str(item))
            for name, value in request["query_string"].items()
            for item in (value if isinstance(value, list) else [value])
        ]
        call = self._api.prepare(
            method=request["method"],
            raw_path=request["url_path"],
            query=query,
            headers=request["headers"],
            body=request["body"] or b"",
        )
        assert call is not None, f"{operation} routes to itself"
        return dict(call.handler(call.params) or {})
