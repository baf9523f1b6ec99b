"""Who is connecting: principals and the credential rules that produce them.

Pure policy, no amqtt: the broker plugin in `broker.plugins` calls an
`Authenticator` and stores the resulting `Principal` on the client's session,
or, for a refusal, the reason the broker logs (`Refusal`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from iot_jobs_bridge.broker.policy import Statement, allowed, parse_policy, resource_arn

__all__ = [
    "Authenticator",
    "CertificateIdentity",
    "CredentialAuthenticator",
    "ExplainingAuthenticator",
    "Principal",
    "Refusal",
    "authenticate_explained",
]


@dataclass(frozen=True)
class Principal:
    """An authenticated MQTT client.

    `kind` is `"admin"` (full topic rights: monitoring tools), `"service"`
    (the jobs service's own connection: full rights, but reply topics are not
    delivered back to it) or `"thing"` (a device, limited to its own
    `$aws/things/<name>/jobs/...` topics) or `"policy"` (a certificate with
    AWS IoT policies attached: every action is decided by `statements`, with
    `thing` and the client id `name` as policy variables); `name` is the admin
    key id, the thing name or the client id. `certificate_id` names the
    certificate that logged it in, if one did (not part of its identity for
    comparisons: the rights are the same).
    """

    kind: Literal["admin", "service", "thing", "policy"]
    name: str
    statements: tuple[Statement, ...] = ()
    thing: str = ""
    arn_prefix: str = ""
    certificate_id: str = field(default="", compare=False)

    @property
    def identifier(self) -> str:
        """AWS IoT's ``principalIdentifier``: the certificate id, else the key id or thing name."""
        return self.certificate_id or self.name

    def may(self, action: str, name: str) -> bool:
        """For a `"policy"` principal: whether its policies allow ``action`` on ``name``."""
        variables = {"iot:Connection.Thing.ThingName": self.thing, "iot:ClientId": self.name}
        return allowed(self.statements, action, resource_arn(self.arn_prefix, action, name), variables)


@dataclass(frozen=True)
class CertificateIdentity:
    """What one of our client certificates stands for: its things and policy documents, and its status.

    Only an ``ACTIVE`` certificate logs a client in; the status and id say why another is refused.
    """

    things: list[str]
    policies: list[str]
    status: str = "ACTIVE"
    certificate_id: str = ""


@dataclass(frozen=True)
class Refusal:
    """Why a CONNECT is refused: a short phrase an operator can act on, for the broker's log.

    The client itself only ever learns "not authorized".
    """

    reason: str


class Authenticator(Protocol):
    """Decides who an MQTT CONNECT belongs to.

    Returns the principal, or `None` to refuse the connection. It runs on the
    broker's event loop for every CONNECT, so it must be quick and must not block.
    """

    def authenticate(
        self,
        client_id: str | None,
        username: str | None,
        password: str | None,
        certificate: bytes | None = None,
    ) -> Principal | None: ...


@runtime_checkable
class ExplainingAuthenticator(Authenticator, Protocol):
    """An `Authenticator` that can also say why it refuses."""

    def check(
        self,
        client_id: str | None,
        username: str | None,
        password: str | None,
        certificate: bytes | None = None,
    ) -> Principal | Refusal: ...


def authenticate_explained(
    authenticator: Authenticator,
    client_id: str | None,
    username: str | None,
    password: str | None,
    certificate: bytes | None = None,
) -> Principal | Refusal:
    """The principal, or why not: `check` where the authenticator has one, else a generic reason."""
    if isinstance(authenticator, ExplainingAuthenticator):
        return authenticator.check(client_id, username, password, certificate)
    principal = authenticator.authenticate(client_id, username, password, certificate)
    return principal if principal is not None else Refusal("credentials not accepted")


