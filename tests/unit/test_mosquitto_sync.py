"""The registry rendered into Mosquitto's access files: ACL sections per certificate, refused serials."""

import asyncio
import datetime
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from iot_jobs_bridge.broker.acl_export import AclExport
from iot_jobs_bridge.broker.mosquitto import ManagedMosquitto, MosquittoListeners
from iot_jobs_bridge.jobs_service.ca import CertificateAuthority, certificate_id, common_name, serial_number
from iot_jobs_bridge.jobs_service.certificates import Certificates
from iot_jobs_bridge.jobs_service.control_plane import ACCESS_OPERATIONS, ControlPlane, Services
from iot_jobs_bridge.jobs_service.mosquitto_sync import MosquittoSync, access_files
from iot_jobs_bridge.jobs_service.policies import Policies
from iot_jobs_bridge.jobs_service.store import Certificate
from iot_jobs_bridge.jobs_service.templates import Templates

SERVICE = "AKIDEXAMPLESERVICE"
THING = "${iot:Connection.Thing.ThingName}"


def default_rules(thing):
    jobs = f"$aws/things/{thing}/jobs"
    return [
        ("read", f"{jobs}/#"),
        ("write", f"{jobs}/get"),
        ("write", f"{jobs}/start-next"),
        ("write", f"{jobs}/+/get"),
        ("write", f"{jobs}/+/update"),
    ]


def parse_acl(text):
    """(pattern rules, {username: rules}) of an ACL file, failing on any line it does not expect."""
    patterns, users, current = [], {}, None
    lines = text.splitlines()
    assert lines[0].startswith("#")
    for line in lines[1:]:
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        if kind == "pattern":
            assert current is None, "patterns come before the user sections"
            patterns.append(tuple(rest.split(" ", 1)))
        elif kind == "user":
            assert rest not in users
            current = users[rest] = []
        else:
            assert kind == "topic" and current is not None, line
            current.append(tuple(rest.split(" ", 1)))
    return patterns, users


@pytest.fixture
def ca(tmp_path):
    return CertificateAuthority(tmp_path / "ca")


@pytest.fixture
def policies(store, clock, arns):
    return Policies(store, clock, arns)


@pytest.fixture
def certificates(store, ca, clock, arns, policies):
    return Certificates(store, ca, clock, arns, policies.documents_for)


@pytest.fixture
def render(store, arns):
    def render():
        files = access_files(store, arns, SERVICE)
        _patterns, users = parse_acl(files.tls_acl)
        return files, users

    return render


def new_certificate(certificates, *, active=True):
    """A certificate: (its ARN, its common name, its serial number)."""
    issued = certificates.create_keys_and_certificate(active=active).issued
    pem = issued.certificate_pem
    return certificates.arns.certificate(issued.certificate_id), common_name(pem), serial_number(pem)


def cert_id(arn):
    return arn.rsplit("/", 1)[1]


