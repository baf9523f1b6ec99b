import random
import ssl

import pytest

from iot_jobs_bridge.device_sdk.connection import (
    AWS_MQTT_ALPN,
    Backoff,
    ConnectOptions,
    Endpoint,
    TlsOptions,
    endpoints,
    first_endpoint_for,
    refusal_hint,
)
from tests.certs import self_signed

# --- Endpoint ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://h", Endpoint("h", 1883, tls=False)),
        ("mqtt://h:1", Endpoint("h", 1, tls=False)),
        ("mqtt://broker.local:1884/", Endpoint("broker.local", 1884, tls=False)),
        ("mqtts://h", Endpoint("h", 8883, tls=True)),
        ("mqtts://h:443", Endpoint("h", 443, tls=True)),
        ("MQTTS://H.example", Endpoint("h.example", 8883, tls=True)),
        ("tcp://h", Endpoint("h", 1883, tls=False)),
        ("ssl://h", Endpoint("h", 8883, tls=True)),
        ("mqtt://127.0.0.1:65535", Endpoint("127.0.0.1", 65535, tls=False)),
        ("mqtt://[::1]:1884", Endpoint("::1", 1884, tls=False)),
    ],
)
def test_endpoint_parse(url, expected):
    assert Endpoint.parse(url) == expected


@pytest.mark.parametrize(
    ("endpoint", "text"),
    [(Endpoint("h", 1883), "mqtt://h:1883"), (Endpoint("h", 8883, tls=True), "mqtts://h:8883")],
)
def test_endpoint_str(endpoint, text):
    assert str(endpoint) == text
    assert Endpoint.parse(text) == endpoint


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h", "endpoint 'http://h' must start with mqtt:// or mqtts://"),
        ("ws://h:80", "endpoint 'ws://h:80' must start with mqtt:// or mqtts://"),
        ("h:1883", "endpoint 'h:1883' must start with mqtt:// or mqtts://"),
        ("broker", "endpoint 'broker' must start with mqtt:// or mqtts://"),
        ("mqtt://", "endpoint 'mqtt://' has no host"),
        ("mqtts://:8883", "endpoint 'mqtts://:8883' has no host"),
        ("mqtt://h/path", "endpoint 'mqtt://h/path' must be only a scheme, a host and a port"),
        ("mqtt://h?x=1", "endpoint 'mqtt://h?x=1' must be only a scheme, a host and a port"),
        ("mqtt://user@h", "endpoint 'mqtt://user@h' must be only a scheme, a host and a port"),
        (
            "mqtt://user:pw@h:1883",
            "endpoint 'mqtt://user:pw@h:1883' must be only a scheme, a host and a port",
        ),
        ("mqtt://h:abc", "endpoint 'mqtt://h:abc' has an invalid port"),
        ("mqtt://h:70000", "endpoint 'mqtt://h:70000' has an invalid port"),
        ("mqtt://h:-1", "endpoint 'mqtt://h:-1' has an invalid port"),
    ],
)
def test_endpoint_parse_rejects(url, message):
    with pytest.raises(ValueError) as caught:
        Endpoint.parse(url)
    assert str(caught.value) == message


def test_endpoint_port_zero_is_rejected_not_replaced_by_the_default():
    # Port 0 cannot be connected to; it must not silently become 1883.
    with pytest.raises(ValueError) as caught:
        Endpoint.parse("mqtt://h:0")
    assert str(caught.value) == "endpoint 'mqtt://h:0' has an invalid port"


@pytest.mark.parametrize("url", ["mqtt://h#fragment", "mqtt://:secret@h"])
def test_endpoint_with_anything_besides_scheme_host_and_port_is_rejected(url):
    with pytest.raises(ValueError) as caught:
        Endpoint.parse(url)
    assert str(caught.value) == f"endpoint {url!r} must be only a scheme, a host and a port"


# --- Backoff ----------------------------------------------------------------------------------


def _caps(initial, maximum, count):
    return [min(maximum, initial * 2**i) for i in range(count)]


