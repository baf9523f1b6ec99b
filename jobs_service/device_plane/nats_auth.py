"""Who may connect to the NATS cluster, and to which topics: NATS asks the workers (auth callout).

Each NATS node sends every new connection's details to ``$SYS.REQ.USER.AUTH``;
the workers answer in a queue group, so any live worker decides for any node.
The rules are the embedded broker's:

* the admin key as MQTT username and password: every topic (monitoring tools);
* a client certificate (a node whose MQTT listener requires one) must be one the
  service issued or registered, and ACTIVE; with AWS IoT policies attached they
  decide (``iot:Connect`` on the client id, then the topics, translated as for
  Mosquitto); without, the client id must be a thing it is attached to;
* otherwise the MQTT client id must be a registered thing, which gets its own
  ``$aws/things/<name>/jobs/...`` topics and nothing else;
* anything else is refused (CONNACK "not authorized").

The decision is the embedded broker's own (:class:`CredentialAuthenticator`);
this module turns its principal into NATS permissions.

The answer is a user JWT signed with the callout issuer's account key, which
every worker derives from the admin secret (so no other secret has to be
shared); the NATS configuration names its public half (:func:`cluster_security`).
The JWT expires after :data:`SESSION_SECONDS`: the device reconnects and is
asked again, so a deleted thing loses its connection within that time.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from iot_jobs_bridge.broker.auth import CredentialAuthenticator, Principal, Refusal
from iot_jobs_bridge.broker.mosquitto_acl import Rule, policy_rules
from iot_jobs_bridge.schemas.topics import THING_NAME

from ..credentials import AdminKey
from ..nkeys import ACCOUNT, SERVER, KeyPair, decode_jwt, encode_jwt

__all__ = [
    "ACCOUNT_NAME",
    "AUTH_SUBJECT",
    "SESSION_SECONDS",
    "NatsDeviceAuth",
    "callout_issuer",
    "cluster_security",
]

log = logging.getLogger(__name__)

AUTH_SUBJECT = "$SYS.REQ.USER.AUTH"
#: The NATS account that devices and workers share.
ACCOUNT_NAME = "IOTJOBS"
#: How long a device's NATS login lasts before the cluster asks again.
SESSION_SECONDS = 3600
_MAX_PAYLOAD = 256 * 1024 + 512
_THING_NAME = re.compile(THING_NAME)  # a 128 KB request with room to spare; bounds what a node buffers


def callout_issuer(key: AdminKey) -> KeyPair:
    """The account key that signs the cluster's logins, derived from the admin secret."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"iotjobs nats auth callout").derive(
        key.secret_access_key.encode()
    )
    return KeyPair.from_raw_seed(ACCOUNT, raw)


def cluster_security(key: AdminKey) -> str:
    """The accounts, users and auth callout every NATS node of a cluster needs (nats.conf text)."""
    user, password = json.dumps(key.access_key_id), json.dumps(key.secret_access_key)
    return f"""max_payload: {_MAX_PAYLOAD}
accounts {{
  {ACCOUNT_NAME} {{
    jetstream: enabled
    users: [ {{ user: {user}, password: {password} }} ]
  }}
  SYS {{ }}
}}
system_account: SYS
authorization {{
  auth_callout {{
    issuer: {callout_issuer(key).public}
    auth_users: [ {user} ]
    account: {ACCOUNT_NAME}
  }}
}}
"""


def device_permissions(thing_name: str) -> dict[str, Any]:
    """A thing's own jobs topics, as NATS subjects (``#`` also matches the parent level), over MQTT only."""
    own = f"$aws.things.{thing_name}.jobs"
    return {
        "pub": {"allow": [f"{own}.>"]},
        "sub": {"allow": [own, f"{own}.>"]},
        "allowed_connection_types": ["MQTT"],
    }


ADMIN_PERMISSIONS: dict[str, Any] = {"pub": {"allow": [">"]}, "sub": {"allow": [">"]}}


