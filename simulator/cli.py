"""``iotjobs simulate``: put a virtual fleet on the broker, run a job to it, report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from iot_jobs_bridge.jobs_service.credentials import CREDENTIALS_HELP, client_admin_key
from iot_jobs_bridge.jobs_service.json_argument import json_argument

from .control_plane import ControlPlaneError
from .profiles import PROFILES, Behaviour, parse_mix
from .run import Progress, SimulationConfig, SimulationError, simulate

__all__ = ["add_arguments", "run_simulate"]


def add_arguments(sim: argparse.ArgumentParser) -> None:
    """The options of ``iotjobs simulate``."""
    kinds = "; ".join(f"{p.name}: {p.description}" for p in PROFILES.values())
    sim.description = (
        f"Registers N things, connects N virtual devices, runs a job to them and reports. {CREDENTIALS_HELP}"
    )
    sim.epilog = f"Profiles: {kinds}."
    sim.add_argument(
        "--mqtt",
        default="mqtt://127.0.0.1:1883",
        help="broker URL, mqtt://HOST:PORT, or a cluster's nodes comma-separated: each device starts at one "
        "and moves to the next when it is lost (default %(default)s)",
    )
    sim.add_argument(
        "--http",
        default="http://127.0.0.1:8080",
        help="control plane URL, http://HOST:PORT (default %(default)s)",
    )
    sim.add_argument("--things", type=int, required=True, help="how many virtual devices")
    sim.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./data"),
        help="the server's data dir, where the admin key is stored (default ./data)",
    )
    sim.add_argument(
        "--group", default="simulated-fleet", help="thing group the job targets (default %(default)s)"
    )
    sim.add_argument(
        "--prefix",
        default="sim",
        help="thing names are PREFIX-00000, PREFIX-00001, ... (default %(default)s)",
    )
    sim.add_argument(
        "--profile",
        default="succeed=100",
        help="shares in percent, e.g. succeed=80,fail=5,reject=5,timeout=5,reboot=5 (default %(default)s)",
    )
    sim.add_argument(
        "--connect-rate", type=float, help="connections per second (default: as fast as possible)"
    )
    sim.add_argument("--workers", type=int, default=0, help="device processes (default 0: one per CPU)")
    sim.add_argument(
        "--no-job", action="store_true", help="do not create a job; run the jobs an operator creates"
    )
    sim.add_argument("--job-id", help="id of the job to create (default: PREFIX-job-<millis>)")
    sim.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="jobs to create at once; each device runs them in turn (default %(default)s)",
    )
    sim.add_argument(
        "--document",
        help="the job document: inline JSON, @FILE, file://FILE or the path of a file "
        '(default: {"operation": "simulate"})',
    )
    sim.add_argument(
        "--timeout-minutes",
        type=int,
        default=1,
        help="in-progress timeout when timeout devices take part (default %(default)s)",
    )
    sim.add_argument(
        "--slow-median",
        type=float,
        default=2.0,
        help="median seconds of work of slow devices (default %(default)g)",
    )
    sim.add_argument(
        "--offline-for",
        type=float,
        default=3.0,
        help="seconds offline/disconnect/reboot last (default %(default)g)",
    )
    sim.add_argument(
        "--deadline", type=float, default=600.0, help="give up after this many seconds (default %(default)g)"
    )
    sim.add_argument(
        "--seed", type=int, default=0, help="seed for profile assignment and timings (default %(default)s)"
    )
    sim.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")


def run_simulate(args: argparse.Namespace) -> int:
    """Run the simulation; 0 when every thing ended as its profile predicts, 1 otherwise, 2 on bad input."""
    try:
        document = {"operation": "simulate"}
        if args.document is not None:
            document = json.loads(json_argument(args.document, "--document"))
        if not isinstance(document, dict):
            raise ValueError("--document must be a JSON object")
        key = client_admin_key(args.data_dir)
        config = SimulationConfig(
            mqtt=args.mqtt,
            http=args.http,
            things=args.things,
            access_key_id=key.access_key_id,
            secret_access_key=key.secret_access_key,
            profiles=parse_mix(args.profile),
            group=args.group,
            prefix=args.prefix,
            connect_rate=args.connect_rate,
            workers=args.workers,
            create_job=not args.no_job,
            job_id=args.job_id,
            jobs=args.jobs,
            document=document,
            timeout_minutes=args.timeout_minutes,
            deadline=args.deadline,
            behaviour=Behaviour(slow_median=args.slow_median, offline_for=args.offline_for),
            seed=args.seed,
        )
        show = _progress_bar if sys.stderr.isatty() and not args.json else None
        report = simulate(config, show)
    except (ValueError, OSError, SimulationError, ControlPlaneError) as exc:
        print(f"iotjobs simulate: {exc}", file=sys.stderr)
        return 2
    if show is not None:
        print(file=sys.stderr)
    print(report.to_json() if args.json else report.to_text())
    return 0 if report.ok else 1


def _progress_bar(progress: Progress) -> None:
    width = 30
    filled = int(width * progress.done / progress.total) if progress.total else width
    rate = progress.done / progress.elapsed if progress.elapsed > 0 else 0.0
    bar = "#" * filled + "." * (width - filled)
    counts = f"{progress.done}/{progress.total}"
    line = f"\r{progress.phase:<10} [{bar}] {counts}  {rate:,.0f}/s  {progress.elapsed:5.1f} s"
    print(line, end="", file=sys.stderr, flush=True)
