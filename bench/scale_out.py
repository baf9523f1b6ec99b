"""Scale-out on one machine: executions/s and CPU per execution with 1, 2 and 4 workers.

    python bench/scale_out.py [--things 300] [--jobs 4] [--workers 1,2,4] [--brokers 3]

For each worker count, a fresh `iotjobs cluster up` (PostgreSQL, a NATS cluster
of --brokers nodes, N workers) and two `iotjobs simulate` runs against it, each
with its own fleet of --things devices: one job, then --jobs jobs. Every device
succeeds; devices spread over every node; the simulator talks to the first
worker's control plane. CPU is user + system time over a run, summed per role:
the workers, the NATS nodes, PostgreSQL (every process of it), the simulator.
The two runs tell apart what a device costs to connect (on NATS each QoS 1
subscription is a replicated JetStream consumer) from what an execution costs:
per execution = (second run - first run) / (things x (jobs - 1)). On a 2-core
machine every process shares the same two cores, so more workers cannot add
throughput here; the figures show what each role costs, and that the work
spreads over the workers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator

from _server import KEY_ID, SECRET


def _process_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (PostgreSQL's backends, under runuser and the postmaster)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _cpu(pids: list[int]) -> float:
    return sum(_process_cpu(pid) for pid in pids)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def cluster(workers: int, brokers: int) -> Iterator[dict]:
    env = dict(os.environ, IOTJOBS_ACCESS_KEY_ID=KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
    with tempfile.TemporaryDirectory(prefix="iotjobs-scale-") as folder:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "iot_jobs_bridge.jobs_service.cli",
                "cluster",
                "up",
                "--json",
                "--workers",
                str(workers),
                "--brokers",
                str(brokers),
                "--data-dir",
                f"{folder}/cluster",
                "--log-level",
                "WARNING",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # why it stopped, if it does
            text=True,
            env=env,
        )
        assert process.stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(180)
        try:
            if not line or not line[0].startswith("{"):
                process.wait(30)
                raise SystemExit(f"cluster up did not start: {line} {process.stdout.read()}")
            yield json.loads(line[0])
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(120)


def _simulate(where: dict, things: int, jobs: int, prefix: str) -> tuple[dict, dict[str, float], list[float]]:
    """One simulate run: its report, CPU seconds per role, and each worker's CPU seconds."""
    pids = where["pids"]
    roles = {"workers": pids["workers"], "nats": pids["brokers"], "postgres": _tree(pids["store"])}
    env = dict(os.environ, IOTJOBS_ACCESS_KEY_ID=KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
    command = [sys.executable, "-m", "iot_jobs_bridge.jobs_service.cli", "simulate", "--json"]
    command += ["--mqtt", ",".join(where["mqtt"]), "--http", where["http"][0], "--prefix", prefix]
    command += ["--things", str(things), "--jobs", str(jobs), "--deadline", "1200"]
    before = {role: _cpu(p) for role, p in roles.items()}
    per_worker_before = [_process_cpu(pid) for pid in pids["workers"]]
    simulator_before = _children_cpu()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    spent = {"simulator": _children_cpu() - simulator_before}
    roles["postgres"] = _tree(pids["store"])  # backends that came meanwhile
    spent |= {role: _cpu(p) - before.get(role, 0.0) for role, p in roles.items()}
    per_worker = [_process_cpu(pid) - b for pid, b in zip(pids["workers"], per_worker_before, strict=True)]
    if result.returncode not in (0, 1):
        raise SystemExit(f"simulate failed: {result.stderr.strip()[-2000:]}")
    report = json.loads(result.stdout)
    if not report["ok"]:
        raise SystemExit(f"simulate lost, duplicated or mismatched executions: {result.stdout}")
    return report, spent, per_worker


def run(workers: int, brokers: int, things: int, jobs: int) -> dict:
    with cluster(workers, brokers) as where:
        _, one, _ = _simulate(where, things, 1, "one")
        report, many, per_worker = _simulate(where, things, jobs, "many")
    extra = things * (jobs - 1)
    per_execution = {role: (many[role] - one[role]) / extra for role in one}
    per_device = {role: max(0.0, one[role] / things - per_execution[role]) for role in one}
    return {
        "workers": workers,
        "executions_per_second": report["executions_per_second"],
        "notify_to_terminal_p50": report["notify_to_terminal"]["p50"],
        "cpu_ms_per_execution": {role: round(1000 * value, 2) for role, value in per_execution.items()},
        "cpu_ms_per_device_connect": {role: round(1000 * value, 1) for role, value in per_device.items()},
        "worker_share": [round(cpu / max(sum(per_worker), 1e-9), 2) for cpu in per_worker],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--things", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--brokers", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.things} devices x {args.jobs} jobs on {args.brokers} NATS nodes", flush=True)
    for workers in (int(n) for n in args.workers.split(",")):
        figures = run(workers, args.brokers, args.things, args.jobs)
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
