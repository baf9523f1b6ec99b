"""The embedded MQTT broker (amqtt) with authentication and the per-thing topic ACL."""

from broker.acl import may_publish, may_receive, may_subscribe
from broker.auth import Authenticator, CertificateIdentity, CredentialAuthenticator, Principal
from broker.embedded import BrokerStartError, EmbeddedBroker, JobsBroker, TlsListener
from broker.limits import BrokerLimits

__all__ = [
    "Authenticator",
    "BrokerLimits",
    "BrokerStartError",
    "CertificateIdentity",
    "CredentialAuthenticator",
    "EmbeddedBroker",
    "JobsBroker",
    "Principal",
    "TlsListener",
    "may_publish",
    "may_receive",
    "may_subscribe",
]
