"""The embedded MQTT broker (amqtt) with authentication and the per-thing topic ACL."""

from broker.acl import may_publish, may_receive, may_subscribe
from broker.auth import Authenticator, CredentialAuthenticator, Principal
from broker.embedded import BrokerStartError, EmbeddedBroker, JobsBroker, TlsListener

__all__ = [
    "Authenticator",
    "BrokerStartError",
    "CredentialAuthenticator",
    "EmbeddedBroker",
    "JobsBroker",
    "Principal",
    "TlsListener",
    "may_publish",
    "may_receive",
    "may_subscribe",
]
