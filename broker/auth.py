"""Who is connecting: principals and the credential rules that produce them.

Pure policy, no amqtt: the broker plugin in `broker.plugins` calls an
`Authenticator` and stores the resulting `Principal` on the client's session.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["Authenticator", "CredentialAuthenticator", "Principal"]


@dataclass(frozen=True)
class Principal:
    """An authenticated MQTT client.

    `kind` is `"admin"` (full topic rights: monitoring tools), `"service"`
    (the jobs service's own connection: full rights, but reply topics are not
    delivered back to it) or `"thing"` (a device, limited to its own
    `$aws/things/<name>/jobs/...` topics); `name` is the admin key id or the
    thing name.
    """

    kind: Literal["admin", "service", "thing"]
    name: str


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


class CredentialAuthenticator:
    """The default authenticator: one admin key, and devices by client id.

    * username equal to the admin key id: admin if the password is the admin
      secret (the service, when the client id is `service_client_id`),
      otherwise refused (it never falls through to the device rule);
    * a client certificate (the TLS listener requires one) is that thing when
      the client id names a thing the certificate is attached to and the
      certificate is ACTIVE (``certificate_things`` decides), and refused otherwise;
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
        certificate_things: Callable[[bytes], list[str]] | None = None,
    ) -> None:
        if not admin_key_id or not admin_secret:
            # An empty key id would make every client without a username an admin candidate.
            raise ValueError("admin_key_id and admin_secret must not be empty")
        self._admin_key_id = admin_key_id
        self._admin_secret = admin_secret.encode()
        self._thing_exists = thing_exists
        self._service_client_id = service_client_id
        self._certificate_things = certificate_things

    def authenticate(
        self,
        client_id: str | None,
        username: str | None,
        password: str | None,
        certificate: bytes | None = None,
    ) -> Principal | None:
        """Return the principal for these CONNECT credentials, or `None` to refuse."""
        if certificate is not None:
            if self._certificate_things is None or not client_id:
                return None
            return (
                Principal("thing", client_id) if client_id in self._certificate_things(certificate) else None
            )
        if username == self._admin_key_id:
            if password is not None and hmac.compare_digest(password.encode(), self._admin_secret):
                if self._service_client_id is not None and client_id == self._service_client_id:
                    return Principal("service", self._admin_key_id)
                return Principal("admin", self._admin_key_id)
            return None
        if client_id and self._thing_exists(client_id):
            return Principal("thing", client_id)
        return None
