"""The few AWS IoT control-plane calls the simulator makes, as a small rest-json client.

A simulation registers every thing of its fleet (two calls each) before it
starts, so the cost of a call shows in its CPU per execution; a botocore client
spends several milliseconds of CPU on each. This client signs with botocore's
SigV4 signer (the same one the service verifies with) and sends over
keep-alive HTTP/1.1 connections (``http1.py``), one per thread, for a fraction of that.
Requests are the AWS IoT rest-json ones; throttling, server errors and dropped
connections are retried with jittered backoff, as botocore's standard mode does.
"""

from __future__ import annotations

import json
import random
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .http1 import HttpConnection

__all__ = ["ControlPlane", "ControlPlaneError"]

_RETRIED_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "InternalFailureException"})
_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class ControlPlaneError(Exception):
    """The service answered a call with an error; ``code`` is its AWS error code."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.status = status


class ControlPlane:
    """Signed calls to one control-plane endpoint; safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        attempts: int = 5,
        timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"control plane URL {url!r} must be http://HOST:PORT or https://HOST:PORT")
        self._url = f"{parts.scheme}://{parts.netloc}"
        self._netloc = parts.netloc
        self._https = parts.scheme == "https"
        self._host: str = parts.hostname
        self._port = parts.port
        self._signer = SigV4Auth(Credentials(access_key_id, secret_access_key), "iot", region)
        self._attempts = attempts
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[HttpConnection] = set()

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection, whichever thread opened it (idempotent)."""
        with self._lock:
            connections, self._open = self._open, set()
        for connection in connections:
            connection.close()

    # -- the calls the simulator makes --------------------------------------

    def create_thing_group(self, name: str) -> dict[str, Any]:
        return self.call("POST", f"/thing-groups/{_segment(name)}", {})

    def describe_thing_group(self, name: str) -> dict[str, Any]:
        return self.call("GET", f"/thing-groups/{_segment(name)}")

    def create_thing(self, name: str) -> dict[str, Any]:
        return self.call("POST", f"/things/{_segment(name)}", {})

    def add_thing_to_thing_group(self, group: str, thing: str) -> None:
        self.call("PUT", "/thing-groups/addThingToThingGroup", {"thingGroupName": group, "thingName": thing})

    def create_job(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("PUT", f"/jobs/{_segment(job_id)}", body)

    def describe_job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", f"/jobs/{_segment(job_id)}")

    def job_executions(self, job_id: str) -> Iterator[dict[str, Any]]:
        """Every execution summary of ``job_id`` (ListJobExecutionsForJob, all pages)."""
        query: dict[str, str] = {"maxResults": "250"}
        while True:
            page = self.call("GET", f"/jobs/{_segment(job_id)}/things", query=query)
            yield from page.get("executionSummaries", [])
            token = page.get("nextToken")
            if not token:
                return
            query["nextToken"] = token

    # -- plumbing --------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One signed request; its JSON answer, or :class:`ControlPlaneError`."""
        target = path + (f"?{urlencode(sorted(query.items()))}" if query else "")
        data = json.dumps(body).encode() if body is not None else b""
        attempt = 0
        while True:
            attempt += 1
            try:
                status, code, answer = self._send(method, target, data)
            except OSError:
                self._drop_connection()
                if attempt >= self._attempts:
                    raise
                self._pause(attempt)
                continue
            if status < 300:
                return answer
            error = ControlPlaneError(code, str(answer.get("message", "")), status)
            if attempt >= self._attempts or (code not in _RETRIED_CODES and status not in _RETRIED_STATUSES):
                raise error
            self._pause(attempt)

    def _send(self, method: str, target: str, data: bytes) -> tuple[int, str, dict[str, Any]]:
        headers = {"Host": self._netloc}
        if data:
            headers["Content-Type"] = "application/json"
        request = AWSRequest(method=method, url=self._url + target, data=data, headers=headers)
        self._signer.add_auth(request)
        status, answer_headers, raw = self._connection().exchange(
            method, target, dict(request.headers.items()), data
        )
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {"message": raw[:200].decode("utf-8", "replace")}
        if not isinstance(answer, dict):
            answer = {}
        code = (answer_headers.get("x-amzn-errortype") or answer.get("__type") or "").split(":")[0]
        return status, code or f"HTTP {status}", answer

    def _connection(self) -> HttpConnection:
        connection: HttpConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            tls = ssl.create_default_context() if self._https else None
            port = self._port or (443 if self._https else 80)
            connection = HttpConnection(self._host, port, tls=tls, timeout=self._timeout)
            self._local.connection = connection
            with self._lock:
                self._open.add(connection)
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
            with self._lock:
                self._open.discard(connection)

    @staticmethod
    def _pause(attempt: int) -> None:
        time.sleep(random.uniform(0, min(20.0, 0.1 * 2**attempt)))


def _segment(value: str) -> str:
    return quote(value, safe="")
