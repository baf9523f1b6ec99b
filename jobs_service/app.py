"""Wiring: the embedded broker, the jobs service and the HTTP control plane in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from iot_jobs_bridge.broker import BrokerLimits, CredentialAuthenticator, EmbeddedBroker, TlsListener
from iot_jobs_bridge.broker.acl_export import AclExport
from iot_jobs_bridge.broker.mosquitto import ManagedMosquitto, MosquittoListeners, free_port
from iot_jobs_bridge.device_sdk.connection import TlsOptions

from .addresses import is_loopback
from .arns import Arns
from .ca import CertificateAuthority
from .certificates import Certificates
from .clock import Clock, SystemClock, resumed_clock, shared_clock
from .console import Console
from .control_plane import ACCESS_OPERATIONS, SINGLE_RESOURCE_OPERATIONS, ControlPlane, Services
from .control_plane.connectivity import Connectivity
from .credentials import AdminKey, load_admin_key
from .data_dir import make_data_dir, owner_only_files
from .device_plane import Message, Renderer
from .device_plane.api import DeviceApi
from .device_plane.mqtt_bridge import EMBEDDED_REQUEST_FILTERS, REQUEST_FILTERS, SERVICE_CLIENT_ID, MqttBridge
from .device_plane.nats_auth import NatsDeviceAuth
from .device_plane.nats_transport import NatsTransport
from .device_plane.request_pump import RequestPump
from .device_plane.transport import InProcessTransport, Transport, publisher_for_any_thread
from .domain_events import DomainEvent
from .engine import JobsEngine
from .http_api import build_app
from .http_api.app import Settle, handler_worker
from .http_api.health import Health
from .http_api.metrics_endpoint import MetricsEndpoint, warn_if_unreachable
from .http_api.schedules_api import SchedulesApi
from .http_api.server import server_config
from .leadership import leadership_for
from .limits import DeviceLimits
from .metrics import Metrics
from .mosquitto_sync import AccessFiles, AccessTarget, MosquittoSync, access_files
from .policies import Policies
from .registry import Registry
from .scheduler import Scheduler
from .schedules import Schedules
from .store import Store, is_postgres_url
from .templates import Templates

__all__ = ["JobsService", "ServiceConfig"]

log = logging.getLogger(__name__)

DATABASE_FILE = "jobs.sqlite3"
# How long an access-changing API call waits for the managed broker to take the change.
BROKER_APPLY_WITHIN = 15.0


@dataclass(frozen=True)
class ServiceConfig:
    host: str = "127.0.0.1"
    # The plain MQTT listener, where a device logs in by client id; None turns it off.
    mqtt_port: int | None = 1883
    http_port: int = 8080
    data_dir: Path = field(default_factory=lambda: Path("data"))
    region: str = "us-east-1"
    account: str = "123456789012"
    time_scale: float = 1.0
    # Publish $aws/events/... (AWS publishes them once UpdateEventConfigurations enables them).
    events: bool = True
    limits: DeviceLimits = field(default_factory=DeviceLimits)
    # "embedded" (amqtt, in this process), "mosquitto" (a Mosquitto the service
    # configures and supervises), "external" (at external_broker) or "nats" (a NATS
    # cluster at nats_urls, shared with other workers).
    broker: str = "embedded"
    nats_urls: tuple[str, ...] = ()
    # How the service reaches the embedded broker: "in-process" (requests handed over
    # directly) or "mqtt" (a loopback MQTT connection, as with any other broker).
    service_transport: str = "in-process"
    # An MQTT broker to use instead of the embedded one, as (host, port); devices
    # then connect to it, and it must keep each of them to its own topics.
    external_broker: tuple[str, int] | None = None
    # A TLS listener requiring client certificates (0: any free port). The
    # managed Mosquitto always has one, on 8883 unless told otherwise.
    mqtts_port: int | None = None
    # More host names or addresses for the TLS listener's certificate (besides
    # --host, localhost, 127.0.0.1 and this machine's host name).
    tls_names: tuple[str, ...] = ()
    external_username: str | None = None
    external_password: str | None = None
    # TLS to the external broker (mqtts://): a CA bundle and, optionally, the
    # service's own client certificate.
    external_tls: TlsOptions | None = None
    # Keep the external broker's device ACL and revocation list in this
    # directory, running this command after each change.
    external_acl_dir: Path | None = None
    external_reload_command: str | None = None
    # What clients can make the broker the service runs hold.
    broker_limits: BrokerLimits = field(default_factory=BrokerLimits)
    # Control-plane requests are logged at INFO (an access log) instead of DEBUG.
    access_log: bool = False
    # The store: a postgresql:// URL or an SQLite file's path; None is jobs.sqlite3 in data_dir.
    store: str | None = None
    # With a token, /metrics answers only scrapes that send it as a bearer token; without
    # one, only clients on this machine.
    metrics_token: str | None = None


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: ``iotjobs serve`` owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class JobsService:
    """Everything ``iotjobs serve`` runs, as one async context manager."""

    def __init__(
        self, config: ServiceConfig, *, clock: Clock | None = None, environ: dict[str, str] | None = None
    ) -> None:
        self.config = config
        # Without an injected clock, start() resumes the data dir's service clock.
        self._given_clock = clock
        self.clock: Clock = clock or SystemClock(config.time_scale)
        self.arns = Arns(config.region, config.account)
        self.admin_key: AdminKey
        self.admin_key_generated = False
        self._environ = environ
        self.store: Store | None = None
        self.broker: EmbeddedBroker | None = None
        self.mosquitto: ManagedMosquitto | None = None
        self.mosquitto_sync: MosquittoSync | None = None
        self.bridge: MqttBridge | None = None
        self.pump: RequestPump | None = None
        self.transport: Transport | None = None
        self.scheduler: Scheduler | None = None
        self.schedules: Schedules | None = None
        self.certificates: Certificates | None = None
        self.policies: Policies | None = None
        self.console: Console | None = None
        self.metrics: Metrics | None = None
        self._http: _QuietServer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._handler_worker = handler_worker()
        self._http_address: tuple[str, int] | None = None

    @property
    def mqtt_address(self) -> tuple[str, int] | None:
        """Where devices connect over plain MQTT; None when that listener is off (or not this process's)."""
        if self.config.broker == "nats":
            return None  # devices connect to the cluster's nodes
        if self.config.external_broker is not None:
            return self.config.external_broker
        if self.config.mqtt_port is None:
            return None
        if self.mosquitto is not None:
            return self.mosquitto.listeners.host, self.mosquitto.listeners.port
        assert self.broker is not None, "the service is not started"
        return self.broker.address

    def _service_broker_address(self) -> tuple[str, int]:
        """Where the service's own MQTT connection goes."""
        if self.config.external_broker is not None:
            return self.config.external_broker
        if self.mosquitto is not None:
            return self.mosquitto.listeners.host, self.mosquitto.listeners.port
        assert self.broker is not None, "the service is not started"
        return self.broker.service_address

    @property
    def mqtts_address(self) -> tuple[str, int] | None:
        """The TLS listener's address, when the broker the service runs has one."""
        if self.mosquitto is not None:
            return self.mosquitto.listeners.tls_host, self.mosquitto.listeners.tls_port
        return self.broker.tls_address if self.broker is not None else None

    @property
    def http_address(self) -> tuple[str, int]:
        assert self._http_address is not None, "the service is not started"
        return self._http_address

    async def start(self) -> None:
        data_dir = self.config.data_dir
        make_data_dir(data_dir)
        # Job documents, device output, keys: what the service writes into the data dir is the
        # owner's alone, SQLite's -wal and -shm files included (they take the database's mode).
        with owner_only_files():
            self.admin_key, self.admin_key_generated = load_admin_key(data_dir, self._environ)
            store_location = str(self.config.store or data_dir / DATABASE_FILE)
            self.store = Store(store_location)
            if self._given_clock is None:
                # Workers sharing a PostgreSQL store share one clock; one process keeps its own.
                if is_postgres_url(store_location):
                    self.clock = shared_clock(self.store.service_clock, self.config.time_scale)
                else:
                    self.clock = resumed_clock(data_dir, self.config.time_scale)
            ca = CertificateAuthority(data_dir)
        engine = JobsEngine(self.store, self.clock, self.arns, self.config.limits)
        limits = self.config.limits
        renderer = Renderer(self.arns, aws_events=self.config.events, notify_cap=limits.notify_entries)
        registry = Registry(self.store, self.clock, self.arns)

        key = self.admin_key
        self.policies = Policies(self.store, self.clock, self.arns)
        self.certificates = Certificates(self.store, ca, self.clock, self.arns, self.policies.documents_for)
        username: str | None = key.access_key_id
        password: str | None = key.secret_access_key
        if self.config.broker == "mosquitto":
            with owner_only_files():
                await self._start_mosquitto(ca)
        elif self.config.broker == "nats":
            pass  # the cluster is already running; the transport below connects to it
        elif self.config.external_broker is not None:
            username, password = self.config.external_username, self.config.external_password
            if self.config.external_acl_dir is not None:
                # Not owner-only: the external broker, often another user, reads these files.
                export = AclExport(self.config.external_acl_dir, self.config.external_reload_command)
                await self._follow_registry(ca, export)
        else:
            await self._start_embedded(ca, self.certificates)
        self._warn_if_plain_listener_is_exposed()
        # Only the embedded broker tells the service who is connected.
        self.metrics = metrics = Metrics(
            self.store.jobs,
            connected_devices=self.broker.connected_devices if self.broker is not None else None,
        )
        engine.core.observe(metrics.observe)
        self.store.db.committed = metrics.commit_took
        self.pump = pump = RequestPump(
            DeviceApi(engine, renderer).handle,
            self._send,
            self.store.atomic,
            answered=metrics.device_request_answered,
        )
        pump.start()
        if self.config.broker == "nats":
            self.transport = self._nats_transport(pump)
        elif self.broker is not None and self.config.service_transport == "in-process":
            self.transport = InProcessTransport(self.broker, pump.put)
        else:
            broker_host, broker_port = self._service_broker_address()
            external_tls = self.config.external_tls
            self.transport = self.bridge = MqttBridge(
                broker_host,
                broker_port,
                username=username,
                password=password,
                deliver=pump.put,
                tls=external_tls.context(broker_port) if external_tls is not None else None,
                # The managed Mosquitto restarts to read a new revocation list: be back at once,
                # and let it keep the requests that arrive before (it persists sessions).
                persistent=self.mosquitto is not None,
                reconnect_delays=(0.1, 2) if self.mosquitto is not None else (1, 10),
                filters=EMBEDDED_REQUEST_FILTERS if self.broker is not None else REQUEST_FILTERS,
            )
        await self.transport.start()
        if self.mosquitto_sync is not None:
            bridge_ = self.bridge
            assert bridge_ is not None, "the managed Mosquitto is reached over MQTT"
            self.mosquitto_sync.service_connections = lambda: bridge_.subscriptions
            self.mosquitto_sync.service_back = lambda since: asyncio.wait_for(
                bridge_.resubscribed(since), BROKER_APPLY_WITHIN
            )

        transport = self.transport
        templates = Templates(self.store, self.clock, self.arns)
        self.schedules = Schedules(self.store, engine, templates, self.clock, fired=metrics.schedule_fired)

        publish = publisher_for_any_thread(asyncio.get_running_loop(), transport.publish)

        def announce(events: list[DomainEvent]) -> None:
            publish(renderer.render(events))

        self.scheduler = Scheduler(
            engine, self.clock, announce, self.schedules, leadership_for(store_location)
        )

        def finish_deletions() -> None:
            announce(engine.jobs.finish_deletions().events)

        finish_deletions()  # deletions a crash interrupted
        loop = asyncio.get_running_loop()

        def after_delete() -> None:
            # DeleteJob answers once the job is DELETION_IN_PROGRESS; dropping it follows.
            loop.call_soon_threadsafe(lambda: loop.run_in_executor(None, finish_deletions))

        scheduler = self.scheduler

        def announce_and_wake(events: list[DomainEvent]) -> None:
            announce(events)
            scheduler.wake()  # a control-plane change may have set a new deadline

        pump.after_batch = scheduler.wake
        control = ControlPlane(
            Services(
                engine,
                registry,
                templates,
                self.arns,
                announce_and_wake,
                after_delete,
                certificates=self.certificates,
                policies=self.policies,
            )
        )
        scheduler.start()
        embedded_broker = self.broker
        presence = embedded_broker.presence if embedded_broker is not None else None
        handlers = {
            **control.handlers(),
            **Connectivity(self.store.registry.thing_exists, presence, self.config.broker).handlers(),
        }
        settle: Settle | None = None
        if self.mosquitto_sync is not None:
            sync = self.mosquitto_sync
            settle = _settling(ACCESS_OPERATIONS, lambda: asyncio.wrap_future(sync.wake()))
        elif self.broker is not None:
            settle = _settling(ACCESS_OPERATIONS, self.broker.reauthenticate)
        # Served beside the API, each authenticating for itself.
        routes: list[BaseRoute] = []
        routes.append(
            MetricsEndpoint(metrics.exposition, self._handler_worker, self.config.metrics_token).route()
        )
        self.console = Console(
            access_key_id=key.access_key_id,
            secret_access_key=key.secret_access_key,
            handlers=handlers,
            engine=engine,
            schedules=self.schedules,
            arns=self.arns,
            worker=self._handler_worker,
            # Workers sharing a store do not see each other's commits: live pages also read every 2 s.
            refresh=2.0 if is_postgres_url(store_location) else None,
        )
        routes += self.console.routes()
        app = build_app(
            handlers,
            {key.access_key_id: key.secret_access_key},
            region=self.config.region,
            extra=SchedulesApi(self.schedules, scheduler.wake),
            access_log_level=logging.INFO if self.config.access_log else logging.DEBUG,
            health=Health({"broker": self._broker_problem, "store": self.store.ping}),
            worker=self._handler_worker,
            inline=SINGLE_RESOURCE_OPERATIONS,
            settle=settle,
            routes=routes,
            answered=metrics.control_plane_answered,
        )
        await self._start_http(app)
        warn_if_unreachable(self.config.host, self.http_address[1], self.config.metrics_token)

    def _nats_transport(self, pump: RequestPump) -> NatsTransport:
        store, key, certificates = self.store, self.admin_key, self.certificates
        assert store is not None and certificates is not None
        # The embedded broker's own rules decide who the cluster lets in.
        rules = CredentialAuthenticator(
            key.access_key_id,
            key.secret_access_key,
            store.registry.thing_exists,
            certificate_identity=certificates.identity_for_der,
            arn_prefix=self.arns.prefix,
        )
        authorizer = NatsDeviceAuth(key, rules, arn_prefix=self.arns.prefix)

        def claim(partition: int, sequence: int) -> bool:
            return store.requests.claim(partition, sequence)

        return NatsTransport(
            list(self.config.nats_urls),
            user=key.access_key_id,
            password=key.secret_access_key,
            deliver=pump.put,
            claim=claim,
            on_connect=authorizer.start,
        )

    def _broker_problem(self) -> str | None:
        """For ``/health``: what keeps devices' requests from reaching the service, if anything."""
        if self.broker is not None and not self.broker.running:
            return "the embedded broker is not running"
        transport = self.transport
        if transport is None or not transport.connected:
            where = f" to {transport.address}" if transport is not None else ""
            return f"the service's MQTT connection{where} is down"
        return None

    def _server_names(self) -> list[str]:
        """Names devices may use to reach the TLS listener, for its certificate."""
        names = [self.config.host, *self.config.tls_names, "localhost", "127.0.0.1", socket.gethostname()]
        return [name for name in dict.fromkeys(names) if name not in ("0.0.0.0", "::", "")]

    async def _start_embedded(self, ca: CertificateAuthority, certificates: Certificates) -> None:
        config, key = self.config, self.admin_key
        assert self.store is not None
        tls = None
        if config.mqtts_port is not None:
            with owner_only_files():
                certfile, keyfile = ca.write_server_certificate(config.data_dir, self._server_names())
            tls = TlsListener(config.mqtts_port, certfile, keyfile, ca.cert_path, config.host)
        self.broker = EmbeddedBroker(
            CredentialAuthenticator(
                key.access_key_id,
                key.secret_access_key,
                self.store.registry.thing_exists,
                SERVICE_CLIENT_ID,
                certificate_identity=certificates.identity_for_der,
                arn_prefix=self.arns.prefix,
            ),
            host=config.host,
            port=config.mqtt_port,
            tls=tls,
            limits=config.broker_limits,
            clock=self.clock.now,
        )
        await self.broker.start()

    def _warn_if_plain_listener_is_exposed(self) -> None:
        config = self.config
        if config.broker in ("external", "nats") or config.mqtt_port is None or is_loopback(config.host):
            return
        log.warning(
            "THE PLAIN MQTT LISTENER ON %s:%s IS OPEN BEYOND THIS MACHINE: there a client id alone "
            "logs a device in, with no password or certificate. Devices on a network should use the "
            "TLS listener: start with --mqtt-port off --mqtts-port 8883.",
            config.host,
            self.mqtt_address[1] if self.mqtt_address else config.mqtt_port,
        )

    async def _start_mosquitto(self, ca: CertificateAuthority) -> None:
        config, key = self.config, self.admin_key
        certfile, keyfile = ca.write_server_certificate(config.data_dir, self._server_names())
        tls_port = 8883 if config.mqtts_port is None else config.mqtts_port
        # With the plain listener off, it stays on loopback for the service alone.
        plain_host = config.host if config.mqtt_port is not None else "127.0.0.1"
        listeners = MosquittoListeners(
            host=plain_host,
            port=config.mqtt_port or free_port(plain_host),
            tls_host=config.host,
            tls_port=tls_port or free_port(config.host),
            cafile=ca.cert_path,
            certfile=certfile,
            keyfile=keyfile,
            plain_devices=config.mqtt_port is not None,
            max_packet_bytes=config.broker_limits.max_packet_bytes,
            max_connections=config.broker_limits.max_connections,
        )
        self.mosquitto = ManagedMosquitto(
            config.data_dir / "mosquitto",
            listeners,
            username=key.access_key_id,
            password=key.secret_access_key,
        )
        await self._follow_registry(ca, self.mosquitto)

    async def _follow_registry(self, ca: CertificateAuthority, target: AccessTarget) -> None:
        """Render the registry's access files for ``target`` now and after every change to it."""
        store, service_username = self.store, self.admin_key.access_key_id
        assert store is not None

        def render() -> AccessFiles:
            return access_files(store, self.arns, service_username)

        def crl_for(serials: frozenset[int]) -> bytes:
            return ca.revocation_list(sorted(serials))

        self.mosquitto_sync = MosquittoSync(render, crl_for, target)
        await self.mosquitto_sync.start()

    async def _start_http(self, app: Starlette) -> None:
        # IPPROTO_TCP, so asyncio turns Nagle off: kept-alive requests would otherwise wait for delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.config.host, self.config.http_port))
        except OSError:
            sock.close()
            raise
        self._http_address = sock.getsockname()[:2]
        self._http = _QuietServer(server_config(app))
        self._http_task = asyncio.create_task(self._http.serve(sockets=[sock]), name="http")
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
                raise RuntimeError("the HTTP control plane stopped while starting")
            await asyncio.sleep(0.01)

    def _send(self, messages: list[Message]) -> None:
        if self.transport is not None:
            self.transport.publish(messages)

    async def close(self) -> None:
        """Stop in reverse order of start; safe to call more than once."""
        if self.console is not None:
            self.console.close()  # live pages' streams end, or the server would wait for them
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            await asyncio.gather(self._http_task, return_exceptions=True)
            self._http = None
        self._handler_worker.shutdown(wait=True)  # no request is left to answer
        if self.scheduler is not None:
            await self.scheduler.close()
            self.scheduler = None
        if self.pump is not None:
            await self.pump.close()
            self.pump = None
        if self.transport is not None:
            await self.transport.close()
            self.transport = self.bridge = None
        if self.mosquitto_sync is not None:
            await self.mosquitto_sync.close()
            self.mosquitto_sync = None
        if self.broker is not None:
            await self.broker.close()
            self.broker = None
        if self.mosquitto is not None:
            await self.mosquitto.close()
            self.mosquitto = None
        if self.store is not None:
            self.store.close()
            self.store = None

    async def __aenter__(self) -> JobsService:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _settling(operations: frozenset[str], wake: Callable[[], Awaitable[Any]]) -> Settle:
    """Answer the ``operations`` only once the broker has the change.

    So when UpdateCertificate returns, a revoked certificate is already refused
    and the connections using it are closed.
    The change itself is committed first; if the broker is slow, the answer goes
    out after ``BROKER_APPLY_WITHIN`` seconds and the broker catches up. The wait
    is on the event loop, so it holds no other request back.
    """

    async def settle(operation: str) -> None:
        if operation not in operations:
            return
        try:
            # Shielded: the broker still takes the change after the answer has gone.
            await asyncio.wait_for(asyncio.shield(wake()), BROKER_APPLY_WITHIN)
        except TimeoutError:
            log.warning("the broker has not taken the change yet; it will")

    return settle
