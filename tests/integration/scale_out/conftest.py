"""``iotjobs cluster up`` as the tests run it: a process, its JSON line, and a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pytest
from botocore.config import Config

from ..conftest import ACCESS_KEY_ID, SECRET

START_WITHIN = 120.0


class RunningCluster:
    def __init__(self, process: subprocess.Popen[str], where: dict, data_dir: Path) -> None:
        self.process = process
        self.where = where
        self.data_dir = data_dir
        self.killed_workers: set[int] = set()

    def kill_worker(self, index: int) -> None:
        """Kill -9 a worker: no chance to give up its lead or say so in its log."""
        os.kill(self.where["pids"]["workers"][index], signal.SIGKILL)
        self.killed_workers.add(index)

    def iot(self, worker: int):
        return boto3.client(
            "iot",
            endpoint_url=self.where["http"][worker],
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET,
            config=Config(retries={"max_attempts": 1}),
        )

    def node(self, index: int) -> tuple[str, int]:
        url = urlparse(self.where["mqtt"][index])
        assert url.hostname is not None and url.port is not None
        return url.hostname, url.port

    def worker_log(self, index: int) -> str:
        return (self.data_dir / "workers" / f"w{index + 1}" / "serve.log").read_text(errors="replace")

    def leader(self) -> int | None:
        """Which live worker runs the timers now, by the workers' logs (None: none yet)."""
        live = [index for index in range(len(self.where["http"])) if index not in self.killed_workers]
        logs = {index: self.worker_log(index) for index in live}
        leading = [
            i for i, log in logs.items() if log.rfind("now runs the timers") > log.rfind("no longer runs")
        ]
        assert len(leading) <= 1, f"workers leading at once: {leading}"
        return leading[0] if leading else None


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTJOBS_")}
    env.update(IOTJOBS_ACCESS_KEY_ID=ACCESS_KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET, **extra)
    return env


def run_cluster(data_dir: Path, workers: int = 2, brokers: int = 3, *options: str, **env: str):
    """Start ``cluster up``; yields the running cluster; stops it and checks all it started ended."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "iot_jobs_bridge.jobs_service.cli", "cluster", "up"),
            *("--workers", str(workers), "--brokers", str(brokers), "--data-dir", str(data_dir), "--json"),
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment(**env),
    )
    assert process.stdout is not None
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_WITHIN)
    rest = ""
    try:
        assert first and first[0].startswith("{"), f"cluster up printed {first!r}"
        running = RunningCluster(process, json.loads(first[0]), data_dir)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            rest = process.stdout.read()
            process.stdout.close()
    assert process.returncode == 0, rest
    pids = running.where["pids"]
    for pid in [*pids["workers"], *pids["brokers"], pids["store"]]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # everything it started has stopped (or was killed by the test)
