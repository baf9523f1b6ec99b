"""A small signed client for the control plane, shared by the client commands.

``iotjobs schedule`` and ``iotjobs job watch`` make a handful of rest-json
calls each; a botocore client costs a second of imports and knows nothing of
our ``/schedules`` routes. This one signs with botocore's SigV4 signer (the
same one the server verifies with, service ``iot``) and sends with urllib.
It translates what can go wrong in one place: an error answer becomes
:class:`ServiceError` carrying the AWS error code, a server it cannot reach
becomes :class:`Unreachable`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

__all__ = ["ControlClient", "ServiceError", "Unreachable", "segment"]


class ServiceError(Exception):
    """The service answered with an error: ``code`` is its AWS error code (or the HTTP status)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Unreachable(ValueError):
    """No answer from the endpoint at all (refused, unresolvable, timed out)."""


class ControlClient:
    """Signed calls to one control-plane endpoint with one key."""

    def __init__(
        self, endpoint: str, *, region: str, access_key_id: str, secret_access_key: str, timeout: float = 30
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self.credentials = Credentials(access_key_id, secret_access_key)
        self._timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
    ) -> Any:
        """One signed request; its JSON answer, :class:`ServiceError` or :class:`Unreachable`.

        ``path`` goes out as given: quote caller-supplied parts with :func:`segment`.
        """
        url = self.endpoint + path + (f"?{urlencode(sorted(query.items()))}" if query else "")
        data = json.dumps(body).encode() if body is not None else b""
        request = AWSRequest(method=method, url=url, data=data)
        request.headers["Content-Type"] = "application/json"
        SigV4Auth(self.credentials, "iot", self.region).add_auth(request)
        prepared = urllib.request.Request(
            url, data=data or None, headers=dict(request.headers.items()), method=method
        )
        try:
            with urllib.request.urlopen(prepared, timeout=self._timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            kind = exc.headers.get("x-amzn-ErrorType", "").split(":")[0]
            raise ServiceError(kind or str(exc.code), _message(exc.read(), exc.reason)) from exc
        except urllib.error.URLError as exc:
            raise Unreachable(f"cannot reach {self.endpoint}: {exc.reason}") from exc
        except TimeoutError as exc:
            raise Unreachable(f"cannot reach {self.endpoint}: no answer within {self._timeout:g}s") from exc


def segment(value: str) -> str:
    """``value`` quoted as one path segment (a ``/`` in it cannot reach another route)."""
    return quote(value, safe="")


def _message(raw: bytes, reason: str) -> str:
    try:
        detail = json.loads(raw or b"{}")
    except ValueError:
        return reason
    message = detail.get("message", reason) if isinstance(detail, dict) else reason
    return str(message)
