"""Keep a managed Mosquitto's access files in step with the registry.

Certificates, their things and their policies live in the store; Mosquitto
reads files. `access_files` renders the store into those files, and
`MosquittoSync` re-renders them after every control-plane change that can
alter who may connect or what they may do, and hands them to the broker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from iot_jobs_bridge.broker.mosquitto_acl import (
    FULL_ACCESS,
    MosquittoUser,
    Rule,
    acl_file,
    anonymous_thing_patterns,
    policy_rules,
    thing_rules,
)
from iot_jobs_bridge.broker.policy import PolicyError, Statement, parse_policy

from .arns import Arns
from .ca import common_name, serial_number
from .store import Store

__all__ = ["AccessFiles", "MosquittoSync", "access_files"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessFiles:
    plain_acl: str
    tls_acl: str
    refused: frozenset[int]  # serial numbers of certificates that may not connect
    # Every (certificate user, access, topic) line of the TLS ACL, to tell when rights are taken away.
    tls_grants: frozenset[tuple[str, str, str]] = frozenset()

    def takes_away_from(self, before: AccessFiles) -> bool:
        """Whether going from ``before`` to these files removes a right or adds a denial."""
        removed = any(grant not in self.tls_grants for grant in before.tls_grants if grant[1] != "deny")
        denied = any(grant not in before.tls_grants for grant in self.tls_grants if grant[1] == "deny")
        return removed or denied


def access_files(store: Store, arns: Arns, service_username: str) -> AccessFiles:
    """The ACL files and the certificates to refuse, for the registry as it is now."""
    with store.atomic():  # one consistent view of certificates, things and policies
        return _access_files(store, arns, service_username)


def _access_files(store: Store, arns: Arns, service_username: str) -> AccessFiles:
    certificates = store.certificates.all_certificates()
    things_of: dict[str, list[str]] = defaultdict(list)
    for thing, principal in store.certificates.all_thing_principals():
        things_of[principal].append(thing)
    names = {c.certificate_id: common_name(c.pem) for c in certificates}
    # Certificates sharing a name (made before names were unique) cannot be told apart: none gets rights.
    shared = {name for name, count in Counter(names.values()).items() if count > 1}
    users = []
    refused = [serial_number(pem) for pem in store.certificates.deleted_certificate_pems()]
    for certificate in certificates:
        name = names[certificate.certificate_id]
        if certificate.status != "ACTIVE":
            refused.append(serial_number(certificate.pem))
            continue
        if name is None or name in shared:
            log.warning(
                "certificate %s has no unique common name; Mosquitto gives it no rights",
                certificate.certificate_id,
            )
            continue
        arn = arns.certificate(certificate.certificate_id)
        things = tuple(things_of.get(arn, ()))
        users.append(MosquittoUser(name, _rules(store, arn, things, arns.prefix)))
    service = MosquittoUser(service_username, FULL_ACCESS)
    return AccessFiles(
        plain_acl=acl_file([service], anonymous_thing_patterns()),
        tls_acl=acl_file(users),
        refused=frozenset(refused),
        tls_grants=frozenset((user.username, *rule) for user in users for rule in user.rules),
    )


def _rules(store: Store, arn: str, things: tuple[str, ...], prefix: str) -> tuple[Rule, ...]:
    statements: list[Statement] = []
    names = store.policies.policies_of(arn)
    for name in names:
        policy = store.policies.get_policy(name)
        if policy is None:
            continue
        try:
            statements.extend(parse_policy(policy.document))
        except PolicyError:  # checked when stored; an unreadable one grants nothing
            log.warning("policy %s cannot be read; it grants nothing", name)
    if not names:
        return tuple(rule for thing in things for rule in thing_rules(thing))
    return tuple(policy_rules(tuple(statements), things, prefix))


class AccessTarget(Protocol):
    """Where the files go: a managed Mosquitto, or a directory an operator's Mosquitto reads."""

    async def start(self, *, plain_acl: str, tls_acl: str, crl: bytes) -> None: ...

    async def apply(
        self, *, plain_acl: str, tls_acl: str, crl: bytes | None, reconnect: bool = False
    ) -> str | None: ...


class MosquittoSync:
    """Re-renders the access files when woken and hands them to Mosquitto, one change at a time.

    ``crl_for`` turns the refused serial numbers into a revocation list; it is
    called only when they change, since a new list means restarting Mosquitto.
    A change that takes rights away restarts it too: Mosquitto 2.0 cannot close
    one client's connection, and a device that lost its certificate's thing or
    policy must not stay connected (AWS IoT disconnects it).
    """

    def __init__(
        self,
        render: Callable[[], AccessFiles],
        crl_for: Callable[[frozenset[int]], bytes],
        broker: AccessTarget,
    ) -> None:
        self._render = render
        self._crl_for = crl_for
        self._broker = broker
        self._refused: frozenset[int] | None = None
        self._files: AccessFiles | None = None
        self._wanted = asyncio.Event()
        self._lock = threading.Lock()
        self._waiting: list[concurrent.futures.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.applied = 0  # changes Mosquitto has taken, for tests and logs
        # Awaited after a restart, before callers hear the change is in: the
        # service's own connection is back (given the grants seen before it).
        self.service_connections: Callable[[], int] = lambda: 0
        self.service_back: Callable[[int], Awaitable[object]] | None = None

    async def start(self) -> None:
        """Render the files and start Mosquitto on them; then follow changes."""
        files = await asyncio.to_thread(self._render)
        self._refused = files.refused
        self._files = files
        await self._broker.start(
            plain_acl=files.plain_acl, tls_acl=files.tls_acl, crl=self._crl_for(files.refused)
        )
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="mosquitto-sync")

    def wake(self) -> concurrent.futures.Future[None]:
        """Safe from any thread: the registry may have changed.

        The future completes once Mosquitto runs on files rendered after this call.
        """
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        if self._loop is None:
            done.set_result(None)
            return done
        with self._lock:
            self._waiting.append(done)
        self._loop.call_soon_threadsafe(self._wanted.set)
        return done

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            with self._lock:
                batch, self._waiting = self._waiting, []
            try:
                files = await asyncio.to_thread(self._render)
                crl = None if files.refused == self._refused else self._crl_for(files.refused)
                reconnect = self._files is not None and files.takes_away_from(self._files)
                connections = self.service_connections()
                action = await self._broker.apply(
                    plain_acl=files.plain_acl, tls_acl=files.tls_acl, crl=crl, reconnect=reconnect
                )
                self._refused = files.refused
                self._files = files
                if action == "restart" and self.service_back is not None:
                    await self.service_back(connections)
            except Exception:
                log.exception("could not bring Mosquitto in step with the registry; retrying")
                with self._lock:
                    self._waiting = batch + self._waiting
                await asyncio.sleep(1.0)
                self._wanted.set()
                continue
            for done in batch:
                done.set_result(None)
            if action is not None:
                self.applied += 1
                log.info("mosquitto access files changed: %s", action)
