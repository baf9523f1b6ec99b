"""The ``iotjobs`` command line.

Each subcommand lives in its own module and is imported only when it runs:
``iotjobs device`` loads the device agent and nothing of the server stack
(uvicorn, starlette, amqtt, botocore), so a device can install the package
without it (docs/device-sdk.md), and ``iotjobs --help`` loads no subcommand.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

__all__ = ["COMMANDS", "build_parser", "main"]

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    """A subcommand: its line in ``iotjobs --help``, and how to import it."""

    help: str
    load: Callable[[], tuple[AddArguments, Run]]


def _serve() -> tuple[AddArguments, Run]:
    from . import serve_cli

    return serve_cli.add_arguments, serve_cli.run_serve


def _cluster() -> tuple[AddArguments, Run]:
    from . import cluster_cli

    return cluster_cli.add_arguments, cluster_cli.run_cluster


def _device() -> tuple[AddArguments, Run]:
    from iot_jobs_bridge.device_sdk import cli

    return cli.add_arguments, cli.run_device


def _run() -> tuple[AddArguments, Run]:
    from . import quick_run

    return quick_run.add_arguments, quick_run.run_quick_job


def _schedule() -> tuple[AddArguments, Run]:
    from . import schedule_cli

    return schedule_cli.add_arguments, schedule_cli.run_schedule_command


def _job() -> tuple[AddArguments, Run]:
    from . import job_watch

    return job_watch.add_arguments, job_watch.run_job_command


def _simulate() -> tuple[AddArguments, Run]:
    from iot_jobs_bridge.simulator import cli

    return cli.add_arguments, cli.run_simulate


COMMANDS: dict[str, Command] = {
    "serve": Command("run the broker, the jobs service and the HTTP control plane", _serve),
    "device": Command("run a device agent that takes jobs for one thing and runs them", _device),
    "run": Command("run one command on one device now and print its output", _run),
    "schedule": Command("create and manage recurring (cron) schedules", _schedule),
    "job": Command("watch jobs from the terminal", _job),
    "simulate": Command("simulate a fleet of devices running a job, and report", _simulate),
    "cluster": Command("start a PostgreSQL store, a NATS cluster and N workers on this machine", _cluster),
}


class _Subcommand(argparse.ArgumentParser):
    """A subcommand's parser, which reports an option it does not know with its own usage.

    argparse hands such options up to the top-level parser, whose usage line
    (``iotjobs [-h] {serve,...}``) says nothing about the subcommand's options.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def version() -> str:
    """The installed package's version."""
    return metadata.version("iot-jobs-bridge")


def build_parser(command: str | None = None) -> tuple[argparse.ArgumentParser, Run | None]:
    """The ``iotjobs`` parser with ``command``'s options (the others are listed, not imported).

    Returns the parser and the function that runs ``command``.
    """
    parser = argparse.ArgumentParser(
        prog="iotjobs", description="An AWS IoT Jobs-compatible jobs service over MQTT"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Subcommand)
    run: Run | None = None
    for name, spec in COMMANDS.items():
        # A subcommand module may replace this description with a longer one.
        description = spec.help[0].upper() + spec.help[1:] + "."
        sub = commands.add_parser(name, help=spec.help, description=description)
        if name == command:
            add_arguments, run = _load(name, spec)
            add_arguments(sub)
    return parser, run


def _load(name: str, spec: Command) -> tuple[AddArguments, Run]:
    try:
        return spec.load()
    except ModuleNotFoundError as exc:
        # A device install (pip install --no-deps, docs/device-sdk.md) has only what `device` needs.
        sys.exit(
            f"iotjobs {name}: {exc.name or exc} is not installed: this command needs the full install "
            "(pip install iot-jobs-bridge, without --no-deps)"
        )


def _command(argv: Sequence[str]) -> str | None:
    # The top-level options take no value, so the first other word names the subcommand.
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, run = build_parser(_command(argv))
    args = parser.parse_args(argv)
    assert run is not None, "argparse accepted a subcommand that was not loaded"
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
