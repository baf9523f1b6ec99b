"""``iotjobs serve``: the broker, the jobs service and the HTTP control plane in one process."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from iot_jobs_bridge.broker import BrokerLimits
from iot_jobs_bridge.broker.mosquitto import MosquittoError
from iot_jobs_bridge.device_sdk.connection import Endpoint, TlsOptions

from .app import JobsService, ServiceConfig
from .clock import time_scale_from_env
from .limits import DeviceLimits
from .logs import LOG_FORMATS, setup_logging

__all__ = ["add_arguments", "run_serve"]

_ENVIRONMENT = """\
environment:
  IOTJOBS_ACCESS_KEY_ID, IOTJOBS_SECRET_ACCESS_KEY
                        the admin key (both or neither); without them the key in
                        DATA_DIR/admin-credentials.json is used, generated on first start
  IOTJOBS_TIME_SCALE    N makes one configured minute last 60/N seconds, for tests and
                        simulations of rollout rates and timeouts (default 1)
  IOTJOBS_BROKER_CHANGE set for --broker-reload-command: reload or restart
  IOTJOBS_METRICS_TOKEN the token /metrics asks for, as --metrics-token (which wins); better
                        here than on the command line, where other users of the machine see it

The data dir is created readable by its owner only (0700), and so is every
file the service writes there (0600).
"""


def add_arguments(serve: argparse.ArgumentParser) -> None:
    """The options of ``iotjobs serve``."""
    serve.formatter_class = argparse.RawDescriptionHelpFormatter
    serve.epilog = _ENVIRONMENT
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    serve.add_argument(
        "--mqtt-port",
        type=_port_or_off,
        default=1883,
        metavar="PORT|off",
        help="plain MQTT port, where a device logs in by client id alone; 0 lets the OS pick, "
        "off turns it off (with --mqtts-port: devices only with certificates) (default %(default)s)",
    )
    serve.add_argument(
        "--http-port", type=int, default=8080, help="HTTP port; 0 lets the OS pick (default %(default)s)"
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./data"),
        help="where state is kept: the database, the admin key, the CA (default ./data)",
    )
    serve.add_argument(
        "--store",
        metavar="URL",
        help="the store: a postgresql://USER@HOST:PORT/DATABASE URL, or an SQLite file's path"
        " (default: jobs.sqlite3 in the data dir)",
    )
    serve.add_argument(
        "--region",
        default="us-east-1",
        help="region in ARNs and in the SigV4 scope clients sign for (default %(default)s)",
    )
    serve.add_argument("--account", default="123456789012", help="account in ARNs (default %(default)s)")
    serve.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="lowest level logged (default %(default)s)",
    )
    serve.add_argument(
        "--log-format",
        default="text",
        choices=LOG_FORMATS,
        help="text, or json: one object per line with timestamp, level, logger, message "
        "and the event's fields (job_id, thing, reason, ...) (default %(default)s)",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log every control-plane request at INFO (logger iotjobs.access); otherwise at DEBUG "
        "(default off)",
    )
    serve.add_argument(
        "--metrics-token",
        metavar="TOKEN",
        help="scrapes of /metrics must send Authorization: Bearer TOKEN; without a token, /metrics "
        "answers clients on this machine only (default: IOTJOBS_METRICS_TOKEN, else none)",
    )
    serve.add_argument(
        "--device-rate",
        type=float,
        default=DeviceLimits.requests_per_second,
        help="device requests per second per thing before RequestThrottled (default %(default)g)",
    )
    serve.add_argument(
        "--device-burst",
        type=int,
        default=DeviceLimits.request_burst,
        help="requests a thing may send at once above its rate (default %(default)s)",
    )
    serve.add_argument("--no-events", action="store_true", help="do not publish $aws/events/... messages")
    serve.add_argument(
        "--broker",
        choices=["embedded", "mosquitto", "external", "nats"],
        default="embedded",
        help="embedded: in this process; mosquitto: a Mosquitto the service configures and runs, for "
        "MQTT 5; external: an MQTT broker you run, at --broker-url; nats: a NATS cluster shared by "
        "several workers on one PostgreSQL --store, at --broker-url nats://H1:P1,nats://H2:P2 "
        "(docs/scale-out.md) (default %(default)s)",
    )
    serve.add_argument(
        "--service-transport",
        choices=["in-process", "mqtt"],
        default="in-process",
        help="how the service reaches the embedded broker: in-process hands requests over directly; "
        "mqtt uses a loopback MQTT connection, as it always does with Mosquitto or an external broker "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--broker-url",
        metavar="URL",
        help="the external broker, mqtt[s]://HOST:PORT (mqtts: over TLS), or the NATS cluster's nodes, "
        "nats://HOST:PORT,... (default: none; needed with --broker external or nats)",
    )
    serve.add_argument(
        "--broker-ca-file",
        type=Path,
        help="CA bundle the external broker's certificate is checked against (default: the system's)",
    )
    serve.add_argument(
        "--broker-cert-file",
        type=Path,
        help="the service's client certificate there (default: none, no client certificate)",
    )
    serve.add_argument("--broker-key-file", type=Path, help="its private key (default: none)")
    serve.add_argument(
        "--broker-acl-dir",
        type=Path,
        help="write the external Mosquitto's device ACL and CRL here, kept in step with the registry "
        "(default: none, not written)",
    )
    serve.add_argument(
        "--broker-reload-command",
        metavar="CMD",
        help="run after those files change; IOTJOBS_BROKER_CHANGE=reload (SIGHUP will do) or restart "
        "(default: none)",
    )
    serve.add_argument(
        "--mqtts-port",
        type=int,
        nargs="?",
        const=8883,
        metavar="PORT",
        help="also listen for MQTT over TLS with client certificates, on PORT or 8883 (0: any free port; "
        "--broker mosquitto always does, on 8883 by default) (default: no TLS listener)",
    )
    serve.add_argument(
        "--tls-name",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name or address devices use to reach the TLS listener, for its certificate "
        "(repeatable; default: none besides --host, localhost, 127.0.0.1 and this machine's name, "
        "which are always in it)",
    )
    limits = BrokerLimits()
    serve.add_argument(
        "--max-packet-size",
        type=int,
        default=limits.max_packet_bytes,
        metavar="BYTES",
        help="largest MQTT packet a client may send; a larger one closes its connection "
        "(default %(default)s: AWS IoT's 128 KB payload on a 256-byte topic)",
    )
    serve.add_argument(
        "--connect-timeout",
        type=float,
        default=limits.connect_timeout,
        metavar="SECONDS",
        help="time a new connection has for its TLS handshake and CONNECT "
        "(default %(default)g; embedded broker)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=limits.max_connections,
        metavar="N",
        help="open MQTT connections at most; more are closed at once (default %(default)s)",
    )
    serve.add_argument(
        "--max-queued-bytes",
        type=int,
        default=limits.max_queued_bytes,
        metavar="BYTES",
        help="bytes waiting to be sent to all clients together; the client that would pass it is "
        "disconnected (default %(default)s; embedded broker)",
    )
    serve.add_argument(
        "--broker-username", help="the service's username on the external broker (default: none)"
    )
    serve.add_argument(
        "--broker-password-env",
        metavar="VAR",
        help="environment variable with the service's password there (default: none, no password)",
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; 2 on bad options or when a listener cannot start."""
    setup_logging(args.log_level, args.log_format)
    try:
        config = ServiceConfig(
            host=args.host,
            mqtt_port=args.mqtt_port,
            http_port=args.http_port,
            data_dir=args.data_dir,
            store=args.store,
            region=args.region,
            account=args.account,
            time_scale=time_scale_from_env(),
            events=not args.no_events,
            limits=DeviceLimits(requests_per_second=args.device_rate, request_burst=args.device_burst),
            mqtts_port=args.mqtts_port,
            tls_names=tuple(args.tls_name),
            broker_limits=_broker_limits(args),
            access_log=args.access_log,
            metrics_token=_metrics_token(args, os.environ),
            **_broker_fields(args),
        )
        asyncio.run(_serve(config))
    except (ValueError, OSError, MosquittoError) as exc:
        print(f"iotjobs: {exc}", file=sys.stderr)
        return 2
    return 0


