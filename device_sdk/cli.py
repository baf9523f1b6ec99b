"""``iotjobs device``: run the job runner for one thing from the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path

from .async_client import AsyncJobsClient
from .connection import Endpoint, TlsOptions
from .runner import JobRunner

__all__ = ["add_arguments", "run_device"]

_log = logging.getLogger("iot_jobs_bridge.device_sdk.cli")


def add_arguments(device: argparse.ArgumentParser) -> None:
    """The options of ``iotjobs device``."""
    device.description = "Runs jobs for one thing: handlers from --handlers-dir, commands from PATH."
    device.epilog = (
        "Every handler and command gets the agent's environment plus IOTJOBS_THING_NAME, "
        "IOTJOBS_JOB_ID and IOTJOBS_EXECUTION_NUMBER."
    )
    device.add_argument("--thing", required=True, help="the thing name (also the MQTT client id)")
    device.add_argument(
        "--endpoint", required=True, type=_endpoint, help="mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS"
    )
    device.add_argument(
        "--handlers-dir",
        type=Path,
        help="directory of executable job handlers (default: none; then only runCommand actions run)",
    )
    device.add_argument("--no-run-command", action="store_true", help="reject runCommand actions")
    device.add_argument("--client-id", help="MQTT client id (default: the thing name)")
    device.add_argument("--username", help="MQTT username (default: none)")
    device.add_argument(
        "--password-env",
        metavar="VAR",
        help="name of the environment variable holding the MQTT password, kept off the command line "
        "(default: none, no password)",
    )
    device.add_argument(
        "--ca-file", type=Path, help="CA bundle to verify the broker (TLS; default: the system's)"
    )
    device.add_argument(
        "--cert-file", type=Path, help="client certificate, PEM (TLS; default: none, no client certificate)"
    )
    device.add_argument("--key-file", type=Path, help="client private key, PEM (TLS; default: none)")
    device.add_argument(
        "--alpn",
        action="append",
        default=[],
        help="ALPN protocol id to offer (repeatable; TLS; default: none, or x-amzn-mqtt-ca with a "
        "client certificate on port 443)",
    )
    device.add_argument(
        "--keepalive", type=int, default=60, help="MQTT keepalive in seconds (default %(default)s)"
    )
    device.add_argument(
        "--kill-grace",
        type=float,
        default=5.0,
        help="seconds between SIGTERM and SIGKILL on cancel (default %(default)g)",
    )
    device.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="lowest level logged (default %(default)s)",
    )


def _endpoint(text: str) -> Endpoint:
    try:
        return Endpoint.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def run_device(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM; returns the exit code."""
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.handlers_dir is not None and not args.handlers_dir.is_dir():
        print(f"iotjobs device: --handlers-dir {args.handlers_dir} is not a directory", flush=True)
        return 2
    password = None
    if args.password_env:
        password = os.environ.get(args.password_env)
        if password is None:
            print(f"iotjobs device: environment variable {args.password_env} is not set", flush=True)
            return 2
    tls = None
    if args.endpoint.tls or args.ca_file or args.cert_file or args.key_file or args.alpn:
        tls = TlsOptions(args.ca_file, args.cert_file, args.key_file, tuple(args.alpn))
        args.endpoint = Endpoint(args.endpoint.host, args.endpoint.port, tls=True)
    try:
        client = _client(args, tls, password)
    except ValueError as exc:
        print(f"iotjobs device: {exc}", flush=True)
        return 2
    asyncio.run(_run(client, args))
    return 0


def _client(args: argparse.Namespace, tls: TlsOptions | None, password: str | None) -> AsyncJobsClient:
    # The client needs a running loop only once started; building it here surfaces bad TLS files early.
    return AsyncJobsClient(
        args.thing,
        args.endpoint,
        client_id=args.client_id,
        username=args.username,
        password=password,
        tls=tls,
        keepalive=args.keepalive,
    )


async def _run(client: AsyncJobsClient, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = JobRunner(
        client,
        handlers_dir=args.handlers_dir,
        allow_run_command=not args.no_run_command,
        kill_grace=args.kill_grace,
    )
    _log.info("device %s: taking jobs from %s", args.thing, args.endpoint)
    async with client:
        work = asyncio.ensure_future(runner.run())
        await asyncio.wait([work, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
    _log.info("device %s: stopped", args.thing)
