"""What one job execution costs: CPU per execution of each process, and throughput.

    python bench/execution_cost.py [--things 1000] [--jobs 5] [--big 10000] [--profile DIR]

Three runs of `iotjobs simulate` (every device succeeds) against a fresh
`iotjobs serve` each:

1. ``--broker external`` on a plain Mosquitto the script starts: the service's
   CPU alone (Mosquitto is its own process, reported beside it);
2. the embedded broker: the whole server's CPU (broker + service);
3. the embedded broker, one job to ``--big`` devices: median notify -> terminal.

CPU is user + system time across the simulate run (registering the things
included) divided by executions. The simulator's CPU is that of all its
processes, so a reader can see which side was the limit. With ``--profile DIR``
py-spy (``pip install py-spy``) samples each server, every thread, during the
simulate run and leaves ``DIR/<run>.txt`` behind: collapsed stacks, one line per
stack with its sample count, for any flame-graph tool.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from _server import KEY_ID, SECRET, Server, mosquitto, running_server


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sampler(server: Server, profile: Path | None) -> subprocess.Popen[bytes] | None:
    if profile is None:
        return None
    command = ["py-spy", "record", "--pid", str(server.pid), "--format", "raw", "--rate", "200"]
    return subprocess.Popen([*command, "--output", str(profile)], stdout=subprocess.DEVNULL)


def _simulate(
    server: Server, things: int, jobs: int, prefix: str, profile: Path | None, mosquitto: int | None = None
) -> tuple[dict, float, float, float | None]:
    """Run the simulator; its report, its CPU, the server's CPU and Mosquitto's over the run."""
    env = dict(os.environ, IOTJOBS_ACCESS_KEY_ID=KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
    command = [sys.executable, "-m", "iot_jobs_bridge.jobs_service.cli", "simulate", "--json"]
    command += ["--mqtt", f"mqtt://{server.mqtt_host}:{server.mqtt_port}", "--http", server.http_url]
    command += ["--things", str(things), "--jobs", str(jobs), "--prefix", prefix, "--deadline", "1800"]
    server_before, children_before = server.cpu_seconds(), _children_cpu()
    broker_before = _process_cpu(mosquitto) if mosquitto else 0.0
    sampler = _sampler(server, profile)
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    # Read before the sampler is reaped, so its own CPU is not the simulator's.
    simulator_cpu = _children_cpu() - children_before
    server_cpu = server.cpu_seconds() - server_before
    broker_cpu = _process_cpu(mosquitto) - broker_before if mosquitto else None
    if sampler is not None:
        sampler.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        sampler.wait(60)
    if result.returncode not in (0, 1):
        raise RunFailed(f"simulate failed: {result.stderr.strip().splitlines()[-1:]}")
    report = json.loads(result.stdout)
    if not report["ok"]:
        raise RunFailed(f"simulate lost, duplicated or mismatched executions: {result.stdout}")
    return report, simulator_cpu, server_cpu, broker_cpu


class RunFailed(Exception):
    """One run did not finish cleanly; the others still report."""


def _ms(seconds: float, executions: int) -> str:
    return f"{1000 * seconds / executions:.2f} ms"


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--things", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--big", type=int, default=10_000, help="devices of the one-job run (0: skip it)")
    parser.add_argument(
        "--profile", type=Path, help="sample the servers with py-spy, stacks into this folder"
    )
    args = parser.parse_args()
    if args.profile:
        if shutil.which("py-spy") is None:
            raise SystemExit("--profile needs py-spy on PATH: pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)

    def profile_of(run: str) -> Path | None:
        return args.profile / f"{run}.txt" if args.profile else None

    figures: dict[str, float] = {}
    executions = args.things * args.jobs
    print(f"{args.things} devices x {args.jobs} jobs = {executions} executions per run", flush=True)

    def row(label: str, value: str) -> None:
        print(f"{label:<52}  {value}", flush=True)

    for broker in ("mosquitto", "embedded"):
        began = time.perf_counter()
        try:
            with contextlib.ExitStack() as stack:
                mosquitto_pid: int | None = None
                extra: tuple[str, ...] = ()
                if broker == "mosquitto":
                    port, mosquitto_pid = stack.enter_context(mosquitto())
                    extra = ("--broker", "external", "--broker-url", f"mqtt://127.0.0.1:{port}")
                server = stack.enter_context(running_server(extra_args=extra))
                report, simulator_cpu, server_cpu, broker_cpu = _simulate(
                    server, args.things, args.jobs, broker, profile_of(broker), mosquitto_pid
                )
        except RunFailed as failure:
            row(f"{broker}: run failed", str(failure))
            continue
        label = "service" if broker == "mosquitto" else "whole embedded server"
        row(f"{broker}: {label} CPU per execution", _ms(server_cpu, executions))
        if broker_cpu is not None:
            row(f"{broker}: Mosquitto CPU per execution", _ms(broker_cpu, executions))
        row(f"{broker}: simulator CPU per execution", _ms(simulator_cpu, executions))
        row(f"{broker}: executions per second", f"{report['executions_per_second']:.0f}")
        row(f"{broker}: wall time of the run", f"{time.perf_counter() - began:.1f} s")
        figures[f"{broker}_server_cpu_ms"] = 1000 * server_cpu / executions
        figures[f"{broker}_simulator_cpu_ms"] = 1000 * simulator_cpu / executions
        figures[f"{broker}_executions_per_second"] = report["executions_per_second"]

    if args.big:
        # The fleet and the service's own connections must fit under the broker's cap.
        room = ("--max-connections", str(args.big + 100))
        try:
            with running_server(extra_args=room) as server:
                big = _simulate(server, args.big, 1, "big", profile_of("big"))
                report, simulator_cpu, server_cpu, _ = big
        except RunFailed as failure:
            row(f"{args.big} devices, one job: run failed", str(failure))
        else:
            median = report["notify_to_terminal"]["p50"]
            row(f"{args.big} devices, one job: median notify -> terminal", f"{median} s")
            rate = f"{report['executions_per_second']:.0f}"
            row(f"{args.big} devices, one job: executions per second", rate)
            row(f"{args.big} devices, one job: server CPU per execution", _ms(server_cpu, args.big))
            row(f"{args.big} devices, one job: simulator CPU per execution", _ms(simulator_cpu, args.big))
            figures["big_notify_to_terminal_p50"] = median

    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
