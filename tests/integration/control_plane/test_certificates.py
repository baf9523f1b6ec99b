"""The certificate API through boto3: keys and certificates, CSRs, status, things' principals."""

import ssl

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

pytestmark = pytest.mark.integration


def error_code(call, **params):
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_keys_and_certificate_are_issued_by_the_servers_ca(server, iot, tmp_path):
    made = iot.create_keys_and_certificate(setAsActive=True)
    assert made["certificateArn"].endswith(f":cert/{made['certificateId']}")
    (tmp_path / "cert.pem").write_text(made["certificatePem"])
    (tmp_path / "key.pem").write_text(made["keyPair"]["PrivateKey"])
    context = ssl.create_default_context(cafile=str(server.data_dir / "ca.pem"))
    context.load_cert_chain(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    described = iot.describe_certificate(certificateId=made["certificateId"])["certificateDescription"]
    assert described["status"] == "ACTIVE" and described["certificatePem"] == made["certificatePem"]
    listed = {c["certificateId"]: c["status"] for c in iot.list_certificates(pageSize=250)["certificates"]}
    assert listed[made["certificateId"]] == "ACTIVE"


def test_a_csr_is_signed_for_the_devices_own_key(iot):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    made = iot.create_certificate_from_csr(certificateSigningRequest=csr, setAsActive=False)
    cert = x509.load_pem_x509_certificate(made["certificatePem"].encode())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    status = iot.describe_certificate(certificateId=made["certificateId"])["certificateDescription"]["status"]
    assert status == "INACTIVE"


def test_principals_attach_to_things_and_block_deletion(iot, unique):
    thing = f"{unique}-dev"
    iot.create_thing(thingName=thing)
    made = iot.create_keys_and_certificate(setAsActive=True)
    arn, cert_id = made["certificateArn"], made["certificateId"]
    iot.attach_thing_principal(thingName=thing, principal=arn)
    assert iot.list_thing_principals(thingName=thing)["principals"] == [arn]
    assert iot.list_principal_things(principal=arn)["things"] == [thing]
    code, message = error_code(iot.delete_certificate, certificateId=cert_id)
    assert code == "CertificateStateException" and "deactivate it before deleting it" in message
    iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
    code, message = error_code(iot.delete_certificate, certificateId=cert_id)
    assert code == "DeleteConflictException" and thing in message
    code, message = error_code(iot.delete_thing, thingName=thing)
    assert code == "InvalidRequestException" and "still attached to one or more principals" in message
    iot.detach_thing_principal(thingName=thing, principal=arn)
    assert iot.list_thing_principals(thingName=thing)["principals"] == []
    iot.delete_certificate(certificateId=cert_id)
    iot.delete_thing(thingName=thing)
    assert error_code(iot.describe_thing, thingName=thing)[0] == "ResourceNotFoundException"
    assert error_code(iot.describe_certificate, certificateId=cert_id)[0] == "ResourceNotFoundException"


def test_a_revoked_certificate_stays_revoked(iot):
    cert_id = iot.create_keys_and_certificate(setAsActive=True)["certificateId"]
    iot.update_certificate(certificateId=cert_id, newStatus="REVOKED")
    code, message = error_code(iot.update_certificate, certificateId=cert_id, newStatus="ACTIVE")
    assert code == "CertificateStateException" and "stays revoked" in message


def test_attaching_to_unknown_things_or_certificates_is_not_found(iot, unique):
    iot.create_thing(thingName=f"{unique}-t")
    arn = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    assert error_code(iot.attach_thing_principal, thingName=f"{unique}-none", principal=arn)[0] == (
        "ResourceNotFoundException"
    )
    missing = arn.rsplit("/", 1)[0] + "/" + "0" * 64
    assert error_code(iot.attach_thing_principal, thingName=f"{unique}-t", principal=missing)[0] == (
        "ResourceNotFoundException"
    )
