"""What releasing a paced job's executions costs the server, for a small job and a big one.

    python bench/release_cost.py [--sizes 2000 20000] [--rate 1000] [--seconds 30]

For each size N: a fresh `iotjobs serve`, N things in one group, then a job to
the group with `maximumPerMinute` R (no device is connected, so the cost is the
releases and their notifications alone). The server's CPU (user + system) over
the next S seconds, divided by the executions released in them, is the CPU per
release. Goal: the same for every job size (ratio of the biggest to the
smallest at most 1.5), since a release reads only the things it releases.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

from _server import running_server

CLIENTS = 8


def release_cost(things: int, rate: int, seconds: float) -> dict[str, float]:
    with running_server() as server:
        clients = [server.iot() for _ in range(CLIENTS)]
        group = clients[0].create_thing_group(thingGroupName="fleet")["thingGroupArn"]

        def register(i: int) -> None:
            iot = clients[i % CLIENTS]
            iot.create_thing(thingName=f"thing-{i:07}")
            iot.add_thing_to_thing_group(thingGroupName="fleet", thingName=f"thing-{i:07}")

        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(register, range(things)))
        iot = clients[0]
        iot.create_job(
            jobId="paced",
            targets=[group],
            document="{}",
            jobExecutionsRolloutConfig={"maximumPerMinute": rate},
        )
        released_before = iot.describe_job(jobId="paced")["job"]["jobProcessDetails"]["numberOfQueuedThings"]
        cpu_before = server.cpu_seconds()
        time.sleep(seconds)
        cpu = server.cpu_seconds() - cpu_before
        details = iot.describe_job(jobId="paced")["job"]["jobProcessDetails"]
        released = details["numberOfQueuedThings"] - released_before
        return {
            "things": things,
            "released": released,
            "server_cpu_s": round(cpu, 2),
            "cpu_ms_per_release": round(1000 * cpu / max(released, 1), 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--rate", type=int, default=1000, help="maximumPerMinute")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    runs = [release_cost(size, args.rate, args.seconds) for size in args.sizes]
    ratio = runs[-1]["cpu_ms_per_release"] / runs[0]["cpu_ms_per_release"]
    print(json.dumps({"rate_per_minute": args.rate, "runs": runs, "biggest_to_smallest": round(ratio, 2)}))


if __name__ == "__main__":
    main()