def document(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def outside_certificate(cn, serial):
    """A certificate not made by our CA, stored directly: as one from before names were unique."""
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
    name = x509.Name([*attributes, x509.NameAttribute(NameOID.ORGANIZATION_NAME, "old")])
    now = datetime.datetime.now(datetime.UTC)
    pem = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    return Certificate(certificate_id(pem), pem, "ACTIVE", 0.0, 0.0)


# -- the plain listener ------------------------------------------------------


def test_the_plain_acl_has_client_id_patterns_and_full_access_for_the_service_only(store, arns, certificates):
    new_certificate(certificates)
    files = access_files(store, arns, SERVICE)
    patterns, users = parse_acl(files.plain_acl)
    assert patterns == default_rules("%c")
    assert users == {
        SERVICE: [("readwrite", "#"), ("readwrite", "$aws/#"), ("read", "$SYS/#")],
    }


def test_an_empty_registry_gives_an_empty_tls_acl_and_refuses_nobody(store, arns):
    files = access_files(store, arns, SERVICE)
    assert parse_acl(files.tls_acl) == ([], {})
    assert files.refused == frozenset()


# -- certificates without policies -------------------------------------------


def test_an_active_certificate_attached_to_a_thing_gets_that_things_default_rules(
    engine, certificates, render
):
    engine.membership.create_thing("t1")
    engine.membership.create_thing("t2")
    arn, name, _serial = new_certificate(certificates)
    certificates.attach("t1", arn)
    files, users = render()
    assert users == {name: default_rules("t1")}
    assert files.refused == frozenset()
    assert "$aws/things/t2/" not in files.tls_acl


def test_a_certificate_attached_to_two_things_gets_the_rules_of_both(engine, certificates, render):
    engine.membership.create_thing("t1")
    engine.membership.create_thing("t2")
    arn, name, _serial = new_certificate(certificates)
    certificates.attach("t1", arn)
    certificates.attach("t2", arn)
    _files, users = render()
    assert users[name] == default_rules("t1") + default_rules("t2")


def test_each_certificate_gets_its_own_section(engine, certificates, render):
    engine.membership.create_thing("t1")
    engine.membership.create_thing("t2")
    first, first_name, _ = new_certificate(certificates)
    second, second_name, _ = new_certificate(certificates)
    certificates.attach("t1", first)
    certificates.attach("t2", second)
    _files, users = render()
    assert first_name != second_name
    assert users == {first_name: default_rules("t1"), second_name: default_rules("t2")}


def test_a_detached_certificate_has_an_empty_section(engine, certificates, render):
    engine.membership.create_thing("t1")
    arn, name, _serial = new_certificate(certificates)
    certificates.attach("t1", arn)
    certificates.detach("t1", arn)
    files, users = render()
    assert users == {name: []}
    assert files.refused == frozenset()


# -- certificates with policies ----------------------------------------------


def test_a_certificate_with_a_policy_gets_the_translated_rules_instead_of_the_default(
    engine, certificates, policies, render, arns
):
    engine.membership.create_thing("t1")
    arn, name, _serial = new_certificate(certificates)
    certificates.attach("t1", arn)
    jobs = f"$aws/things/{THING}/jobs"
    policies.create(
        "jobs-only",
        document(
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arns.prefix}:client/{THING}"},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{arns.prefix}:topic/{jobs}/*"},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{arns.prefix}:topicfilter/{jobs}/*"},
            {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{arns.prefix}:topic/{jobs}/notify"},
            {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{arns.prefix}:topic/{jobs}/start-next"},
        ),
    )
    policies.attach("jobs-only", arn)
    _files, users = render()
    assert users == {
        name: [
            ("deny", "$aws/things/t1/jobs/start-next"),
            ("read", "$aws/things/t1/jobs/notify"),
            ("write", "$aws/things/t1/jobs/#"),
        ]
    }


def test_the_statements_of_every_attached_policy_count(certificates, policies, render, arns):
    arn, name, _serial = new_certificate(certificates)
    policies.create("all", document({"Effect": "Allow", "Action": "iot:*", "Resource": "*"}))
    policies.create(
        "no-secrets", document({"Effect": "Deny", "Action": "iot:*", "Resource": f"{arns.prefix}:*"})
    )
    policies.attach("all", arn)
    _files, users = render()
    assert users[name] == [("readwrite", "#"), ("readwrite", "$aws/#")]
    policies.attach("no-secrets", arn)
    _files, users = render()
    assert users[name][:2] == [("deny", "#"), ("deny", "$aws/#")]


def test_a_new_default_policy_version_changes_the_rules(certificates, policies, render, arns):
    arn, name, _serial = new_certificate(certificates)
    policies.create("p", document({"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}))
    policies.attach("p", arn)
    assert render()[1][name] == [("write", "#"), ("write", "$aws/#")]
    narrower = document(
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{arns.prefix}:topic/a/b"},
    )
    policies.create_version("p", narrower, make_default=False)
    assert render()[1][name] == [("write", "#"), ("write", "$aws/#")]
    policies.create_version("p", narrower, make_default=True)
    assert render()[1][name] == [("write", "a/b")]


def test_a_policy_whose_variables_have_no_thing_grants_only_what_needs_none(
    certificates, policies, render, arns
):
    arn, name, _serial = new_certificate(certificates)
    policies.create(
        "p",
        document(
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{arns.prefix}:topic/things/{THING}"},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{arns.prefix}:topic/open"},
        ),
    )
    policies.attach("p", arn)
    assert render()[1][name] == [("write", "open")]


def test_detaching_the_last_policy_brings_back_the_default(engine, certificates, policies, render):
    engine.membership.create_thing("t1")
    arn, name, _serial = new_certificate(certificates)
    certificates.attach("t1", arn)
    policies.create("p", document({"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}))
    policies.attach("p", arn)
    assert render()[1][name] == []
    policies.detach("p", arn)
    assert render()[1][name] == default_rules("t1")


def test_an_unreadable_policy_grants_nothing_rather_than_the_default(
    engine, certificates, store, clock, render
):
    engine.membership.create_thing("t1")
    arn, name, _serial = new_certificate(certificates)
    certificates.attach("t1", arn)
    # Stored behind the API's back (the API checks documents): it must still not widen access.
    store.policies.insert_policy("broken", "{not json", clock.now())
    store.policies.attach_policy("broken", arn)
    assert render()[1][name] == []


# -- certificates that may not connect ---------------------------------------


@pytest.mark.parametrize("status", ["INACTIVE", "REVOKED"])
def test_a_certificate_that_is_not_active_is_refused_by_serial_and_has_no_section(
    engine, certificates, render, status
):
    engine.membership.create_thing("t1")
    arn, name, serial = new_certificate(certificates)
    _other, other_name, _other_serial = new_certificate(certificates)
    certificates.attach("t1", arn)
    certificates.update_status(cert_id(arn), status)
    files, users = render()
    assert files.refused == frozenset({serial})
    assert name not in users
    assert f"user {name}\n" not in files.tls_acl
    assert users == {other_name: []}


def test_a_certificate_created_inactive_is_refused_until_activated(certificates, render):
    arn, name, serial = new_certificate(certificates, active=False)
    files, users = render()
    assert files.refused == frozenset({serial}) and users == {}
    certificates.update_status(cert_id(arn), "ACTIVE")
    files, users = render()
    assert files.refused == frozenset() and users == {name: []}


def test_a_deleted_certificate_stays_refused(engine, certificates, render, store):
    engine.membership.create_thing("t1")
    arn, name, serial = new_certificate(certificates)
    certificates.attach("t1", arn)
    certificates.detach("t1", arn)
    certificates.update_status(cert_id(arn), "INACTIVE")
    certificates.delete(cert_id(arn))
    assert store.certificates.get_certificate(cert_id(arn)) is None
    files, users = render()
    assert files.refused == frozenset({serial})
    assert name not in users and name not in files.tls_acl


def test_refused_serials_gather_every_kind_of_refusal(certificates, render):
    _a, _, inactive = new_certificate(certificates, active=False)
    revoked_arn, _, revoked = new_certificate(certificates)
    deleted_arn, _, deleted = new_certificate(certificates, active=False)
    _active_arn, active_name, _active = new_certificate(certificates)
    certificates.update_status(cert_id(revoked_arn), "REVOKED")
    certificates.delete(cert_id(deleted_arn))
    files, users = render()
    assert files.refused == frozenset({inactive, revoked, deleted})
    assert set(users) == {active_name}


# -- names that cannot tell certificates apart -------------------------------


def test_certificates_sharing_a_common_name_get_no_rights(engine, certificates, store, render):
    engine.membership.create_thing("t1")
    first, second = outside_certificate("device", 1001), outside_certificate("device", 1002)
    store.certificates.insert_certificate(first)
    store.certificates.insert_certificate(second)
    arn, name, _serial = new_certificate(certificates)
    for certificate in (first, second):
        certificates.attach("t1", certificates.arns.certificate(certificate.certificate_id))
    certificates.attach("t1", arn)
    files, users = render()
    assert users == {name: default_rules("t1")}
    assert "user device" not in files.tls_acl
    assert files.refused == frozenset(), "they are not refused, only given nothing"


def test_a_certificate_without_a_common_name_gets_no_rights(engine, certificates, store, render):
    engine.membership.create_thing("t1")
    nameless = outside_certificate(None, 2001)
    store.certificates.insert_certificate(nameless)
    certificates.attach("t1", certificates.arns.certificate(nameless.certificate_id))
    files, users = render()
    assert users == {}
    assert "$aws/things/t1/" not in files.tls_acl


# -- the operations that wake the sync ---------------------------------------


def test_every_access_operation_is_a_control_plane_operation(engine, registry, store, clock, arns):
    names = set(
        ControlPlane(
            Services(engine, registry, Templates(store, clock, arns), arns, lambda _events: None)
        ).handlers()
    )
    assert names >= ACCESS_OPERATIONS
    assert {"UpdateCertificate", "DeleteCertificate", "AttachPolicy", "DetachThingPrincipal"} <= (
        ACCESS_OPERATIONS
    )


def test_waking_a_sync_that_has_not_started_is_already_done(tmp_path: Path):
    listeners = MosquittoListeners(
        "127.0.0.1", 1, "127.0.0.1", 2, tmp_path / "ca.pem", tmp_path / "s.pem", tmp_path / "s.key"
    )
    broker = ManagedMosquitto(tmp_path, listeners, username="u", password="p", binary="/nonexistent")
    sync = MosquittoSync(lambda: pytest.fail("nothing renders before start"), lambda _s: b"", broker)
    done = sync.wake()
    assert done.done() and done.result() is None
    assert sync.applied == 0


def test_the_sync_keeps_exported_files_in_step_and_makes_a_crl_only_when_refusals_change(
    tmp_path, store, arns, engine, certificates, ca
):
    directory = tmp_path / "export"
    crls = []

    def crl_for(serials):
        crls.append(serials)
        return ca.revocation_list(sorted(serials))

    def revoked_serials():
        crl = x509.load_pem_x509_crl((directory / "crl.pem").read_bytes())
        return {entry.serial_number for entry in crl}

    async def main():
        sync = MosquittoSync(lambda: access_files(store, arns, SERVICE), crl_for, AclExport(directory))
        await sync.start()
        try:
            assert parse_acl((directory / "acl-devices").read_text()) == ([], {})
            assert revoked_serials() == set() and crls == [frozenset()]

            engine.membership.create_thing("t1")
            arn, name, serial = new_certificate(certificates)
            certificates.attach("t1", arn)
            await asyncio.wait_for(asyncio.wrap_future(sync.wake()), 5)
            assert parse_acl((directory / "acl-devices").read_text())[1] == {name: default_rules("t1")}
            assert len(crls) == 1, "an ACL change alone makes no new revocation list"
            assert sync.applied == 1

            certificates.update_status(cert_id(arn), "REVOKED")
            await asyncio.wait_for(asyncio.wrap_future(sync.wake()), 5)
            assert parse_acl((directory / "acl-devices").read_text())[1] == {}
            assert crls[-1] == frozenset({serial}) and revoked_serials() == {serial}
            assert sync.applied == 2

            await asyncio.wait_for(asyncio.wrap_future(sync.wake()), 5)
            assert sync.applied == 2 and len(crls) == 2, "nothing changed, nothing applied"
        finally:
            await sync.close()

    asyncio.run(main())
