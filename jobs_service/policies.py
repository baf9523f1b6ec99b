"""AWS IoT policies: documents with versions, attached to certificates.

The broker evaluates the default version of every policy attached to the
certificate a device connects with (`broker.policy`); a certificate with no
policy gets the per-thing default rule.
"""

from __future__ import annotations

import re

from iot_jobs_bridge.broker.policy import PolicyError, parse_policy

from .arns import Arns
from .clock import Clock
from .errors import DeleteConflict, MalformedPolicy, ResourceAlreadyExists, ResourceNotFound
from .store import Policy, Store

__all__ = ["Policies"]

_NAME = re.compile(r"[\w+=,.@-]{1,128}")


class Policies:
    def __init__(self, store: Store, clock: Clock, arns: Arns) -> None:
        self.store = store
        self.clock = clock
        self.arns = arns

    def create(self, name: str, document: str) -> Policy:
        _check(document)
        with self.store.atomic():
            if self.store.policies.get_policy(name) is not None:
                raise ResourceAlreadyExists(f"Policy {name} already exists")
            self.store.policies.insert_policy(name, document, self.clock.now())
            return self.get(name)

    def get(self, name: str) -> Policy:
        policy = self.store.policies.get_policy(name)
        if policy is None:
            raise ResourceNotFound(f"Policy {name} does not exist")
        return policy

    def create_version(self, name: str, document: str, *, make_default: bool) -> int:
        _check(document)
        with self.store.atomic():
            self.get(name)
            return self.store.policies.add_policy_version(
                name, document, self.clock.now(), make_default=make_default
            )

    def delete(self, name: str) -> None:
        with self.store.atomic():
            self.get(name)
            targets = self.store.policies.policy_targets(name)
            if targets:
                raise DeleteConflict(f"Policy {name} is attached to {', '.join(targets)}; detach it first")
            self.store.policies.delete_policy(name)

    def attach(self, name: str, target: str) -> None:
        with self.store.atomic():
            self.get(name)
            self._certificate(target)
            self.store.policies.attach_policy(name, target)

    def detach(self, name: str, target: str) -> None:
        with self.store.atomic():
            self.get(name)
            self.store.policies.detach_policy(name, target)

    def attached(self, target: str) -> list[str]:
        return self.store.policies.policies_of(target)

    def documents_for(self, target: str) -> list[str]:
        """The default-version documents of every policy attached to ``target``."""
        documents = []
        for name in self.store.policies.policies_of(target):
            policy = self.store.policies.get_policy(name)
            if policy is not None:
                documents.append(policy.document)
        return documents

    def _certificate(self, target: str) -> None:
        cert_id = self.arns.parse_local(target, "cert")
        if self.store.certificates.get_certificate(cert_id) is None:
            raise ResourceNotFound(f"Certificate {cert_id} does not exist")


def _check(document: str) -> None:
    try:
        parse_policy(document)
    except PolicyError as exc:
        raise MalformedPolicy(str(exc)) from exc
