"""The jobs flow on three brokers, at several fleet sizes, in one run.

    python bench/broker_compare.py [--sizes 100,1000,10000] [--stock-sizes 100,1000]

Brokers: stock amqtt 0.12.1 (only let through `$` publishes, see
`_stock_amqtt.py`; the service connects with `--broker external`), our embedded broker
(inside `iotjobs serve`), and Mosquitto (`--broker external`; installed from the Debian
package if missing). For each, `iotjobs simulate --things N` runs one job to N
devices that all succeed, on a fresh broker and service.

Figures: executions per second (CreateJob to the last terminal execution),
the median time one execution takes (a device first hearing of its job to
learning it ended), CPU per execution of the broker process (for the embedded
broker: the whole server, broker and service), and the growth of that
process's peak RSS per connected device.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from _server import KEY_ID, SECRET, Server, running_server
from broker_ceiling import mosquitto


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def stock_amqtt() -> Iterator[tuple[int, int]]:
    port = _free_port()
    script = Path(__file__).with_name("_stock_amqtt.py")
    process = subprocess.Popen([sys.executable, str(script), str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def mosquitto_broker() -> Iterator[tuple[int, int]]:
    with mosquitto() as port:
        found = subprocess.run(["pgrep", "-f", "mosquitto -c"], capture_output=True, text=True).stdout.split()
        yield port, int(found[-1])


def external(name: str, broker: contextlib.AbstractContextManager, things: int, deadline: float):
    """Run the service with ``--broker external`` on ``broker`` (which yields port and pid) and measure."""
    with broker as (port, pid):
        url = f"mqtt://127.0.0.1:{port}"
        with running_server(extra_args=("--broker", "external", "--broker-url", url)) as server:
            return name, things, measure(url, server, pid, things, deadline)


def simulate(mqtt: str, http: str, things: int, deadline: float) -> dict:
    env = dict(os.environ, IOTJOBS_ACCESS_KEY_ID=KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
    command = [
        sys.executable,
        "-m",
        "iot_jobs_bridge.jobs_service.cli",
        "simulate",
        "--json",
        "--mqtt",
        mqtt,
        "--http",
        http,
    ]
    command += ["--things", str(things), "--deadline", str(deadline), "--prefix", f"cmp{things}"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):
        raise RuntimeError(result.stderr)
    report: dict = json.loads(result.stdout)
    return report


def measure(mqtt: str, server: Server, broker_pid: int, things: int, deadline: float) -> dict:
    watched = Server(server.mqtt_host, server.mqtt_port, server.http_url, broker_pid)
    cpu_before, rss_before = watched.cpu_seconds(), watched.peak_rss_mb()
    began = time.perf_counter()
    report = simulate(mqtt, server.http_url, things, deadline)
    executions = sum(report["statuses"].values())
    return {
        "executions/s": report["executions_per_second"],
        "median per execution (s)": report["notify_to_terminal"]["p50"],
        "CPU per execution (ms)": 1000 * (watched.cpu_seconds() - cpu_before) / max(1, executions),
        "RSS per device (KiB)": max(0.0, watched.peak_rss_mb() - rss_before) * 1024 / things,
        "lost/duplicated": f"{report['lost']}/{report['duplicated']}",
        "wall (s)": round(time.perf_counter() - began),
    }


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--stock-sizes", default="100,1000", help="stock amqtt is not tried beyond these")
    parser.add_argument("--deadline", type=float, default=900.0)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    stock_sizes = [int(n) for n in args.stock_sizes.split(",")]
    rows: list[tuple[str, int, dict]] = []
    for things in sizes:
        if things in stock_sizes:
            rows.append(external("stock amqtt", stock_amqtt(), things, args.deadline))
        with running_server() as server:
            url = f"mqtt://{server.mqtt_host}:{server.mqtt_port}"
            rows.append(("embedded", things, measure(url, server, server.pid, things, args.deadline)))
        rows.append(external("Mosquitto", mosquitto_broker(), things, args.deadline))
        for row in rows[-3:]:
            print(*row, file=sys.stderr, flush=True)
    columns = list(rows[0][2])
    print("| broker | devices | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for name, things, figures in rows:
        cells = " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in figures.values())
        print(f"| {name} | {things} | {cells} |")


if __name__ == "__main__":
    main()