class NatsDeviceAuth:
    """Answers the cluster's authorization requests; see the module's text."""

    def __init__(
        self,
        key: AdminKey,
        authenticator: CredentialAuthenticator,
        *,
        arn_prefix: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self._issuer = callout_issuer(key)
        self._authenticator = authenticator
        self._arn_prefix = arn_prefix
        self._clock = clock
        self._client: NatsClient | None = None

    async def start(self, client: NatsClient) -> None:
        self._client = client
        await client.subscribe(AUTH_SUBJECT, queue="iotjobs-auth", cb=self._answer)

    async def _answer(self, message: Msg) -> None:
        try:
            request = decode_jwt(message.data.decode("ascii"), SERVER)
            claims = request["nats"]
            server_id = claims["server_id"]["id"]
            user_nkey = claims["user_nkey"]
        except (ValueError, KeyError, TypeError, UnicodeError):
            log.warning("ignored an authorization request that is not a NATS server's")
            return
        permissions, refusal = self.decide(claims)
        now = int(self._clock())
        answer: dict[str, Any] = {"type": "authorization_response", "version": 2}
        if permissions is None:
            answer["error"] = refusal
        else:
            answer["jwt"] = encode_jwt(
                {
                    "aud": ACCOUNT_NAME,
                    "sub": user_nkey,
                    "name": permissions[0],
                    "iat": now,
                    "exp": now + SESSION_SECONDS,
                    "nats": {"type": "user", "version": 2, **permissions[1]},
                },
                self._issuer,
            )
        response = encode_jwt({"aud": server_id, "sub": user_nkey, "iat": now, "nats": answer}, self._issuer)
        await message.respond(response.encode("ascii"))

    def decide(self, claims: dict[str, Any]) -> tuple[tuple[str, dict[str, Any]] | None, str]:
        """((who, permissions), "") for a connection to let in, (None, why) for one to refuse."""
        client = claims.get("client_info") or {}
        options = claims.get("connect_opts") or {}
        username, password = options.get("user"), options.get("pass")
        client_id = client.get("mqtt_id")
        certificate = _leaf_certificate(claims.get("client_tls") or {})
        if client.get("type") != "mqtt":
            # Native NATS clients: the workers and tools with the admin key only.
            client_id = None
            if username != self._key.access_key_id:
                return None, "only devices over MQTT and the admin key may connect"
        elif not isinstance(client_id, str) or not _THING_NAME.fullmatch(client_id):
            # A thing name never holds NATS's wildcards or separators; anything else is no thing.
            if username != self._key.access_key_id:
                return None, "the client id is not a thing name"
            client_id = None
        decided = self._authenticator.check(client_id, username, password, certificate)
        if isinstance(decided, Refusal):
            log.info("refused a connection for %r: %s", client_id, decided.reason)
            return None, decided.reason
        return (decided.name, permissions_of(decided, self._arn_prefix)), ""


def permissions_of(principal: Principal, arn_prefix: str) -> dict[str, Any]:
    """The NATS permissions of a principal the broker's rules let in."""
    if principal.kind in ("admin", "service"):
        return ADMIN_PERMISSIONS
    if principal.kind == "thing":
        return device_permissions(principal.name)
    things = (principal.thing,) if principal.thing else ()
    return {
        **rule_permissions(policy_rules(principal.statements, things, arn_prefix)),
        "allowed_connection_types": ["MQTT"],
    }


def rule_permissions(rules: list[Rule]) -> dict[str, Any]:
    """Mosquitto-style rules (read, write, readwrite or deny on an MQTT filter) as NATS permissions."""
    publish: dict[str, list[str]] = {"allow": [], "deny": []}
    subscribe: dict[str, list[str]] = {"allow": [], "deny": []}
    for access, topic_filter in rules:
        subjects = subjects_of(topic_filter)
        if access == "deny":
            publish["deny"] += subjects
            subscribe["deny"] += subjects
            continue
        if access in ("read", "readwrite"):
            subscribe["allow"] += subjects
        if access in ("write", "readwrite"):
            publish["allow"] += subjects
    return {
        "pub": {key: list(dict.fromkeys(value)) for key, value in publish.items() if value},
        "sub": {key: list(dict.fromkeys(value)) for key, value in subscribe.items() if value},
    }


def subjects_of(topic_filter: str) -> list[str]:
    """The NATS subjects an MQTT filter covers: levels joined by ``.``, ``+`` as ``*``, and a
    trailing ``#`` as ``>`` plus the level above it (MQTT's ``#`` matches its parent too)."""
    levels = [level.replace(".", "//") for level in topic_filter.split("/")]
    levels = ["*" if level == "+" else level for level in levels]
    if levels[-1] != "#":
        return [".".join(levels)]
    parent = levels[:-1]
    return [".".join([*parent, ">"]), *([".".join(parent)] if parent else [])]


def _leaf_certificate(tls: dict[str, Any]) -> bytes | None:
    """The client certificate (DER) a node's TLS listener verified, if the connection had one."""
    chains = tls.get("verified_chains") or []
    pem = chains[0][0] if chains and chains[0] else (tls.get("certs") or [None])[0]
    if not isinstance(pem, str):
        return None
    try:
        return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    except ValueError:
        return None
