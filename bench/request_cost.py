"""What the job logic costs per execution, with no broker and no HTTP in the way.

    python bench/request_cost.py [--things 1000] [--jobs 5] [--profile FILE]

The service's own parts, on a real SQLite file (synchronous=FULL): the engine,
the store, the device API and the request pump, fed the requests a fleet that
succeeds sends (get pending, start-next, update SUCCEEDED) in batches of the
pump's size, as they arrive under load. It prints the CPU per execution of
registering the fleet, of creating the jobs and of the device requests, so a
change to the job logic can be judged apart from the transports around it.
With ``--profile FILE`` the device requests run under cProfile and FILE gets
its statistics (``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import tempfile
import time
from pathlib import Path

from iot_jobs_bridge.jobs_service.arns import Arns
from iot_jobs_bridge.jobs_service.clock import SystemClock
from iot_jobs_bridge.jobs_service.device_plane.api import DeviceApi
from iot_jobs_bridge.jobs_service.device_plane.render import Renderer
from iot_jobs_bridge.jobs_service.device_plane.request_pump import MAX_BATCH, RequestPump
from iot_jobs_bridge.jobs_service.engine import JobsEngine
from iot_jobs_bridge.jobs_service.engine.jobs import NewJob
from iot_jobs_bridge.jobs_service.limits import DeviceLimits
from iot_jobs_bridge.jobs_service.registry import Registry
from iot_jobs_bridge.jobs_service.store import Store


def _batches(requests: list[tuple[str, bytes]]) -> list[list[tuple[str, bytes]]]:
    return [requests[n : n + MAX_BATCH] for n in range(0, len(requests), MAX_BATCH)]


def _request(thing: str, kind: str, body: dict) -> tuple[str, bytes]:
    return f"$aws/things/{thing}/jobs/{kind}", json.dumps(body).encode()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--things", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "jobs.sqlite3")
        arns, clock = Arns(), SystemClock()
        engine = JobsEngine(store, clock, arns, DeviceLimits())
        sent: list[int] = []
        pump = RequestPump(DeviceApi(engine, Renderer(arns)).handle, lambda _m: None, store.atomic)
        things = [f"bench-{n:05d}" for n in range(args.things)]
        executions = args.things * args.jobs

        Registry(store, clock, arns).create_group("fleet")
        began = time.process_time()
        for name in things:  # as the simulator registers its fleet
            engine.membership.create_thing(name)
            engine.membership.add_thing_to_group("fleet", name)
        registered = time.process_time()
        for job in range(args.jobs):
            fleet = [arns.thing_group("fleet")]
            engine.jobs.create_job(NewJob(job_id=f"job-{job}", targets=fleet, document='{"run": "bench"}'))
        created = time.process_time()

        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        requests_done = 0
        for job in range(args.jobs):
            for kind, body in (
                ("get", {"clientToken": "t"}),
                ("start-next", {"clientToken": "t"}),
                (f"job-{job}/update", {"status": "SUCCEEDED", "clientToken": "t"}),
            ):
                for batch in _batches([_request(name, kind, body) for name in things]):
                    sent.append(len(pump.answer(batch)))
                    requests_done += len(batch)
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        answered = time.process_time()
        ended = [engine.get_job(f"job-{job}").status.value for job in range(args.jobs)]
        store.close()

    print(f"{args.things} things x {args.jobs} jobs = {executions} executions, {requests_done} requests")
    print(f"register things      {1000 * (registered - began) / args.things:7.3f} ms CPU per thing")
    print(f"create jobs          {1000 * (created - registered) / executions:7.3f} ms CPU per execution")
    print(f"device requests      {1000 * (answered - created) / executions:7.3f} ms CPU per execution")
    print(f"messages sent        {sum(sent) / executions:7.1f} per execution")
    print(f"jobs at the end      {', '.join(sorted(set(ended)))}")


if __name__ == "__main__":
    main()
