"""Policy operations (CreatePolicy, AttachPolicy, ...)."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest
from ..pagination import decode_token, encode_token, page_size
from ..policies import Policies
from .base import Handler, HandlerBase, Params

__all__ = ["PolicyHandlers"]


class PolicyHandlers(HandlerBase):
    def handlers(self) -> dict[str, Handler]:
        """This family's operations, by their names in the AWS API model."""
        return {
            "CreatePolicy": self.create_policy,
            "GetPolicy": self.get_policy,
            "ListPolicies": self.list_policies,
            "DeletePolicy": self.delete_policy,
            "CreatePolicyVersion": self.create_policy_version,
            "AttachPolicy": self.attach_policy,
            "DetachPolicy": self.detach_policy,
            "ListAttachedPolicies": self.list_attached_policies,
        }

    def _policies(self) -> Policies:
        if self.services.policies is None:
            raise InvalidRequest("Policies are not enabled on this server")
        return self.services.policies

    def create_policy(self, params: Params) -> dict[str, Any]:
        policy = self._policies().create(params["policyName"], params["policyDocument"])
        return {
            "policyName": policy.name,
            "policyArn": self.arns.policy(policy.name),
            "policyDocument": policy.document,
            "policyVersionId": str(policy.default_version),
        }

    def get_policy(self, params: Params) -> dict[str, Any]:
        policy = self._policies().get(params["policyName"])
        return {
            "policyName": policy.name,
            "policyArn": self.arns.policy(policy.name),
            "policyDocument": policy.document,
            "defaultVersionId": str(policy.default_version),
            "creationDate": policy.created_at,
            "lastModifiedDate": policy.last_modified_at,
        }

    def list_policies(self, params: Params) -> dict[str, Any]:
        limit = page_size(params.get("pageSize"))
        after = decode_token(params.get("marker"), "ListPolicies", str)
        names = self._policies().store.policies.list_policies(after=after, limit=limit + 1)
        result: dict[str, Any] = {
            "policies": [{"policyName": n, "policyArn": self.arns.policy(n)} for n in names[:limit]]
        }
        if len(names) > limit:
            result["nextMarker"] = encode_token("ListPolicies", names[limit - 1])
        return result

    def delete_policy(self, params: Params) -> None:
        self._policies().delete(params["policyName"])

    def create_policy_version(self, params: Params) -> dict[str, Any]:
        name = params["policyName"]
        default = bool(params.get("setAsDefault"))
        version = self._policies().create_version(name, params["policyDocument"], make_default=default)
        return {
            "policyArn": self.arns.policy(name),
            "policyDocument": params["policyDocument"],
            "policyVersionId": str(version),
            "isDefaultVersion": default,
        }

    def attach_policy(self, params: Params) -> None:
        self._policies().attach(params["policyName"], params["target"])

    def detach_policy(self, params: Params) -> None:
        self._policies().detach(params["policyName"], params["target"])

    def list_attached_policies(self, params: Params) -> dict[str, Any]:
        names = self._policies().attached(params["target"])
        return {"policies": [{"policyName": n, "policyArn": self.arns.policy(n)} for n in names]}
