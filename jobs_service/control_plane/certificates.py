"""Certificate and thing-principal operations."""

from __future__ import annotations

from typing import Any

from ..certificates import Certificates, NewCertificate
from ..errors import InvalidRequest
from ..pagination import decode_token, encode_token, page_size
from .base import Handler, HandlerBase, Params

__all__ = ["CertificateHandlers"]


class CertificateHandlers(HandlerBase):
    def handlers(self) -> dict[str, Handler]:
        """This family's operations, by their names in the AWS API model."""
        return {
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
        }

    def _certs(self) -> Certificates:
        if self.services.certificates is None:
            raise InvalidRequest("Certificates are not enabled on this server")
        return self.services.certificates

    def create_keys_and_certificate(self, params: Params) -> dict[str, Any]:
        made = self._certs().create_keys_and_certificate(active=bool(params.get("setAsActive")))
        return {
            **self._created(made),
            "keyPair": {"PublicKey": made.issued.public_key_pem, "PrivateKey": made.issued.private_key_pem},
        }

    def create_certificate_from_csr(self, params: Params) -> dict[str, Any]:
        made = self._certs().create_from_csr(
            params["certificateSigningRequest"], active=bool(params.get("setAsActive"))
        )
        return self._created(made)

    def describe_certificate(self, params: Params) -> dict[str, Any]:
        certificate = self._certs().describe(params["certificateId"])
        return {
            "certificateDescription": {
                "certificateArn": self.arns.certificate(certificate.certificate_id),
                "certificateId": certificate.certificate_id,
                "status": certificate.status,
                "certificatePem": certificate.pem,
                "ownedBy": self.arns.account,
                "creationDate": certificate.created_at,
                "lastModifiedDate": certificate.last_modified_at,
                "certificateMode": "DEFAULT",
            }
        }

    def list_certificates(self, params: Params) -> dict[str, Any]:
        limit = page_size(params.get("pageSize"))
        after = decode_token(params.get("marker"), "ListCertificates", str)
        rows = self._certs().store.certificates.list_certificates(after=after, limit=limit + 1)
        result: dict[str, Any] = {
            "certificates": [
                {
                    "certificateArn": self.arns.certificate(c.certificate_id),
                    "certificateId": c.certificate_id,
                    "status": c.status,
                    "certificateMode": "DEFAULT",
                    "creationDate": c.created_at,
                }
                for c in rows[:limit]
            ]
        }
        if len(rows) > limit:
            result["nextMarker"] = encode_token("ListCertificates", rows[limit - 1].certificate_id)
        return result

    def update_certificate(self, params: Params) -> None:
        self._certs().update_status(params["certificateId"], params["newStatus"])

    def delete_certificate(self, params: Params) -> None:
        self._certs().delete(params["certificateId"])

    def attach_thing_principal(self, params: Params) -> dict[str, Any]:
        self._certs().attach(params["thingName"], params["principal"])
        return {}

    def detach_thing_principal(self, params: Params) -> dict[str, Any]:
        self._certs().detach(params["thingName"], params["principal"])
        return {}

    def list_thing_principals(self, params: Params) -> dict[str, Any]:
        return {"principals": self._certs().principals_of(params["thingName"])}

    def list_principal_things(self, params: Params) -> dict[str, Any]:
        return {"things": self._certs().things_of(params["principal"])}

    def _created(self, made: NewCertificate) -> dict[str, Any]:
        return {
            "certificateArn": self.arns.certificate(made.certificate.certificate_id),
            "certificateId": made.certificate.certificate_id,
            "certificatePem": made.issued.certificate_pem,
        }
