"""The jobs flow against the raw broker's round-trip ceiling, in one run.

    python bench/broker_ceiling.py [--devices 200] [--rounds 5] [--no-mosquitto]

1. Raw ceiling: DEVICES clients and one "service" client on the broker, with
   no jobs logic at all. One execution-equivalent is what a job execution costs
   in messages: the service pushes one notification, then the device makes
   three request/reply round trips (describe, start, finish), all QoS 1:
   seven messages. Every device does ROUNDS of them, all devices at once.
2. End to end: `iotjobs simulate --things DEVICES --jobs ROUNDS` (every device
   succeeds): ROUNDS jobs to all of them at once, each device running them in
   turn; executions per second from the first CreateJob to the last terminal
   execution.

Both on the embedded broker (inside `iotjobs serve`) and on Mosquitto (the
service started with `--broker external`), which the script installs from the Debian
package if missing. Each is measured on a fresh broker.
Prints a table and the ratio end-to-end ÷ ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import time

from _server import KEY_ID, SECRET, mosquitto, running_server

from iot_jobs_bridge.device_sdk import mqtt

ROUND_TRIPS = 3  # describe, start, finish


async def _devices(host: str, port: int, numbers: range, rounds: int, credentials: dict, ready, go) -> None:
    inboxes = {n: asyncio.Queue() for n in numbers}
    clients = []
    for n in numbers:
        inbox = inboxes[n]
        client = await mqtt.connect(
            host,
            port,
            client_id=f"bench-dev-{n}",
            on_message=lambda _t, p, q=inbox: q.put_nowait(p),
            **credentials,
        )
        await client.subscribe([(f"bench/{n}/in", 1)])
        clients.append(client)
    ready.set()
    await asyncio.to_thread(go.wait)

    async def device(n: int, client: mqtt.MqttConnection) -> None:
        inbox = inboxes[n]
        for r in range(rounds):
            client.publish(f"bench/{n}/req", f"{r}:notify".encode(), qos=1)  # asks for the push
            await inbox.get()
            for step in range(ROUND_TRIPS):
                client.publish(f"bench/{n}/req", f"{r}:{step}".encode(), qos=1)
                await inbox.get()

    await asyncio.gather(*(device(n, c) for n, c in zip(numbers, clients, strict=True)))
    for client in clients:
        await client.disconnect()


def _device_process(host: str, port: int, numbers: range, rounds: int, credentials: dict, ready, go) -> None:
    asyncio.run(_devices(host, port, numbers, rounds, credentials, ready, go))


async def raw_ceiling(host: str, port: int, devices: int, rounds: int, auth: bool) -> float:
    """Execution-equivalents per second through the broker alone.

    The echo service answers every request on the device's topic, without
    waiting for one PUBACK before the next reply. Devices and service use the
    project's lean MQTT client (the simulator's), devices in one process per
    CPU, as the simulator's are.
    """
    credentials = {"username": KEY_ID, "password": SECRET} if auth else {}
    context = multiprocessing.get_context("spawn")
    workers = os.cpu_count() or 1
    service: mqtt.MqttConnection | None = None

    def echo(topic: str, payload: bytes) -> None:
        assert service is not None
        service.publish(f"bench/{topic.split('/')[1]}/in", payload, qos=1)

    service = await mqtt.connect(host, port, client_id="bench-echo-service", on_message=echo, **credentials)
    await service.subscribe([("bench/+/req", 1)])
    go = context.Event()
    processes, readies = [], []
    for w in range(workers):
        ready = context.Event()
        numbers = range(w, devices, workers)
        process = context.Process(
            target=_device_process,
            args=(host, port, numbers, rounds, credentials, ready, go),
            daemon=True,
        )
        process.start()
        processes.append(process)
        readies.append(ready)
    for ready in readies:
        await asyncio.to_thread(ready.wait)
    began = time.perf_counter()
    go.set()
    for process in processes:
        await asyncio.to_thread(process.join)
    elapsed = time.perf_counter() - began
    await service.disconnect()
    return devices * rounds / elapsed


def end_to_end(mqtt: str, http: str, devices: int, rounds: int) -> float:
    env = dict(os.environ, IOTJOBS_ACCESS_KEY_ID=KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
    command = [
        sys.executable,
        "-m",
        "iot_jobs_bridge.jobs_service.cli",
        "simulate",
        "--mqtt",
        mqtt,
        "--http",
        http,
    ]
    command += ["--things", str(devices), "--jobs", str(rounds), "--json", "--prefix", f"e2e{devices}"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"simulate failed: {result.stderr}")
    report = json.loads(result.stdout)
    if not report["ok"]:
        raise RuntimeError(f"simulate lost or duplicated executions: {result.stdout}")
    rate: float = report["executions_per_second"]
    return rate


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-mosquitto", action="store_true")
    args = parser.parse_args()
    rows = []
    with running_server() as server:
        host, port = server.mqtt_host, server.mqtt_port
        ceiling = asyncio.run(raw_ceiling(host, port, args.devices, args.rounds, True))
        flow = end_to_end(f"mqtt://{host}:{port}", server.http_url, args.devices, args.rounds)
        rows.append(("embedded (amqtt)", ceiling, flow))
    if not args.no_mosquitto:
        with mosquitto() as (port, _):
            ceiling = asyncio.run(raw_ceiling("127.0.0.1", port, args.devices, args.rounds, False))
        with mosquitto() as (port, _):
            url = f"mqtt://127.0.0.1:{port}"
            with running_server(extra_args=("--broker", "external", "--broker-url", url)) as server:
                flow = end_to_end(url, server.http_url, args.devices, args.rounds)
        rows.append(("Mosquitto", ceiling, flow))
    print(f"{args.devices} devices; ceiling: {args.rounds} execution-equivalents each (7 QoS 1 messages)")
    print("| broker | raw ceiling (executions/s) | jobs flow (executions/s) | jobs flow ÷ ceiling |")
    print("|---|---|---|---|")
    for name, ceiling, flow in rows:
        if flow is None:
            print(f"| {name} | {ceiling:.0f} | not measured | |")
        else:
            print(f"| {name} | {ceiling:.0f} | {flow:.0f} | {flow / ceiling:.2f} |")


if __name__ == "__main__":
    main()
