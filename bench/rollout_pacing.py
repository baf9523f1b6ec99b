"""Rollout pacing and timeout lateness, measured against a real `iotjobs serve`.

    python bench/rollout_pacing.py [--timeouts 20]

1. Pacing: a job with `maximumPerMinute` R to N things, on `IOTJOBS_TIME_SCALE`
   S. Each release is seen as the notify-next its thing receives; the achieved
   rate is (releases - 1) per elapsed service minute between the first and the
   last release, reported as a ratio to R (goal: within 5%).
2. Timeout lateness at scale 1: executions with a one-minute in-progress
   timeout are started and left alone; lateness is when TIMED_OUT was
   recorded (`lastUpdatedAt`) minus the deadline (`startedAt` + 60 s), and
   when a monitor received the timed_out event minus the deadline
   (goal: under one second).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

from _server import running_server


def pacing(things: int, rate: int, scale: float) -> dict[str, float]:
    with running_server(time_scale=scale) as server:
        iot = server.iot()
        for i in range(things):
            iot.create_thing(thingName=f"pace-{i:04}")
        group = iot.create_thing_group(thingGroupName="pace")["thingGroupArn"]
        for i in range(things):
            iot.add_thing_to_thing_group(thingGroupName="pace", thingName=f"pace-{i:04}")
        releases: list[float] = []
        done = threading.Event()
        lock = threading.Lock()

        def seen(topic: str, payload: bytes, at: float) -> None:
            if json.loads(payload).get("execution"):
                with lock:
                    releases.append(at)
                    if len(releases) == things:
                        done.set()

        monitor = server.monitor("$aws/things/+/jobs/notify-next", seen)
        iot.create_job(
            jobId="paced",
            document="{}",
            targets=[group],
            jobExecutionsRolloutConfig={"maximumPerMinute": rate},
        )
        expected_seconds = things / rate * 60 / scale
        done.wait(expected_seconds * 3 + 30)
        monitor.loop_stop()
        releases.sort()
        elapsed_minutes = (releases[-1] - releases[0]) * scale / 60
        achieved = (len(releases) - 1) / elapsed_minutes
        return {
            "things": things,
            "released": len(releases),
            "configured_per_minute": rate,
            "achieved_per_minute": round(achieved, 2),
            "ratio": round(achieved / rate, 4),
            "time_scale": scale,
        }


def timeout_lateness(count: int) -> dict[str, float]:
    with running_server(time_scale=1.0) as server:
        iot = server.iot()
        events: dict[str, float] = {}
        lock = threading.Lock()

        def seen(topic: str, payload: bytes, at: float) -> None:
            body = json.loads(payload)
            with lock:
                events[body["thingArn"].rsplit("/", 1)[1]] = at

        monitor = server.monitor("$aws/events/jobExecution/+/timed_out", seen)
        names = [f"late-{i:03}" for i in range(count)]
        arns = [iot.create_thing(thingName=name)["thingArn"] for name in names]
        iot.create_job(
            jobId="timeouts", document="{}", targets=arns, timeoutConfig={"inProgressTimeoutInMinutes": 1}
        )
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        devices = []
        for name in names:  # start them spread over a few seconds
            device = paho.Client(CallbackAPIVersion.VERSION2, client_id=name)
            device.connect(server.mqtt_host, server.mqtt_port)
            device.loop_start()
            device.publish(f"$aws/things/{name}/jobs/start-next", "{}", qos=1).wait_for_publish(10)
            devices.append(device)
            time.sleep(0.2)
        deadline = time.time() + 90
        while len(events) < count and time.time() < deadline:
            time.sleep(0.5)
        recorded, observed = [], []
        for name in names:
            execution = iot.describe_job_execution(jobId="timeouts", thingName=name)["execution"]
            due = execution["startedAt"].timestamp() + 60
            recorded.append(execution["lastUpdatedAt"].timestamp() - due)
            if name in events:
                observed.append(events[name] - due)
        for device in devices:
            device.loop_stop()
        monitor.loop_stop()
        return {
            "executions": count,
            "timed_out_events": len(observed),
            "recorded_lateness_median_s": round(statistics.median(recorded), 3),
            "recorded_lateness_max_s": round(max(recorded), 3),
            "observed_lateness_median_s": round(statistics.median(observed), 3),
            "observed_lateness_max_s": round(max(observed), 3),
        }


# (things, configured rate per minute, time scale): two service minutes each.
PACING_CASES = ((240, 120, 20.0), (1200, 600, 20.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeouts", type=int, default=20, help="executions left to time out at scale 1")
    args = parser.parse_args()
    print(
        json.dumps(
            {
                "pacing": [pacing(*case) for case in PACING_CASES],
                "timeout_lateness": timeout_lateness(args.timeouts),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
