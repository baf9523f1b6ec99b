import datetime
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from iot_jobs_bridge.jobs_service.ca import (
    CA_KEY_FILE,
    CertificateAuthority,
    certificate_id,
    common_name,
    serial_number,
)


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


def test_a_device_certificates_common_name_is_its_serial_number_in_hex(tmp_path):
    ca = CertificateAuthority(tmp_path)
    first, second = ca.create_keys_and_certificate(), ca.create_keys_and_certificate()
    for issued in (first, second):
        cert = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
        assert serial_number(issued.certificate_pem) == cert.serial_number
        assert common_name(issued.certificate_pem) == f"{cert.serial_number:x}"
    assert common_name(first.certificate_pem) != common_name(second.certificate_pem)


def test_a_certificate_from_a_csr_is_named_by_its_serial_not_by_the_csr(tmp_path):
    ca = CertificateAuthority(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chosen-by-device")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    pem = ca.certificate_from_csr(csr).certificate_pem
    assert common_name(pem) == f"{serial_number(pem):x}"


def test_common_name_of_a_certificate_without_one_is_none(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "no cn")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    assert common_name(pem) is None
    assert serial_number(pem) == 7


def test_the_revocation_list_names_exactly_the_given_serials_and_is_signed_by_the_ca(tmp_path):
    ca = CertificateAuthority(tmp_path)
    revoked = [ca.create_keys_and_certificate() for _ in range(2)]
    kept = ca.create_keys_and_certificate()
    serials = [serial_number(issued.certificate_pem) for issued in revoked]
    crl = x509.load_pem_x509_crl(ca.revocation_list([*serials, serials[0]]))
    assert sorted(entry.serial_number for entry in crl) == sorted(serials)
    assert crl.get_revoked_certificate_by_serial_number(serial_number(kept.certificate_pem)) is None
    assert crl.issuer == ca.certificate.subject
    assert crl.is_signature_valid(ca.certificate.public_key())
    other = CertificateAuthority(tmp_path / "other")
    assert not crl.is_signature_valid(other.certificate.public_key())


def test_the_revocation_list_is_current_and_lasts_the_days_asked(tmp_path):
    ca = CertificateAuthority(tmp_path)
    now = datetime.datetime.now(datetime.UTC)
    crl = x509.load_pem_x509_crl(ca.revocation_list([], days=30))
    assert len(crl) == 0
    assert crl.last_update_utc <= now
    assert crl.next_update_utc is not None
    assert datetime.timedelta(days=29) < crl.next_update_utc - now <= datetime.timedelta(days=30)
    assert crl.is_signature_valid(ca.certificate.public_key())


def test_the_revocation_list_is_pem_that_openssl_based_tls_can_load(tmp_path):
    ca = CertificateAuthority(tmp_path)
    issued = ca.create_keys_and_certificate()
    crl_path = tmp_path / "crl.pem"
    crl_path.write_bytes(ca.revocation_list([serial_number(issued.certificate_pem)]))
    assert crl_path.read_text().startswith("-----BEGIN X509 CRL-----")
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    context.load_verify_locations(cafile=str(crl_path))  # raises if the file is not a CRL OpenSSL reads
    assert context.cert_store_stats()["crl"] == 1