class CredentialAuthenticator:
    """The default authenticator: one admin key, and devices by client id.

    * username equal to the admin key id: admin if the password is the admin
      secret (the service, when the client id is `service_client_id`),
      otherwise refused (it never falls through to the device rule);
    * a client certificate (the TLS listener requires one) must be ours and
      ACTIVE (``certificate_identity`` decides); with AWS IoT policies attached,
      they decide (``iot:Connect`` on the client id, then every action);
      without, the client id must name a thing the certificate is attached to;
    * otherwise a non-empty client id naming a registered thing is that thing,
      whatever the username and password (the AWS IoT Device SDK sends its
      metrics as the username and no password);
    * anything else is refused.
    """

    def __init__(
        self,
        admin_key_id: str,
        admin_secret: str,
        thing_exists: Callable[[str], bool],
        service_client_id: str | None = None,
        certificate_identity: Callable[[bytes], CertificateIdentity | None] | None = None,
        arn_prefix: str = "",
    ) -> None:
        if not admin_key_id or not admin_secret:
            # An empty key id would make every client without a username an admin candidate.
            raise ValueError("admin_key_id and admin_secret must not be empty")
        self._admin_key_id = admin_key_id
        self._admin_secret = admin_secret.encode()
        self._thing_exists = thing_exists
        self._service_client_id = service_client_id
        self._certificate_identity = certificate_identity
        self._arn_prefix = arn_prefix

    def authenticate(
        self,
        client_id: str | None,
        username: str | None,
        password: str | None,
        certificate: bytes | None = None,
    ) -> Principal | None:
        """Return the principal for these CONNECT credentials, or `None` to refuse."""
        decided = self.check(client_id, username, password, certificate)
        return decided if isinstance(decided, Principal) else None

    def check(
        self,
        client_id: str | None,
        username: str | None,
        password: str | None,
        certificate: bytes | None = None,
    ) -> Principal | Refusal:
        """The principal for these CONNECT credentials, or why they are refused."""
        if certificate is not None:
            return self._by_certificate(client_id, certificate)
        if username == self._admin_key_id:
            if password is not None and hmac.compare_digest(password.encode(), self._admin_secret):
                if self._service_client_id is not None and client_id == self._service_client_id:
                    return Principal("service", self._admin_key_id)
                return Principal("admin", self._admin_key_id)
            return Refusal(f"bad admin secret for access key id {self._admin_key_id}")
        if not client_id:
            return Refusal("no client id (a device connects with its thing name as client id)")
        if self._thing_exists(client_id):
            return Principal("thing", client_id)
        return Refusal(f"thing not registered (aws iot create-thing --thing-name {client_id})")

    def _by_certificate(self, client_id: str | None, certificate: bytes) -> Principal | Refusal:
        identity = self._certificate_identity(certificate) if self._certificate_identity else None
        if identity is None:
            return Refusal("certificate unknown: not one this server issued or registered, or deleted")
        name = identity.certificate_id or "of the client"
        if identity.status != "ACTIVE":
            return Refusal(f"certificate {identity.status.lower()}: {name} is {identity.status}")
        if not client_id:
            return Refusal("no client id (a device connects with its thing name as client id)")
        if not identity.policies:
            # No policy: the default rule, a device is a thing its certificate is attached to.
            if client_id in identity.things:
                return Principal("thing", client_id, certificate_id=identity.certificate_id)
            return Refusal(
                f"not attached to the thing: certificate {name} is not attached to thing {client_id!r}"
                " (aws iot attach-thing-principal)"
            )
        statements = tuple(s for document in identity.policies for s in parse_policy(document))
        principal = Principal(
            "policy",
            client_id,
            statements=statements,
            thing=identity.things[0] if identity.things else "",
            arn_prefix=self._arn_prefix,
            certificate_id=identity.certificate_id,
        )
        if principal.may("iot:Connect", client_id):
            return principal
        return Refusal(f"policy does not allow iot:Connect for client id {client_id!r} (certificate {name})")
