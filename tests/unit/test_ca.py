import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jobs_service.ca import CA_KEY_FILE, CertificateAuthority, certificate_id


def test_a_ca_is_made_once_owner_only_and_reloaded(tmp_path):
    first = CertificateAuthority(tmp_path)
    assert stat.S_IMODE((tmp_path / CA_KEY_FILE).stat().st_mode) == 0o600
    again = CertificateAuthority(tmp_path)
    assert again.pem == first.pem


def test_created_keys_and_certificates_verify_against_the_ca_and_load_for_tls(tmp_path):
    ca = CertificateAuthority(tmp_path)
    issued = ca.create_keys_and_certificate()
    assert ca.issued(issued.certificate_pem)
    assert len(issued.certificate_id) == 64 and issued.certificate_id == certificate_id(
        issued.certificate_pem
    )
    (tmp_path / "d.pem").write_text(issued.certificate_pem)
    (tmp_path / "d.key").write_text(issued.private_key_pem)
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    context.load_cert_chain(str(tmp_path / "d.pem"), str(tmp_path / "d.key"))  # raises if they do not match


def test_a_csr_gets_a_certificate_for_the_devices_own_key(tmp_path):
    ca = CertificateAuthority(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    issued = ca.certificate_from_csr(csr)
    assert issued.private_key_pem is None
    cert = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    with pytest.raises(ValueError, match="not a valid PEM CSR"):
        ca.certificate_from_csr(
            "-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----\n"
        )


def test_certificates_from_another_ca_are_not_ours(tmp_path):
    ours, theirs = CertificateAuthority(tmp_path / "a"), CertificateAuthority(tmp_path / "b")
    assert not ours.issued(theirs.create_keys_and_certificate().certificate_pem)
    assert not ours.issued("not a certificate")


def test_half_a_ca_is_refused(tmp_path):
    CertificateAuthority(tmp_path)
    (tmp_path / CA_KEY_FILE).unlink()
    with pytest.raises(ValueError, match=r"has only one of ca\.pem and ca\.key"):
        CertificateAuthority(tmp_path)
