"""Control-plane operations: boto3 ``iot`` requests in, rest-json payloads out.

Parameters arrive checked against botocore's model (lengths, patterns, enums,
ranges) and keyed by the model's member names; the handlers add what the model
cannot express and call the engine, the registry and the templates.
"""

from __future__ import annotations

from .base import Handler, HandlerBase, Services
from .certificates import CertificateHandlers
from .jobs import JobHandlers
from .policies import PolicyHandlers
from .registry import RegistryHandlers

__all__ = ["ACCESS_OPERATIONS", "SINGLE_RESOURCE_OPERATIONS", "ControlPlane", "Services"]

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

# Operations whose work is bounded by the one resource they name, whatever the fleet's
# size: cheaper to answer on the event loop than the hop to the handler thread is.
# Anything that scans a job's executions, a group's members or a list stays off the loop.
SINGLE_RESOURCE_OPERATIONS = frozenset(
    {
        "CreateThing",
        "DescribeThing",
        "UpdateThing",
        "CreateThingGroup",
        "DescribeThingGroup",
        "UpdateThingGroup",
        "AddThingToThingGroup",
        "RemoveThingFromThingGroup",
        "DescribeJobExecution",
        "GetJobDocument",
        "CreateJobTemplate",
        "DescribeJobTemplate",
        "DeleteJobTemplate",
        "DescribeManagedJobTemplate",
        "DescribeCertificate",
        "GetPolicy",
    }
)


class ControlPlane:
    """Every control-plane operation: the handler families, composed over the same parts."""

    def __init__(self, services: Services) -> None:
        self.families: tuple[HandlerBase, ...] = (
            JobHandlers(services),
            RegistryHandlers(services),
            CertificateHandlers(services),
            PolicyHandlers(services),
        )

    def handlers(self) -> dict[str, Handler]:
        """Every supported operation, by its name in the AWS API model."""
        merged: dict[str, Handler] = {}
        for family in self.families:
            merged.update(family.handlers())
        return merged
