"""The device SDK's exceptions: one root, leaves named for what went wrong."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import JobExecutionState

__all__ = [
    "ClientClosed",
    "InvalidResponse",
    "JobsError",
    "RequestRejected",
    "RequestTimedOut",
]


class JobsError(Exception):
    """Root of every error the device SDK raises."""


class RequestRejected(JobsError):
    """The jobs service answered on ``/rejected``.

    ``code`` is the AWS error code (``VersionMismatch``, ``InvalidStateTransition``, ...);
    ``execution_state`` is the execution as the service holds it, when the code carries one.
    """

    def __init__(
        self,
        code: str,
        message: str,
        execution_state: JobExecutionState | None = None,
        topic: str = "",
    ) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.execution_state = execution_state
        self.topic = topic

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later (the AWS Device Client retries these two)."""
        return self.code in ("RequestThrottled", "InternalError")


class RequestTimedOut(JobsError, TimeoutError):
    """No reply arrived in time (the request stays unanswered; it may still have taken effect)."""


class ClientClosed(JobsError):
    """The client was closed while a request was waiting, or a request was made after close."""


class InvalidResponse(JobsError):
    """A reply or notification did not match the documented payload."""
