"""The embedded MQTT broker (amqtt) with authentication and the per-thing topic ACL."""

from iot_jobs_bridge.broker.acl import may_publish, may_receive, may_subscribe
from iot_jobs_bridge.broker.auth import Authenticator, CertificateIdentity, CredentialAuthenticator, Principal
from iot_jobs_bridge.broker.embedded import BrokerStartError, EmbeddedBroker, JobsBroker, TlsListener
from iot_jobs_bridge.broker.limits import BrokerLimits

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
