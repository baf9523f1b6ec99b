"""Control-plane operations: boto3 ``iot`` requests in, rest-json payloads out.

Parameters arrive checked against botocore's model (lengths, patterns, enums,
ranges) and keyed by the model's member names; the handlers add what the model
cannot express and call the engine, the registry and the templates.
"""

from __future__ import annotations

from collections.abc import Callable

from ..arns import Arns
from ..certificates import Certificates
from ..domain_events import DomainEvent
from ..engine import JobsEngine
from ..policies import Policies
from ..registry import Registry
from ..templates import Templates
from .base import Handler, HandlerBase
from .certificates import CertificateHandlers
from .jobs import JobHandlers
from .policies import PolicyHandlers
from .registry import RegistryHandlers

__all__ = ["ACCESS_OPERATIONS", "ControlPlane"]

# Operations after which who may connect, or what a connection may do, can differ.
ACCESS_OPERATIONS = frozenset(
    {
        "CreateKeysAndCertificate",
        "CreateCertificateFromCsr",
        "UpdateCertificate",
        "DeleteCertificate",
        "AttachThingPrincipal",
        "DetachThingPrincipal",
        "DeleteThing",
        "CreatePolicyVersion",
        "DeletePolicy",
        "AttachPolicy",
        "DetachPolicy",
    }
)


class ControlPlane:
    """Every control-plane operation: the handler families, composed over the same parts."""

    def __init__(
        self,
        engine: JobsEngine,
        registry: Registry,
        templates: Templates,
        arns: Arns,
        announce: Callable[[list[DomainEvent]], None],
        after_delete: Callable[[], None] = lambda: None,
        *,
        certificates: Certificates | None = None,
        policies: Policies | None = None,
    ) -> None:
        shared = (engine, registry, templates, arns, announce, after_delete)
        self.families: tuple[HandlerBase, ...] = (
            JobHandlers(*shared),
            RegistryHandlers(*shared),
            CertificateHandlers(*shared, certificates=certificates),
            PolicyHandlers(*shared, policies=policies),
        )

    def handlers(self) -> dict[str, Handler]:
        """Every supported operation, by its name in the AWS API model."""
        merged: dict[str, Handler] = {}
        for family in self.families:
            merged.update(family.handlers())
        return merged
