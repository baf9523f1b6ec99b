"""``iotjobs run``: one command on one device, now, with its output and exit code.

A client of the control plane like any operator's script: it creates a
runCommand job (the AWS IoT Device Client format) for one thing, follows the
execution, prints the device's stdout and stderr when it ends, and exits with
the device's exit code. While it waits it says whether the device is
connected (GetThingConnectivityData, which the embedded broker's presence
answers), so a job queued for a device that is offline does not look stuck.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .credentials import CREDENTIALS_HELP, client_admin_key

__all__ = ["EXIT_REJECTED", "EXIT_TIMED_OUT", "add_arguments", "command_document", "run_quick_job"]

# How often (seconds) `run` asks whether the device is connected while it waits.
_PRESENCE_EVERY = 1.0
# Exit codes when the device did not run the command to an exit code of its own.
EXIT_TIMED_OUT = 124  # as timeout(1)
EXIT_REJECTED = 125
_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "REMOVED", "CANCELED"}


def add_arguments(run: argparse.ArgumentParser) -> None:
    """The options of ``iotjobs run``."""
    run.description = (
        "Creates a runCommand job for one thing, follows it, prints the device's stdout and "
        "stderr, and exits with the device's exit code (124 if it timed out, 125 if rejected). "
        f"{CREDENTIALS_HELP}"
    )
    run.add_argument("--thing", required=True, help="the thing that runs the command")
    run.add_argument(
        "--endpoint", default="http://127.0.0.1:8080", help="control plane URL (default %(default)s)"
    )
    run.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the result (default %(default)g)"
    )
    run.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./data"),
        help="the server's data dir, where the admin key is stored (default ./data)",
    )
    run.add_argument("--region", default="us-east-1", help="region to sign for (default %(default)s)")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]", help="what to run")


def command_document(argv: list[str]) -> dict[str, Any]:
    """The runCommand job document for ``argv`` (commas inside arguments escaped)."""
    command = ",".join(arg.replace(",", "\\,") for arg in argv)
    action = {"name": "run", "type": "runCommand", "input": {"command": command}}
    return {"version": "1.0", "includeStdOut": True, "steps": [{"action": action}]}


def run_quick_job(args: argparse.Namespace, say: Callable[[str], None] | None = None) -> int:
    """Run the job; returns the exit code for ``iotjobs run``."""
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print(
            "iotjobs run: give the command after --, e.g. iotjobs run --thing t1 -- uptime", file=sys.stderr
        )
        return 2
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        key = client_admin_key(args.data_dir)
    except ValueError as exc:
        print(f"iotjobs run: {exc}", file=sys.stderr)
        return 2
    iot = botocore.session.get_session().create_client(
        "iot",
        endpoint_url=args.endpoint,
        region_name=args.region,
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        config=Config(retries={"max_attempts": 3}),
    )
    job_id = _job_id(args.thing)
    try:
        thing_arn = iot.describe_thing(thingName=args.thing)["thingArn"]
        iot.create_job(
            jobId=job_id,
            targets=[thing_arn],
            document=json.dumps(command_document(argv)),
            description=f"iotjobs run on {args.thing}: {' '.join(argv)}"[:2028],
            timeoutConfig={"inProgressTimeoutInMinutes": max(1, math.ceil(args.timeout / 60))},
        )
        say(f"job {job_id} created for {args.thing}")
        record = _follow(iot, job_id, args.thing, args.timeout, say)
    except ClientError as exc:
        print(f"iotjobs run: {exc.response['Error'].get('Message') or exc}", file=sys.stderr)
        return 2
    except BotoCoreError as exc:
        print(f"iotjobs run: cannot reach {args.endpoint}: {exc}", file=sys.stderr)
        return 2
    if record is None:
        iot.cancel_job(jobId=job_id, force=True, comment="iotjobs run gave up waiting")
        print(f"iotjobs run: no result within {args.timeout:g}s; job {job_id} canceled", file=sys.stderr)
        return EXIT_TIMED_OUT
    return _report(record)


def _job_id(thing: str) -> str:
    safe = re.sub(r"[^a-zA-Z0-9_-]", "-", thing)[:40]
    return f"run-{safe}-{int(time.time() * 1000)}"


def _follow(
    iot: Any, job_id: str, thing: str, timeout: float, say: Callable[[str], None]
) -> dict[str, Any] | None:
    """Poll the execution until it ends (returns it) or ``timeout`` passes (returns ``None``)."""
    deadline = time.monotonic() + timeout
    last: tuple[str, str] | None = None
    presence = _Presence(iot, thing, timeout, say)
    while time.monotonic() < deadline:
        record: dict[str, Any] = iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
        details = record.get("statusDetails", {}).get("detailsMap", {})
        shown = (record["status"], json.dumps(details, sort_keys=True))
        # Asked again on every change, so "connected" comes before the status it led to.
        presence.check(now=shown != last)
        if shown != last:
            last = shown
            progress = " ".join(f"{k}={v}" for k, v in sorted(details.items()) if k in ("step", "progress"))
            say(f"{record['status'].lower()}{' ' + progress if progress else ''}")
        if record["status"] in _TERMINAL:
            return record
        time.sleep(0.25)
    return None


class _Presence:
    """Says whether the thing is connected when `run` starts waiting, and when that changes."""

    def __init__(self, iot: Any, thing: str, timeout: float, say: Callable[[str], None]) -> None:
        self._iot = iot
        self._thing = thing
        self._timeout = timeout
        self._say = say
        self._connected: bool | None = None
        self._next = 0.0
        self._unknown = False

    def check(self, *, now: bool = False) -> None:
        """Ask, at most every `_PRESENCE_EVERY` seconds unless ``now``; say what changed."""
        if self._unknown or (time.monotonic() < self._next and not now):
            return
        self._next = time.monotonic() + _PRESENCE_EVERY
        thing = self._thing
        try:
            state = self._iot.get_thing_connectivity_data(thingName=thing)
        except ClientError as exc:
            # Mosquitto and other brokers report no connections (or an older server lacks the call).
            self._unknown = True
            message = exc.response["Error"].get("Message") or str(exc)
            self._say(f"note: {message}; waiting up to {self._timeout:g}s for a result")
            return
        connected = bool(state.get("connected"))
        if connected == self._connected:
            return
        reason = state.get("disconnectReason")
        if self._connected is None and not connected:
            since = f" (it disconnected: {reason})" if reason else " (not since the server started)"
            self._say(f"{thing} is not connected{since}; the job waits for it, up to {self._timeout:g}s")
        elif self._connected is not None:
            self._say(f"{thing} connected" if connected else f"{thing} disconnected ({reason or 'UNKNOWN'})")
        self._connected = connected


def _report(record: dict[str, Any]) -> int:
    details = record.get("statusDetails", {}).get("detailsMap", {})
    if details.get("stdout"):
        sys.stdout.write(details["stdout"])
        sys.stdout.flush()
    if details.get("stderr"):
        sys.stderr.write(details["stderr"])
    status = record["status"]
    exit_code = details.get("exitCode")
    if status == "SUCCEEDED":
        return int(exit_code) if exit_code and exit_code.lstrip("-").isdigit() else 0
    reason = details.get("reason", "")
    print(f"iotjobs run: {status}{': ' + reason if reason else ''}", file=sys.stderr)
    if status == "FAILED" and exit_code and exit_code.isdigit() and int(exit_code) > 0:
        return int(exit_code)
    if status == "TIMED_OUT":
        return EXIT_TIMED_OUT
    if status == "REJECTED":
        return EXIT_REJECTED
    return 1
