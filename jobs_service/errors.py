"""One error hierarchy for both planes.

Every leaf carries the code a device sees in a ``/rejected`` payload
(``mqtt_code``) and the shape and status boto3 sees on the control plane
(``http_type``, ``http_status``). Foreign errors are translated into these in
one place each (the store for sqlite, ``json_input`` for JSON, the device API
for schemas).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .models import JobExecution

__all__ = [
    "AccessDenied",
    "CertificateState",
    "Conflict",
    "DeleteConflict",
    "InternalError",
    "InvalidJson",
    "InvalidQuery",
    "InvalidRequest",
    "InvalidSignature",
    "InvalidStateTransition",
    "InvalidTopic",
    "JobsError",
    "LimitExceeded",
    "MalformedPolicy",
    "ResourceAlreadyExists",
    "ResourceNotFound",
    "TerminalStateReached",
    "Throttled",
    "UnrecognizedClient",
    "VersionConflict",
    "VersionMismatch",
]


class JobsError(Exception):
    """Root of every error the service reports to a client."""

    mqtt_code: ClassVar[str] = "InternalError"
    http_type: ClassVar[str] = "InternalFailureException"
    http_status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        execution: JobExecution | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # The execution as it stands; the device plane shows its state with
        # InvalidStateTransition and VersionMismatch.
        self.execution = execution
        # Extra modeled members of the control-plane error shape (e.g. resourceArn).
        self.extra = extra or {}

    def __str__(self) -> str:
        return f"[{self.mqtt_code}] {self.message}"


class InternalError(JobsError):
    """An unexpected failure inside the service; retryable for clients."""


class InvalidRequest(JobsError):
    """Well-formed input with bad content."""

    mqtt_code = "InvalidRequest"
    http_type = "InvalidRequestException"
    http_status = 400


class InvalidJson(InvalidRequest):
    """Input that is not UTF-8 JSON, or a device payload that is not a JSON object.

    On the control plane it is an InvalidRequestException like its parent.
    """

    mqtt_code = "InvalidJson"


class InvalidTopic(InvalidRequest):
    """A publish under a thing's jobs topics that names no operation."""

    mqtt_code = "InvalidTopic"


class InvalidQuery(InvalidRequest):
    """A dynamic thing group query the service cannot parse or does not support."""

    http_type = "InvalidQueryException"


class ResourceNotFound(JobsError):
    mqtt_code = "ResourceNotFound"
    http_type = "ResourceNotFoundException"
    http_status = 404


class ResourceAlreadyExists(JobsError):
    mqtt_code = "InvalidRequest"
    http_type = "ResourceAlreadyExistsException"
    http_status = 409


class Conflict(JobsError):
    """A duplicate job template id (AWS uses ConflictException there)."""

    mqtt_code = "InvalidRequest"
    http_type = "ConflictException"
    http_status = 409


class CertificateState(JobsError):
    """A certificate's status does not allow the operation (e.g. deleting an ACTIVE one)."""

    http_type = "CertificateStateException"
    http_status = 406


class MalformedPolicy(JobsError):
    """A policy document that cannot be used; the message names the problem."""

    http_type = "MalformedPolicyException"
    http_status = 400


class DeleteConflict(JobsError):
    """Something still refers to what is being deleted (e.g. a certificate attached to a thing)."""

    http_type = "DeleteConflictException"
    http_status = 409


class VersionConflict(JobsError):
    """Control-plane ``expectedVersion`` mismatch."""

    mqtt_code = "VersionMismatch"
    http_type = "VersionConflictException"
    http_status = 409


class VersionMismatch(VersionConflict):
    """Device-plane ``expectedVersion`` mismatch; carries the execution state."""


class InvalidStateTransition(JobsError):
    mqtt_code = "InvalidStateTransition"
    http_type = "InvalidStateTransitionException"
    http_status = 409


class TerminalStateReached(JobsError):
    mqtt_code = "TerminalStateReached"
    http_type = "TerminalStateException"
    http_status = 410


class LimitExceeded(JobsError):
    mqtt_code = "InvalidRequest"
    http_type = "LimitExceededException"
    http_status = 410


class Throttled(JobsError):
    mqtt_code = "RequestThrottled"
    http_type = "ThrottlingException"
    http_status = 400


class AccessDenied(JobsError):
    """A control-plane request whose SigV4 signature or key is not accepted."""

    http_type = "ForbiddenException"
    http_status = 403


class UnrecognizedClient(AccessDenied):
    http_type = "UnrecognizedClientException"


class InvalidSignature(AccessDenied):
    http_type = "InvalidSignatureException"
