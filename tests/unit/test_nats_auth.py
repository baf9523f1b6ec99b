"""Who the workers let into the NATS cluster, and with which topics."""

import json

from iot_jobs_bridge.broker.auth import CertificateIdentity, CredentialAuthenticator
from iot_jobs_bridge.jobs_service.credentials import AdminKey
from iot_jobs_bridge.jobs_service.device_plane.nats_auth import (
    ADMIN_PERMISSIONS,
    NatsDeviceAuth,
    callout_issuer,
    cluster_security,
    subjects_of,
)

KEY = AdminKey("AKIAADMIN", "admin-secret", "environment")
PREFIX = "arn:aws:iot:us-east-1:123456789012"


def _auth(things=("dev1",), identity=None):
    asked: list[str] = []

    def exists(name):
        asked.append(name)
        return name in things

    rules = CredentialAuthenticator(
        KEY.access_key_id, KEY.secret_access_key, exists, certificate_identity=identity, arn_prefix=PREFIX
    )
    return NatsDeviceAuth(KEY, rules, arn_prefix=PREFIX), asked


def _mqtt(client_id, **options):
    return {"client_info": {"type": "mqtt", "mqtt_id": client_id}, "connect_opts": options}


def test_a_registered_thing_gets_its_own_jobs_topics_over_mqtt_only():
    auth, _ = _auth()
    (who, permissions), _ = auth.decide(_mqtt("dev1"))
    assert who == "dev1"
    assert permissions["pub"] == {"allow": ["$aws.things.dev1.jobs.>"]}
    assert permissions["sub"] == {"allow": ["$aws.things.dev1.jobs", "$aws.things.dev1.jobs.>"]}
    assert permissions["allowed_connection_types"] == ["MQTT"]


def test_an_unknown_client_id_is_refused():
    auth, _ = _auth()
    allowed, why = auth.decide(_mqtt("stranger"))
    assert allowed is None and "not registered" in why


def test_a_client_id_that_is_a_nats_wildcard_is_refused_without_a_lookup():
    auth, asked = _auth(things=("dev1", "*", "a.>"))
    for client_id in ("*", "a.>", ">", "dev1.x", ""):
        allowed, _ = auth.decide(_mqtt(client_id))
        assert allowed is None
    assert asked == []


def test_the_admin_key_gets_every_topic_and_a_wrong_password_nothing():
    auth, _ = _auth()
    (who, permissions), _ = auth.decide(_mqtt("monitor", user="AKIAADMIN", **{"pass": "admin-secret"}))
    assert who == "AKIAADMIN" and permissions == ADMIN_PERMISSIONS
    allowed, _ = auth.decide(_mqtt("dev1", user="AKIAADMIN", **{"pass": "guess"}))
    assert allowed is None  # a device with a bad password is not let in on its client id either


def test_a_native_nats_client_without_the_admin_key_is_refused():
    auth, _ = _auth()
    allowed, _ = auth.decide({"client_info": {"type": "nats", "name": "dev1"}, "connect_opts": {}})
    assert allowed is None


def test_every_node_names_the_issuer_the_workers_derive_from_the_admin_secret():
    config = cluster_security(KEY)
    assert f"issuer: {callout_issuer(KEY).public}" in config
    assert callout_issuer(KEY).public == callout_issuer(AdminKey("other-id", "admin-secret", "file")).public
    assert (
        callout_issuer(KEY).public != callout_issuer(AdminKey("AKIAADMIN", "another-secret", "file")).public
    )
    assert '"AKIAADMIN"' in config and "account: IOTJOBS" in config


def _with_certificate(client_id, pem="CERT"):
    return {**_mqtt(client_id), "client_tls": {"verified_chains": [[pem, "CA"]]}}


def test_a_certificate_attached_to_the_thing_logs_it_in_and_a_revoked_one_is_refused(monkeypatch):
    from iot_jobs_bridge.jobs_service.device_plane import nats_auth

    monkeypatch.setattr(nats_auth, "_leaf_certificate", lambda tls: b"der" if tls else None)
    identities = {
        "ACTIVE": CertificateIdentity(["dev1"], []),
        "REVOKED": CertificateIdentity([], [], "REVOKED", "c1"),
    }
    for status, expected in (("ACTIVE", "dev1"), ("REVOKED", None)):
        auth, _ = _auth(identity=lambda der, status=status: identities[status])
        allowed, why = auth.decide(_with_certificate("dev1"))
        assert (allowed[0] if allowed else None) == expected, why
    auth, _ = _auth(identity=lambda der: CertificateIdentity(["dev1"], []))
    allowed, why = auth.decide(_with_certificate("dev2"))
    assert allowed is None and "not attached" in why


def test_a_certificate_with_a_policy_gets_the_topics_the_policy_names(monkeypatch):
    from iot_jobs_bridge.jobs_service.device_plane import nats_auth

    monkeypatch.setattr(nats_auth, "_leaf_certificate", lambda tls: b"der" if tls else None)
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Action": ["iot:Subscribe", "iot:Receive"],
                    "Resource": [
                        f"{PREFIX}:topicfilter/$aws/things/${{iot:Connection.Thing.ThingName}}/jobs/*",
                        f"{PREFIX}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/jobs/*",
                    ],
                },
                {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{PREFIX}:topic/telemetry/*"},
            ],
        }
    )
    auth, _ = _auth(identity=lambda der: CertificateIdentity(["dev1"], [policy]))
    (who, permissions), _ = auth.decide(_with_certificate("dev1"))
    assert who == "dev1"
    assert permissions["sub"]["allow"] == ["$aws.things.dev1.jobs.>", "$aws.things.dev1.jobs"]
    assert permissions["pub"]["allow"] == ["telemetry.>", "telemetry"]
    assert permissions["allowed_connection_types"] == ["MQTT"]


def test_mqtt_filters_become_nats_subjects():
    assert subjects_of("$aws/things/+/jobs/#") == ["$aws.things.*.jobs.>", "$aws.things.*.jobs"]
    assert subjects_of("#") == [">"]
    assert subjects_of("a/b.c") == ["a.b//c"]
