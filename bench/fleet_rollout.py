"""A job to a whole simulated fleet on the embedded broker: memory, connect time, completion.

    python bench/fleet_rollout.py [--things 10000] [--workers 2]

Starts `iotjobs serve`, runs `iotjobs simulate --things N` (every device
succeeds) against it, and reports the server's peak RSS, its CPU time, the
time to connect the fleet and the time from CreateJob to the last terminal
execution, with the simulator's check that none was lost or run twice.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _server import KEY_ID, SECRET, running_server


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--things", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=0, help="simulator processes (default: one per CPU)")
    parser.add_argument("--deadline", type=float, default=1800.0)
    args = parser.parse_args()
    env = dict(os.environ, IOTJOBS_ACCESS_KEY_ID=KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
    with running_server() as server:
        idle_rss = server.peak_rss_mb()
        began = time.perf_counter()
        command = [sys.executable, "-m", "iot_jobs_bridge.jobs_service.cli", "simulate", "--json"]
        command += ["--mqtt", f"mqtt://{server.mqtt_host}:{server.mqtt_port}", "--http", server.http_url]
        command += [
            "--things",
            str(args.things),
            "--workers",
            str(args.workers),
            "--deadline",
            str(args.deadline),
        ]
        command += ["--prefix", "fleet"]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - began
        peak_rss, cpu = server.peak_rss_mb(), server.cpu_seconds()
    if result.returncode not in (0, 1):
        raise SystemExit(f"simulate failed: {result.stderr}")
    report = json.loads(result.stdout)
    latency = report["notify_to_start"]
    rows = [
        ("things", report["things"]),
        (
            "connect the fleet",
            f"{report['connect_seconds']:.1f} s ({report['connections_per_second']:.0f}/s)",
        ),
        ("CreateJob → last terminal execution", f"{report['seconds']:.1f} s"),
        ("executions per second", f"{report['executions_per_second']:.0f}"),
        ("notify → start p50 / p99", f"{latency['p50']} s / {latency['p99']} s"),
        (
            "lost / duplicated / mismatched",
            f"{report['lost']} / {report['duplicated']} / {report['mismatched']}",
        ),
        ("server peak RSS", f"{peak_rss:.0f} MiB (idle {idle_rss:.0f} MiB)"),
        ("server RSS per device", f"{(peak_rss - idle_rss) * 1024 / report['things']:.1f} KiB"),
        ("server CPU time", f"{cpu:.0f} s (whole run, registration included)"),
        ("whole run", f"{wall:.0f} s"),
    ]
    print("| | |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
