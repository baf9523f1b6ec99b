"""`iotjobs serve` broker arguments: what they turn into, and the combinations refused."""

import pytest

from iot_jobs_bridge.jobs_service.ca import CertificateAuthority
from iot_jobs_bridge.jobs_service.cli import build_parser
from iot_jobs_bridge.jobs_service.serve_cli import _broker_fields


def parse(*argv):
    parser, _ = build_parser("serve")
    return parser.parse_args(["serve", *argv])


def fields(*argv):
    return _broker_fields(parse(*argv))


def test_mqtts_port_alone_means_8883_and_a_value_wins():
    assert parse("--mqtts-port").mqtts_port == 8883
    assert parse("--mqtts-port", "0").mqtts_port == 0
    assert parse().mqtts_port is None


def test_brokers_the_service_runs_take_no_external_settings():
    assert fields("--broker", "mosquitto") == {"broker": "mosquitto", "service_transport": "in-process"}
    assert fields() == {"broker": "embedded", "service_transport": "in-process"}
    assert fields("--service-transport", "mqtt") == {"broker": "embedded", "service_transport": "mqtt"}
    for extra in (["--broker-url", "mqtt://h:1"], ["--broker-acl-dir", "/tmp/x"], ["--broker-ca-file", "c"]):
        with pytest.raises(ValueError, match="need --broker external"):
            fields("--broker", "mosquitto", *extra)


def test_an_external_mqtts_url_carries_its_tls_files(tmp_path):
    ca = CertificateAuthority(tmp_path).cert_path
    got = fields("--broker", "external", "--broker-url", "mqtts://example", "--broker-ca-file", str(ca))
    assert got["external_broker"] == ("example", 8883)
    assert got["external_tls"].ca_file == ca and got["external_tls"].cert_file is None


def test_tls_files_with_a_plain_url_or_unreadable_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="need mqtts://"):
        fields("--broker", "external", "--broker-url", "mqtt://h:1", "--broker-ca-file", "ca.pem")
    with pytest.raises(ValueError, match="cannot load TLS files"):
        fields(
            "--broker", "external", "--broker-url", "mqtts://h:1", "--broker-ca-file", str(tmp_path / "no")
        )


def test_mqtts_port_is_refused_with_an_external_broker():
    with pytest.raises(ValueError, match="an external broker has its own"):
        fields("--broker", "external", "--broker-url", "mqtt://h:1", "--mqtts-port")
