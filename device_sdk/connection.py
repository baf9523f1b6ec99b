"""Where and how a device connects: endpoint URL, TLS material, reconnect backoff."""

from __future__ import annotations

import random
import ssl
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "AWS_MQTT_ALPN",
    "Backoff",
    "ConnectOptions",
    "Endpoint",
    "TlsOptions",
    "endpoints",
    "first_endpoint_for",
    "refusal_hint",
]

# AWS IoT Core accepts MQTT with a client certificate on port 443 only with this ALPN id.
AWS_MQTT_ALPN = "x-amzn-mqtt-ca"

_DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}
# CONNACK refusals a device can fix itself: MQTT 3.1.1 return codes and their MQTT 5 reason codes.
_NOT_AUTHORIZED = frozenset({5, 135})
_BAD_CREDENTIALS = frozenset({4, 134})


@dataclass(frozen=True)
class Endpoint:
    """A broker address: ``mqtt://HOST[:PORT]`` (plain) or ``mqtts://HOST[:PORT]`` (TLS)."""

    host: str
    port: int
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"endpoint {url!r} must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"endpoint {url!r} has no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError(f"endpoint {url!r} must be only a scheme, a host and a port")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"endpoint {url!r} has an invalid port") from exc
        if port == 0:
            raise ValueError(f"endpoint {url!r} has an invalid port")
        return cls(parts.hostname, port or _DEFAULT_PORTS[scheme], tls=scheme in ("mqtts", "ssl"))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def endpoints(given: str | Endpoint | Sequence[str | Endpoint]) -> tuple[Endpoint, ...]:
    """One endpoint or several: a URL, comma-separated URLs (the nodes of a cluster), or a list."""
    if isinstance(given, Endpoint):
        return (given,)
    items = given.split(",") if isinstance(given, str) else list(given)
    found = tuple(item if isinstance(item, Endpoint) else Endpoint.parse(item.strip()) for item in items)
    if not found:
        raise ValueError("no endpoint given")
    return found


def first_endpoint_for(thing_name: str, count: int) -> int:
    """Which of ``count`` endpoints a device tries first: spread over them, the same on every start."""
    return zlib.crc32(thing_name.encode()) % count


@dataclass(frozen=True)
class TlsOptions:
    """TLS material: a CA bundle, an optional client certificate and key, and ALPN ids.

    With a client certificate on port 443 and no ALPN given, ``x-amzn-mqtt-ca`` is
    offered, which is what AWS IoT Core requires there.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    alpn: tuple[str, ...] = ()
    verify_hostname: bool = True

    def context(self, port: int) -> ssl.SSLContext:
        """A client SSL context; raises ``ValueError`` naming a file that cannot be used."""
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both --cert-file and --key-file")
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None
            )
            if self.cert_file is not None and self.key_file is not None:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load TLS files: {exc}") from exc
        context.check_hostname = self.verify_hostname
        alpn = self.alpn
        if not alpn and port == 443 and self.cert_file is not None:
            alpn = (AWS_MQTT_ALPN,)
        if alpn:
            context.set_alpn_protocols(list(alpn))
        return context


@dataclass
class Backoff:
    """Exponential reconnect delays with jitter, so a fleet does not reconnect in lockstep.

    Each delay is drawn from the upper half of ``initial * 2**attempt`` (capped at
    ``maximum``); :meth:`reset` after a connection that worked.
    """

    initial: float = 0.5
    maximum: float = 30.0
    _attempt: int = field(default=0, repr=False)
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        cap = min(self.maximum, self.initial * (2 ** min(self._attempt, 32)))
        self._attempt += 1
        return self._random.uniform(cap / 2, cap)

    def reset(self) -> None:
        self._attempt = 0


@dataclass(frozen=True)
class ConnectOptions:
    """Everything needed to open a device's MQTT connection.

    ``client_id`` defaults to the thing name (AWS IoT and this project's broker
    both expect that); ``username``/``password`` are sent when given.
    """

    thing_name: str
    endpoint: Endpoint
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    tls: TlsOptions | None = None
    keepalive: int = 60

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.tls is None and not self.endpoint.tls:
            return None
        return (self.tls or TlsOptions()).context(self.endpoint.port)


def refusal_hint(options: ConnectOptions, code: int) -> str | None:
    """What to check when the broker refuses ``options`` with CONNACK ``code``; None for other codes.

    Meant to be said once: a device keeps retrying, since a thing may be
    registered or a certificate activated later.
    """
    thing = options.thing_name
    if code in _BAD_CREDENTIALS:
        return f"the broker refused thing {thing!r}: bad user name or password (--username, --password-env)"
    if code not in _NOT_AUTHORIZED:
        return None
    checks = f"is the thing registered (aws iot create-thing --thing-name {thing})"
    if options.tls is not None and options.tls.cert_file is not None:
        checks += (
            ", its certificate ACTIVE and attached to it (aws iot attach-thing-principal),"
            " and, if policies are attached to the certificate, do they allow iot:Connect"
        )
    elif options.tls is not None or options.endpoint.tls:
        checks += ", and does this device present its certificate (--cert-file, --key-file)"
    client_id = options.client_id or thing
    if client_id != thing:
        checks += f"; the broker knows a device by its client id, {client_id!r}, not by {thing!r}"
    return f"the broker refused thing {thing!r}: not authorized: {checks}? Retrying with backoff."
