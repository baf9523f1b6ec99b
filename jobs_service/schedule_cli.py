"""``iotjobs schedule ...``: manage recurring schedules through the HTTP control plane."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import botocore.session

from .control_client import ControlClient, ServiceError
from .credentials import CREDENTIALS_HELP, client_admin_key
from .json_argument import json_argument

__all__ = ["add_arguments", "run_schedule_command"]


def add_arguments(schedule: argparse.ArgumentParser) -> None:
    """The actions of ``iotjobs schedule`` and their options."""
    schedule.description = f"Create and manage recurring (cron) schedules. {CREDENTIALS_HELP}"
    actions = schedule.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a schedule")
    create.add_argument("name")
    create.add_argument("--cron", required=True, help="5 fields, or 6 with seconds first")
    create.add_argument(
        "--timezone", default="UTC", help="IANA time zone, e.g. Europe/Berlin (default %(default)s)"
    )
    create.add_argument(
        "--targets", nargs="+", required=True, metavar="ARN", help="thing or thing group ARNs"
    )
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--document", help="the job document: inline JSON, @FILE, file://FILE or the path of a file"
    )
    source.add_argument("--template", help="a job template id or ARN")
    create.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="documentParameters for --template (repeatable; default: none)",
    )
    create.add_argument(
        "--misfire",
        choices=["skip", "run-once"],
        default="skip",
        help="fires missed during downtime: skipped, or the latest run once (default %(default)s)",
    )
    create.add_argument(
        "--overlap",
        choices=["skip", "allow"],
        default="skip",
        help="a fire while the previous run's job is still in progress: skipped, or run "
        "(default %(default)s)",
    )
    create.add_argument(
        "--settings",
        help="job settings (rollout, abort, timeout, retry) as inline JSON, @FILE, file://FILE or the "
        "path of a file (default: none)",
    )
    actions.add_parser("list", help="list schedules")
    for name, text in (
        ("describe", "show one schedule"),
        ("enable", "enable a schedule (from now on)"),
        ("disable", "disable a schedule"),
        ("delete", "delete a schedule and its history"),
        ("history", "each fire with its job and the job's status"),
    ):
        actions.add_parser(name, help=text).add_argument("name")
    for parser in actions.choices.values():
        parser.add_argument(
            "--endpoint", default="http://127.0.0.1:8080", help="control plane URL (default %(default)s)"
        )
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=Path("./data"),
            help="the server's data dir, where the admin key is stored (default ./data)",
        )
        parser.add_argument("--region", default="us-east-1", help="region to sign for (default %(default)s)")


def run_schedule_command(args: argparse.Namespace) -> int:
    try:
        key = client_admin_key(args.data_dir)
        client = ControlClient(
            args.endpoint,
            region=args.region,
            access_key_id=key.access_key_id,
            secret_access_key=key.secret_access_key,
        )
        result = _dispatch(args, client)
    except ValueError as exc:  # also when the endpoint cannot be reached (Unreachable)
        print(f"iotjobs schedule: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"iotjobs schedule: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def _dispatch(args: argparse.Namespace, client: ControlClient) -> Any:
    if args.action == "list":
        return client.call("GET", "/schedules")
    if args.action == "describe":
        return client.call("GET", f"/schedules/{args.name}")
    if args.action in ("enable", "disable"):
        return client.call("PATCH", f"/schedules/{args.name}", {"enabled": args.action == "enable"})
    if args.action == "delete":
        return client.call("DELETE", f"/schedules/{args.name}")
    if args.action == "history":
        return client.call("GET", f"/schedules/{args.name}/history")
    body: dict[str, Any] = {
        "cron": args.cron,
        "timezone": args.timezone,
        "targets": args.targets,
        "misfire": args.misfire,
        "overlap": args.overlap,
    }
    if args.document is not None:
        body["document"] = json_argument(args.document, "--document")
    else:
        body["jobTemplateArn"] = _template_arn(client, args.template)
    if args.param:
        body["documentParameters"] = dict(_pair(p) for p in args.param)
    if args.settings:
        body["settings"] = json.loads(json_argument(args.settings, "--settings"))
    return client.call("POST", f"/schedules/{args.name}", body)


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--param {text!r} must be KEY=VALUE")
    return key, value


def _template_arn(client: ControlClient, template: str) -> str:
    if template.startswith("arn:"):
        return template
    iot = botocore.session.get_session().create_client(
        "iot",
        endpoint_url=client.endpoint,
        region_name=client.region,
        aws_access_key_id=client.credentials.access_key,
        aws_secret_access_key=client.credentials.secret_key,
    )
    try:
        arn: str = iot.describe_job_template(jobTemplateId=template)["jobTemplateArn"]
    except iot.exceptions.ResourceNotFoundException as exc:
        raise ServiceError("ResourceNotFoundException", f"job template {template} does not exist") from exc
    return arn
