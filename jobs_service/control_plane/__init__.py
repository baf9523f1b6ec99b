"""Control-plane operations: boto3 ``iot`` requests in, rest-json payloads out.

Parameters arrive checked against botocore's model (lengths, patterns, enums,
ranges) and keyed by the model's member names; the handlers add what the model
cannot express and call the engine, the registry and the templates.
"""

from __future__ import annotations

from .base import Handler
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


class ControlPlane(JobHandlers, RegistryHandlers, CertificateHandlers, PolicyHandlers):
    def handlers(self) -> dict[str, Handler]:
        """Every supported operation, by its name in the AWS API model."""
        return {
            "CreateThing": self.create_thing,
            "DescribeThing": self.describe_thing,
            "ListThings": self.list_things,
            "UpdateThing": self.update_thing,
            "DeleteThing": self.delete_thing,
            "CreateThingGroup": self.create_thing_group,
            "DescribeThingGroup": self.describe_thing_group,
            "UpdateThingGroup": self.update_thing_group,
            "DeleteThingGroup": self.delete_thing_group,
            "ListThingGroups": self.list_thing_groups,
            "ListThingGroupsForThing": self.list_thing_groups_for_thing,
            "AddThingToThingGroup": self.add_thing_to_thing_group,
            "RemoveThingFromThingGroup": self.remove_thing_from_thing_group,
            "ListThingsInThingGroup": self.list_things_in_thing_group,
            "CreateDynamicThingGroup": self.create_dynamic_thing_group,
            "UpdateDynamicThingGroup": self.update_dynamic_thing_group,
            "DeleteDynamicThingGroup": self.delete_dynamic_thing_group,
            "CreateJob": self.create_job,
            "DescribeJob": self.describe_job,
            "ListJobs": self.list_jobs,
            "UpdateJob": self.update_job,
            "CancelJob": self.cancel_job,
            "DeleteJob": self.delete_job,
            "GetJobDocument": self.get_job_document,
            "AssociateTargetsWithJob": self.associate_targets_with_job,
            "ListJobExecutionsForJob": self.list_job_executions_for_job,
            "ListJobExecutionsForThing": self.list_job_executions_for_thing,
            "DescribeJobExecution": self.describe_job_execution,
            "CancelJobExecution": self.cancel_job_execution,
            "DeleteJobExecution": self.delete_job_execution,
            "CreateJobTemplate": self.create_job_template,
            "DescribeJobTemplate": self.describe_job_template,
            "ListJobTemplates": self.list_job_templates,
            "DeleteJobTemplate": self.delete_job_template,
            "DescribeManagedJobTemplate": self.describe_managed_job_template,
            "ListManagedJobTemplates": self.list_managed_job_templates,
            "CreateKeysAndCertificate": self.create_keys_and_certificate,
            "CreateCertificateFromCsr": self.create_certificate_from_csr,
            "DescribeCertificate": self.describe_certificate,
            "ListCertificates": self.list_certificates,
            "UpdateCertificate": self.update_certificate,
            "DeleteCertificate": self.delete_certificate,
            "AttachThingPrincipal": self.attach_thing_principal,
            "DetachThingPrincipal": self.detach_thing_principal,
            "ListThingPrincipals": self.list_thing_principals,
            "ListPrincipalThings": self.list_principal_things,
            "CreatePolicy": self.create_policy,
            "GetPolicy": self.get_policy,
            "ListPolicies": self.list_policies,
            "DeletePolicy": self.delete_policy,
            "CreatePolicyVersion": self.create_policy_version,
            "AttachPolicy": self.attach_policy,
            "DetachPolicy": self.detach_policy,
            "ListAttachedPolicies": self.list_attached_policies,
        }
