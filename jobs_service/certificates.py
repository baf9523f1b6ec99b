"""Device certificates and the things they are attached to (the AWS IoT certificate API).

Certificates are signed by the service's CA (`jobs_service.ca`); a thing's
principals are certificate ARNs. What a connecting certificate may do is
decided by the broker from these records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from iot_jobs_bridge.broker import CertificateIdentity

from .arns import Arns
from .ca import CertificateAuthority, IssuedCertificate, certificate_id
from .clock import Clock
from .errors import CertificateState, DeleteConflict, InvalidRequest, ResourceNotFound
from .store import Certificate, Store

__all__ = ["Certificates", "NewCertificate"]

STATUSES = ("ACTIVE", "INACTIVE", "REVOKED")


@dataclass(frozen=True)
class NewCertificate:
    certificate: Certificate
    issued: IssuedCertificate


class Certificates:
    def __init__(
        self,
        store: Store,
        ca: CertificateAuthority,
        clock: Clock,
        arns: Arns,
        policy_documents: Callable[[str], list[str]] = lambda _arn: [],
    ) -> None:
        self._policy_documents = policy_documents
        self.store = store
        self.ca = ca
        self.clock = clock
        self.arns = arns

    def create_keys_and_certificate(self, *, active: bool) -> NewCertificate:
        return self._keep(self.ca.create_keys_and_certificate(), active)

    def create_from_csr(self, csr_pem: str, *, active: bool) -> NewCertificate:
        try:
            issued = self.ca.certificate_from_csr(csr_pem)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        return self._keep(issued, active)

    def describe(self, cert_id: str) -> Certificate:
        certificate = self.store.certificates.get_certificate(cert_id)
        if certificate is None:
            raise ResourceNotFound(f"Certificate {cert_id} does not exist")
        return certificate

    def update_status(self, cert_id: str, status: str) -> None:
        if status not in STATUSES:
            raise InvalidRequest(f"A certificate can be made {', '.join(STATUSES)}, not {status}")
        with self.store.atomic():
            certificate = self.describe(cert_id)
            if certificate.status == "REVOKED" and status != "REVOKED":
                raise CertificateState(
                    f"Certificate {cert_id} is REVOKED; a revoked certificate stays revoked"
                )
            self.store.certificates.set_certificate_status(cert_id, status, self.clock.now())

    def delete(self, cert_id: str) -> None:
        with self.store.atomic():
            certificate = self.describe(cert_id)
            if certificate.status == "ACTIVE":
                raise CertificateState(f"Certificate {cert_id} is ACTIVE; deactivate it before deleting it")
            things = self.store.certificates.things_of(self.arns.certificate(cert_id))
            if things:
                raise DeleteConflict(
                    f"Certificate {cert_id} is attached to {', '.join(things)}; detach it first"
                )
            self.store.certificates.delete_certificate(cert_id, self.clock.now())

    def attach(self, thing_name: str, principal: str) -> None:
        with self.store.atomic():
            if self.store.registry.get_thing(thing_name) is None:
                raise ResourceNotFound(f"Thing {thing_name} does not exist")
            self.describe(self._certificate_id(principal))
            self.store.certificates.attach_principal(thing_name, principal)

    def detach(self, thing_name: str, principal: str) -> None:
        with self.store.atomic():
            if self.store.registry.get_thing(thing_name) is None:
                raise ResourceNotFound(f"Thing {thing_name} does not exist")
            self.store.certificates.detach_principal(thing_name, principal)

    def principals_of(self, thing_name: str) -> list[str]:
        if self.store.registry.get_thing(thing_name) is None:
            raise ResourceNotFound(f"Thing {thing_name} does not exist")
        return self.store.certificates.principals_of(thing_name)

    def things_of(self, principal: str) -> list[str]:
        return self.store.certificates.things_of(principal)

    def identity_for_der(self, der: bytes) -> CertificateIdentity | None:
        """What the certificate a TLS connection presents stands for; ``None`` unless ours.

        Its status is part of it: only an ACTIVE one logs a client in.
        """
        try:
            pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()
        except ValueError:
            return None
        if not self.ca.issued(pem):
            return None
        certificate = self.store.certificates.get_certificate(certificate_id(pem))
        if certificate is None:
            return None
        if certificate.status != "ACTIVE":
            return CertificateIdentity([], [], certificate.status, certificate.certificate_id)
        arn = self.arns.certificate(certificate.certificate_id)
        return CertificateIdentity(
            self.store.certificates.things_of(arn),
            self._policy_documents(arn),
            "ACTIVE",
            certificate.certificate_id,
        )

    def _keep(self, issued: IssuedCertificate, active: bool) -> NewCertificate:
        now = self.clock.now()
        certificate = Certificate(
            certificate_id=issued.certificate_id,
            pem=issued.certificate_pem,
            status="ACTIVE" if active else "INACTIVE",
            created_at=now,
            last_modified_at=now,
        )
        with self.store.atomic():
            self.store.certificates.insert_certificate(certificate)
        return NewCertificate(certificate, issued)

    def _certificate_id(self, principal: str) -> str:
        return self.arns.parse_local(principal, "cert")