def test_backoff_delays_lie_in_the_upper_half_of_a_growing_capped_window():
    backoff = Backoff(initial=0.5, maximum=30.0, _random=random.Random(7))
    for cap in _caps(0.5, 30.0, 12):
        delay = backoff.next_delay()
        assert cap / 2 <= delay <= cap


def test_backoff_grows_then_stays_at_maximum():
    class Top(random.Random):
        def uniform(self, a, b):
            return b

    backoff = Backoff(initial=1.0, maximum=10.0, _random=Top())
    assert [backoff.next_delay() for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_backoff_lower_bound_is_half_the_window():
    class Bottom(random.Random):
        def uniform(self, a, b):
            return a

    backoff = Backoff(initial=1.0, maximum=10.0, _random=Bottom())
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_after_many_attempts_stays_at_maximum():
    backoff = Backoff(initial=0.5, maximum=30.0)
    delays = [backoff.next_delay() for _ in range(200)]
    assert all(15.0 <= d <= 30.0 for d in delays[10:])


def test_backoff_has_jitter():
    backoff = Backoff(initial=1.0, maximum=1.0, _random=random.Random(3))
    assert len({backoff.next_delay() for _ in range(20)}) > 1


def test_backoff_reset_starts_again_from_initial():
    backoff = Backoff(initial=1.0, maximum=60.0)
    for _ in range(6):
        backoff.next_delay()
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0
    assert 1.0 <= backoff.next_delay() <= 2.0


def test_backoff_defaults():
    backoff = Backoff()
    assert (backoff.initial, backoff.maximum) == (0.5, 30.0)
    assert 0.25 <= backoff.next_delay() <= 0.5


# --- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert_and_key(tmp_path_factory):
    issued = self_signed(tmp_path_factory.mktemp("tls"))
    return issued.cert, issued.key


def _handshake(client, cert, key):
    """Complete a TLS handshake in memory; the ALPN protocol the server selected."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(cert), str(key))
    server.set_alpn_protocols([AWS_MQTT_ALPN, "mqtt"])
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, side in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    assert all(done.values()), "handshake did not complete"
    return c.selected_alpn_protocol()


def test_cert_without_key_is_refused(cert_and_key):
    cert, key = cert_and_key
    for options in (TlsOptions(cert_file=cert), TlsOptions(key_file=key)):
        with pytest.raises(ValueError) as caught:
            options.context(8883)
        assert str(caught.value) == "a client certificate needs both --cert-file and --key-file"


def test_missing_ca_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"^cannot load TLS files: ") as caught:
        TlsOptions(ca_file=tmp_path / "missing-ca.pem").context(8883)
    assert isinstance(caught.value.__cause__, OSError)


def test_missing_cert_file_is_refused(tmp_path, cert_and_key):
    _, key = cert_and_key
    with pytest.raises(ValueError, match=r"^cannot load TLS files: "):
        TlsOptions(cert_file=tmp_path / "missing.pem", key_file=key).context(8883)


def test_garbage_ca_file_is_refused(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"^cannot load TLS files: "):
        TlsOptions(ca_file=ca).context(8883)


def test_unreadable_key_is_refused(tmp_path, cert_and_key):
    cert, _ = cert_and_key
    other = tmp_path / "other.pem"
    other.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match=r"^cannot load TLS files: "):
        TlsOptions(cert_file=cert, key_file=other).context(8883)


def test_default_context_verifies_the_server():
    context = TlsOptions().context(8883)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_verify_hostname_can_be_switched_off(cert_and_key):
    cert, _ = cert_and_key
    context = TlsOptions(ca_file=cert, verify_hostname=False).context(8883)
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_client_cert_on_443_offers_the_aws_alpn(cert_and_key):
    cert, key = cert_and_key
    context = TlsOptions(ca_file=cert, cert_file=cert, key_file=key).context(443)
    assert _handshake(context, cert, key) == AWS_MQTT_ALPN


@pytest.mark.parametrize(("port", "with_cert"), [(8883, True), (443, False)])
def test_no_alpn_offered_elsewhere(cert_and_key, port, with_cert):
    cert, key = cert_and_key
    options = (
        TlsOptions(ca_file=cert, cert_file=cert, key_file=key) if with_cert else TlsOptions(ca_file=cert)
    )
    assert _handshake(options.context(port), cert, key) is None


def test_explicit_alpn_wins_over_the_default(cert_and_key):
    cert, key = cert_and_key
    context = TlsOptions(ca_file=cert, cert_file=cert, key_file=key, alpn=("mqtt",)).context(443)
    assert _handshake(context, cert, key) == "mqtt"


def test_connect_options_plain_endpoint_has_no_ssl_context():
    options = ConnectOptions(thing_name="t", endpoint=Endpoint("h", 1883))
    assert options.ssl_context() is None


def test_connect_options_tls_endpoint_gets_a_default_context():
    options = ConnectOptions(thing_name="t", endpoint=Endpoint("h", 8883, tls=True))
    context = options.ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_connect_options_use_the_endpoint_port_for_alpn(cert_and_key):
    cert, key = cert_and_key
    tls = TlsOptions(ca_file=cert, cert_file=cert, key_file=key)
    options = ConnectOptions(thing_name="t", endpoint=Endpoint("localhost", 443, tls=True), tls=tls)
    context = options.ssl_context()
    assert context is not None
    assert _handshake(context, cert, key) == AWS_MQTT_ALPN


# --- what a refused device is told -------------------------------------------------------------


def test_a_refused_plain_device_is_asked_whether_its_thing_is_registered():
    options = ConnectOptions("ghost", Endpoint.parse("mqtt://h"))
    assert refusal_hint(options, 135) == (
        "the broker refused thing 'ghost': not authorized: is the thing registered"
        " (aws iot create-thing --thing-name ghost)? Retrying with backoff."
    )
    assert refusal_hint(options, 5) == refusal_hint(options, 135)  # MQTT 3.1.1's code for it


def test_a_refused_certificate_device_is_asked_about_its_certificate_too(tmp_path):
    options = ConnectOptions(
        "kiosk",
        Endpoint.parse("mqtts://h"),
        tls=TlsOptions(cert_file=tmp_path / "c", key_file=tmp_path / "k"),
    )
    hint = refusal_hint(options, 135)
    assert "aws iot create-thing --thing-name kiosk" in hint
    assert "its certificate ACTIVE and attached to it (aws iot attach-thing-principal)" in hint
    assert "allow iot:Connect" in hint


def test_a_refused_device_without_its_certificate_is_told_to_present_it():
    hint = refusal_hint(ConnectOptions("kiosk", Endpoint.parse("mqtts://h")), 135)
    assert "does this device present its certificate (--cert-file, --key-file)" in hint


def test_a_client_id_other_than_the_thing_name_is_pointed_out():
    hint = refusal_hint(ConnectOptions("kiosk", Endpoint.parse("mqtt://h"), client_id="kiosk-2"), 135)
    assert "the broker knows a device by its client id, 'kiosk-2', not by 'kiosk'" in hint


def test_bad_credentials_and_other_refusals():
    options = ConnectOptions("t", Endpoint.parse("mqtt://h"))
    assert (
        refusal_hint(options, 134)
        == "the broker refused thing 't': bad user name or password (--username, --password-env)"
    )
    assert refusal_hint(options, 3) is None  # server unavailable: nothing the device can fix


# --- several endpoints (a cluster's nodes) ------------------------------------------------------


def test_endpoints_are_one_url_a_comma_separated_list_or_a_sequence():
    one, two = Endpoint("a", 1883), Endpoint("b", 8883, tls=True)
    assert endpoints("mqtt://a") == (one,)
    assert endpoints("mqtt://a, mqtts://b") == (one, two)
    assert endpoints([one, "mqtts://b"]) == (one, two)
    assert endpoints(two) == (two,)
    with pytest.raises(ValueError):
        endpoints("mqtt://a,")
    with pytest.raises(ValueError):
        endpoints([])


def test_a_fleet_spreads_over_the_endpoints_and_each_device_starts_at_the_same_one():
    starts = [first_endpoint_for(f"device-{n}", 3) for n in range(300)]
    assert all(60 <= starts.count(index) <= 140 for index in range(3))
    assert first_endpoint_for("device-7", 3) == starts[7]