async def _serve(config: ServiceConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with JobsService(config) as service:
        _keep_startup_out_of_collections()
        key = service.admin_key
        if key.source == "environment":
            print("admin credentials: from IOTJOBS_ACCESS_KEY_ID / IOTJOBS_SECRET_ACCESS_KEY", flush=True)
        else:
            made = "generated and stored in" if service.admin_key_generated else "stored in"
            print(f"admin credentials: {made} {key.source} (access key id {key.access_key_id})", flush=True)
        if service.mqtts_address is not None:
            tls_host, tls_port = service.mqtts_address
            print(f"mqtts listening on {tls_host}:{tls_port} (device certificates from the CA in ca.pem)")
        mqtt = "off" if service.mqtt_address is None else "{}:{}".format(*service.mqtt_address)
        http_host, http_port = service.http_address
        print(f"iotjobs ready mqtt={mqtt} http={http_host}:{http_port}", flush=True)
        await stop.wait()
        print("iotjobs stopping", flush=True)


#: Allocations between two collections of the youngest generation (CPython's default: 700).
GC_YOUNG_THRESHOLD = 10_000


def _keep_startup_out_of_collections() -> None:
    """Exempt what startup built from garbage collection, and collect less often.

    The service makes few reference cycles, yet with CPython's defaults the
    collector took 7% of its CPU under load: a young collection every 700
    allocations, and now and then a full one over every object startup made
    (the API models, the broker, the schemas), which live as long as the process.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


# What an HTTP header can carry as a bearer token: visible ASCII, no spaces.
_TOKEN = re.compile(r"[\x21-\x7e]+")


def _metrics_token(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """``--metrics-token``, else ``IOTJOBS_METRICS_TOKEN``, else None.

    ValueError for a token an HTTP header cannot carry.
    """
    token = args.metrics_token if args.metrics_token is not None else environ.get("IOTJOBS_METRICS_TOKEN")
    if token is not None and _TOKEN.fullmatch(token) is None:
        raise ValueError(
            "--metrics-token (or IOTJOBS_METRICS_TOKEN) must be printable ASCII without spaces, "
            "as an HTTP header carries it"
        )
    return token


def _port_or_off(value: str) -> int | None:
    if value == "off":
        return None
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither a port number nor off") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def _nats_fields(args: argparse.Namespace, tls_files: tuple[Path | None, ...]) -> dict[str, Any]:
    if args.broker_url is None:
        raise ValueError("--broker nats needs --broker-url nats://HOST:PORT[,nats://HOST:PORT...]")
    if any(f is not None for f in tls_files) or args.broker_acl_dir or args.mqtts_port is not None:
        raise ValueError("--broker-*-file, --broker-acl-dir and --mqtts-port are not for --broker nats")
    urls = tuple(url.strip() for url in args.broker_url.split(",") if url.strip())
    for url in urls:
        if not url.startswith(("nats://", "tls://")):
            raise ValueError(f"--broker-url for --broker nats lists nats://HOST:PORT URLs, not {url!r}")
    return {"broker": "nats", "nats_urls": urls}


def _broker_limits(args: argparse.Namespace) -> BrokerLimits:
    return BrokerLimits(
        max_packet_bytes=args.max_packet_size,
        connect_timeout=args.connect_timeout,
        max_connections=args.max_connections,
        max_queued_bytes=args.max_queued_bytes,
    )


def _broker_fields(args: argparse.Namespace) -> dict[str, Any]:
    """ServiceConfig fields for ``--broker``; ValueError for a bad URL or a missing password."""
    tls_files = (args.broker_ca_file, args.broker_cert_file, args.broker_key_file)
    if args.broker == "nats":
        return _nats_fields(args, tls_files)
    if args.broker != "external":
        if args.broker_url is not None or any(f is not None for f in tls_files) or args.broker_acl_dir:
            raise ValueError("--broker-url, --broker-acl-dir and --broker-*-file need --broker external")
        if args.broker == "embedded" and args.mqtt_port is None and args.mqtts_port is None:
            raise ValueError("--mqtt-port off leaves devices no listener: add --mqtts-port for the TLS one")
        return {"broker": args.broker, "service_transport": args.service_transport}
    if args.broker_url is None:
        raise ValueError("--broker external needs --broker-url mqtt://HOST:PORT or mqtts://HOST:PORT")
    if args.mqtts_port is not None:
        raise ValueError("--mqtts-port is for a broker the service runs; an external broker has its own")
    if args.mqtt_port is None:
        raise ValueError("--mqtt-port off is for a broker the service runs; an external broker has its own")
    endpoint = Endpoint.parse(args.broker_url)
    tls = None
    if endpoint.tls:
        tls = TlsOptions(*tls_files)
        tls.context(endpoint.port)  # a missing or unreadable file is reported now, not at connect
    elif any(f is not None for f in tls_files):
        raise ValueError("--broker-ca-file, --broker-cert-file and --broker-key-file need mqtts://")
    password = None
    if args.broker_password_env:
        password = os.environ.get(args.broker_password_env)
        if password is None:
            raise ValueError(f"environment variable {args.broker_password_env} is not set")
    return {
        "broker": "external",
        "external_broker": (endpoint.host, endpoint.port),
        "external_username": args.broker_username,
        "external_password": password,
        "external_tls": tls,
        "external_acl_dir": args.broker_acl_dir,
        "external_reload_command": args.broker_reload_command,
    }
