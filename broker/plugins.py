"""amqtt plugins: authentication and the per-thing topic ACL.

They stay thin: the policy lives in `broker.auth` and `broker.acl`. Both fail
closed and log every error with the client id (and topic). A refused CONNECT
is logged once, with its reason, by the connection's handling
(`broker.connections`), which reads the reason from the session. Refused
publishes and subscribes are logged at INFO; a message withheld from a
subscriber (receive) at DEBUG only, since the subscription itself was allowed
and such filtering is by design: the jobs service's own replies meeting its
`jobs/#` subscription, a device's own requests meeting its.
They never let an exception escape, because amqtt does not contain plugin
errors: one raised while routing loses the message or ends that client's
message loop, leaving at best an unretrieved-task warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from iot_jobs_bridge.broker.acl import may_publish, may_receive, may_subscribe
from iot_jobs_bridge.broker.auth import Authenticator, Principal, Refusal, authenticate_explained

logger = logging.getLogger(__name__)

# `Session.attributes` is amqtt's documented place for plugin-owned data;
# keys are namespaced to avoid collisions.
_PRINCIPAL_KEY = "iotjobs.principal"
_REFUSAL_KEY = "iotjobs.refusal"

_RULES: dict[Action, Callable[[Principal, str], bool]] = {
    Action.PUBLISH: may_publish,
    Action.SUBSCRIBE: may_subscribe,
    Action.RECEIVE: may_receive,
}


def session_principal(session: Session | None) -> Principal | None:
    """The principal `JobsAuthPlugin` stored on `session`, if any."""
    value = session.attributes.get(_PRINCIPAL_KEY) if session is not None else None
    return value if isinstance(value, Principal) else None


def session_refusal(session: Session | None) -> str:
    """Why `JobsAuthPlugin` last refused `session`."""
    value = session.attributes.get(_REFUSAL_KEY) if session is not None else None
    return value if isinstance(value, str) else "credentials not accepted"


class JobsAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type information
    """Authenticates each CONNECT with an `Authenticator` and records the principal."""

    @dataclass
    class Config:
        # amqtt builds this from the broker config with dacite; a field typed
        # `Any` is passed through as is, so the live authenticator object
        # arrives here without any global registry.
        authenticator: Any = None

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        authenticator = getattr(self.config, "authenticator", None)
        if authenticator is None:
            raise ValueError("JobsAuthPlugin needs an 'authenticator' in its config")
        self._authenticator: Authenticator = authenticator

    async def authenticate(self, *, session: Session) -> bool:
        client_id = getattr(session, "client_id", None)
        try:
            # amqtt reuses the Session object of a persistent session on
            # reconnect: drop the old principal so a failed login keeps none.
            session.attributes.pop(_PRINCIPAL_KEY, None)
            session.attributes.pop(_REFUSAL_KEY, None)
            decided = authenticate_explained(
                self._authenticator, client_id, session.username, session.password, _peer_certificate(session)
            )
            if isinstance(decided, Refusal):
                # Logged by whoever acts on the refusal, with the client's address.
                session.attributes[_REFUSAL_KEY] = decided.reason
                return False
            session.attributes[_PRINCIPAL_KEY] = decided
        except Exception:
            logger.exception("authentication error, connection refused: client id %r", client_id)
            session.attributes[_REFUSAL_KEY] = "authentication error (logged above)"
            return False
        return True


def _peer_certificate(session: Session) -> bytes | None:
    """The client certificate (DER) of a TLS connection, or ``None`` on the plain listener."""
    ssl_object = getattr(session, "ssl_object", None)
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return bytes(der) if der else None


class JobsTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]  # amqtt ships no type information
    """Applies `broker.acl` to publish, subscribe and receive; refuses unknown sessions."""

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool:
        return check_topic(session, topic, action)


def check_topic(session: Session | None, topic: str | None, action: Action | None) -> bool:
    """`broker.acl` for one publish, subscribe or receive; fails closed and logs every refusal.

    The broker calls this directly on its hot path (see `JobsBroker._topic_filtering`).
    """
    client_id = getattr(session, "client_id", None)
    try:
        principal = session_principal(session)
        rule = _RULES.get(action) if action is not None else None
        allowed = principal is not None and rule is not None and topic is not None and rule(principal, topic)
    except Exception:
        logger.exception("topic check error, refused %s: client id %r, topic %r", action, client_id, topic)
        return False
    if not allowed:
        level = logging.DEBUG if action == Action.RECEIVE else logging.INFO
        logger.log(level, "refused %s: client id %r, topic %r", action, client_id, topic)
    return allowed
