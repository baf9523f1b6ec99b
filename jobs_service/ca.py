"""The service's certificate authority: it signs device certificates, as AWS IoT does.

On first start the service makes a CA (an EC P-256 key and a self-signed
certificate) in its data dir, readable by the owner only; an operator may put
their own `ca.pem`/`ca.key` there instead. Device certificates come from
CreateKeysAndCertificate (the service makes the key pair) or
CreateCertificateFromCsr (the device keeps its key). A certificate's id is the
SHA-256 of its DER encoding, in hex, as on AWS. Its subject's common name is
its serial number in hex, unique per CA, so brokers that know a client by its
certificate's common name (Mosquitto's ``use_identity_as_username``) can tell
devices apart.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CertificateAuthority",
    "IssuedCertificate",
    "certificate_id",
    "common_name",
    "serial_number",
]

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
_CA_YEARS = 10
_DEVICE_YEARS = 5


@dataclass(frozen=True)
class IssuedCertificate:
    """A device certificate: its id, its PEM, and the private key PEM when the service made the key."""

    certificate_id: str
    certificate_pem: str
    private_key_pem: str | None = None
    public_key_pem: str | None = None


def certificate_id(pem: str) -> str:
    """AWS's certificate id: the SHA-256 of the DER certificate, hex."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def common_name(pem: str) -> str | None:
    """The subject common name of a PEM certificate, if it has one."""
    names = x509.load_pem_x509_certificate(pem.encode()).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def serial_number(pem: str) -> int:
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


class CertificateAuthority:
    """Load the CA from ``data_dir``, making one on first use."""

    def __init__(self, data_dir: Path, common_name: str = "iot-jobs-bridge CA") -> None:
        cert_path, key_path = data_dir / CA_CERT_FILE, data_dir / CA_KEY_FILE
        if cert_path.exists() != key_path.exists():
            raise ValueError(
                f"{data_dir} has only one of {CA_CERT_FILE} and {CA_KEY_FILE}; give both or neither"
            )
        if not cert_path.exists():
            _write_new_ca(cert_path, key_path, common_name)
        self.cert_path = cert_path
        self.certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} must hold an EC private key")
        self._key = key

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def create_keys_and_certificate(self, now: datetime.datetime | None = None) -> IssuedCertificate:
        """A new key pair and a certificate for it (CreateKeysAndCertificate)."""
        key = ec.generate_private_key(ec.SECP256R1())
        pem = self._sign(key.public_key(), now)
        return IssuedCertificate(
            certificate_id=certificate_id(pem),
            certificate_pem=pem,
            private_key_pem=_pem(key).decode(),
            public_key_pem=key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode(),
        )

    def certificate_from_csr(self, csr_pem: str, now: datetime.datetime | None = None) -> IssuedCertificate:
        """A certificate for a device's own key (CreateCertificateFromCsr); ``ValueError`` for a bad CSR."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError as exc:
            raise ValueError("The certificate signing request is not a valid PEM CSR") from exc
        if not csr.is_signature_valid:
            raise ValueError("The certificate signing request's signature does not match its key")
        pem = self._sign(csr.public_key(), now)
        return IssuedCertificate(certificate_id=certificate_id(pem), certificate_pem=pem)

    def write_server_certificate(self, directory: Path, names: list[str]) -> tuple[Path, Path]:
        """A certificate for the broker's TLS listener, valid for ``names`` (host names or IPs)."""
        key = ec.generate_private_key(ec.SECP256R1())
        alternatives: list[x509.GeneralName] = []
        for name in dict.fromkeys(names):
            try:
                alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternatives.append(x509.DNSName(name))
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        cert_path, key_path = directory / "server.pem", directory / "server.key"
        key_path.unlink(missing_ok=True)
        _write_private_key(key_path, key)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, key_path

    def issued(self, pem: str) -> bool:
        """Whether ``pem`` was signed by this CA."""
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
            cert.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True

    def revocation_list(self, serials: list[int], *, days: int = 365) -> bytes:
        """A CRL (PEM) naming ``serials``: certificates a TLS listener must refuse."""
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - datetime.timedelta(minutes=5))
            .next_update(now + datetime.timedelta(days=days))
        )
        for serial in sorted(set(serials)):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
            )
        return builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def _sign(self, public_key: object, now: datetime.datetime | None) -> str:
        moment = now or datetime.datetime.now(datetime.UTC)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{serial:x}")]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(serial)
            .not_valid_before(moment - datetime.timedelta(minutes=5))
            .not_valid_after(moment + datetime.timedelta(days=365 * _DEVICE_YEARS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()


def _write_new_ca(cert_path: Path, key_path: Path, common_name: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365 * _CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    _write_private_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    # The file is created owner-only before the key is written.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(_pem(key))


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
