"""Control-plane errors that exist only at the HTTP edge.

They extend the project hierarchy in :mod:`jobs_service.errors` so that one
function (:func:`jobs_service.http_api.responses.error_response`) renders all
of them.
"""

from __future__ import annotations

from iot_jobs_bridge.jobs_service.errors import AccessDenied, JobsError

__all__ = ["IncompleteSignature", "MissingAuthenticationToken", "UnknownOperation"]


class MissingAuthenticationToken(AccessDenied):
    """The request carries no SigV4 ``Authorization`` header at all."""

    http_type = "MissingAuthenticationTokenException"


class IncompleteSignature(AccessDenied):
    """An ``Authorization`` header (or its ``X-Amz-Date``) that cannot be parsed."""

    http_type = "IncompleteSignatureException"


class UnknownOperation(JobsError):
    """No operation of the service model matches the method and path."""

    mqtt_code = "InvalidRequest"
    http_type = "UnknownOperationException"
    http_status = 404
