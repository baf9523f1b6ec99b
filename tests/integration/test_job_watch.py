"""`iotjobs job watch`: a job followed live through the real server while devices run it."""

import asyncio
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading

import pytest

from iot_jobs_bridge.device_sdk.testing import Fail, FakeDevice, Succeed

from .clients import Inbox
from .conftest import ACCESS_KEY_ID, SECRET
from .device_sdk.helpers import endpoint, make_thing

pytestmark = pytest.mark.integration

KEYS = {"jobId", "status", "counts", "rate_per_minute", "failures", "at", "final"}


def command(server, *args):
    return [sys.executable, "-m", "iot_jobs_bridge.jobs_service.cli", "job", "watch",
            "--endpoint", server.http_url, *args]  # fmt: skip


def environment():
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTJOBS_")}
    env.update(IOTJOBS_ACCESS_KEY_ID=ACCESS_KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
    return env


class Watch:
    """``iotjobs job watch`` as a subprocess whose stdout lines arrive in ``lines`` (parsed with --json)."""

    def __init__(self, server, *args):
        self.json = "--json" in args
        self.process = subprocess.Popen(
            command(server, *args),
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines = Inbox()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(json.loads(line) if self.json else line.rstrip("\n"))

    def wait_for(self, predicate=lambda line: True):
        return self.lines.wait_for(predicate, timeout=30)

    def finish(self, timeout=30):
        """The exit code and stderr, once the process ended and every line was read."""
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code, self.process.stderr.read()

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture
def watches():
    started = []
    yield lambda server, *args: started.append(Watch(server, *args)) or started[-1]
    for watch in started:
        watch.close()


def run_on_device(server, thing, step):
    """Connect ``thing`` as a fake device that ends its one job with ``step``; return once it reported."""

    async def scenario():
        async with FakeDevice(thing, endpoint(server), [step]) as device:
            await device.wait_for_reports(1, timeout=30)

    asyncio.run(scenario())


def done(line):
    return line["counts"]["SUCCEEDED"], line["counts"]["FAILED"]


def test_the_counts_move_as_devices_finish_and_a_completed_job_exits_0(server, iot, unique, watches):
    things = [f"{unique}-{n}" for n in range(3)]
    job_id = f"{unique}-job"
    iot.create_job(jobId=job_id, targets=[make_thing(iot, t) for t in things], document='{"operation": "x"}')
    watch = watches(server, job_id, "--json", "--interval", "0.1")
    first = watch.wait_for()
    assert (first["jobId"], first["status"], first["counts"]["QUEUED"]) == (job_id, "IN_PROGRESS", 3)
    assert first["rate_per_minute"] is None and first["failures"] == [] and first["final"] is False

    run_on_device(server, things[0], Succeed())
    watch.wait_for(lambda line: done(line) == (1, 0))
    run_on_device(server, things[1], Fail({"exitCode": "3", "stderr": "warming up\ndisk full"}))
    failed = watch.wait_for(lambda line: done(line) == (1, 1))
    assert [(f["thingName"], f["status"]) for f in failed["failures"]] == [(things[1], "FAILED")]
    assert failed["failures"][0]["statusDetails"]["exitCode"] == "3"
    run_on_device(server, things[2], Succeed())

    code, stderr = watch.finish()
    assert code == 0, stderr
    lines = watch.lines.items
    assert all(set(line) == KEYS for line in lines)
    assert [line["final"] for line in lines] == [False] * (len(lines) - 1) + [True]
    last = lines[-1]
    assert (last["status"], done(last), last["counts"]["QUEUED"]) == ("COMPLETED", (2, 1), 0)
    assert last["rate_per_minute"] > 0
    # Each line is a change, and the counts only ever move forward.
    moments = [done(line) for line in lines]
    assert moments == sorted(moments) and {(1, 0), (1, 1), (2, 1)} <= set(moments)
    assert len({json.dumps([line["status"], line["counts"], line["failures"]]) for line in lines}) == len(
        lines
    )


def test_a_canceled_job_ends_the_plain_lines_and_exits_1(server, iot, unique, watches):
    job_id = f"{unique}-job"
    iot.create_job(jobId=job_id, targets=[make_thing(iot, f"{unique}-idle")], document='{"operation": "x"}')
    watch = watches(server, job_id, "--interval", "0.1")  # a pipe, no --json: plain lines
    assert watch.wait_for().startswith(f"{job_id} IN_PROGRESS: Queued 1; measuring; ")
    iot.cancel_job(jobId=job_id)
    code, stderr = watch.finish()
    assert (code, stderr) == (1, "")
    assert watch.lines.items[-1].startswith(f"{job_id} CANCELED: Canceled 1; ")


def test_a_job_that_does_not_exist_is_named_and_exits_1(server, unique):
    result = subprocess.run(
        command(server, f"{unique}-nothing", "--json"),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        f"iotjobs job watch: ResourceNotFoundException: job {unique}-nothing does not exist at "
        f"{server.http_url}\n"
    )


def test_ctrl_c_exits_130_without_a_traceback(server, iot, unique, watches):
    job_id = f"{unique}-job"
    iot.create_job(jobId=job_id, targets=[make_thing(iot, f"{unique}-idle")], document='{"operation": "x"}')
    watch = watches(server, job_id, "--json")
    watch.wait_for()
    watch.process.send_signal(signal.SIGINT)
    assert watch.finish() == (130, "")


def test_on_a_terminal_the_frame_is_redrawn_in_place_and_the_cursor_given_back(server, iot, unique):
    thing, job_id = f"{unique}-t", f"{unique}-job"
    iot.create_job(jobId=job_id, targets=[make_thing(iot, thing)], document='{"operation": "x"}')
    terminal, their_end = pty.openpty()
    process = subprocess.Popen(
        command(server, job_id, "--interval", "0.1"),
        env={**environment(), "NO_COLOR": "1", "COLUMNS": "80"},
        stdout=their_end,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(their_end)
    screen = Inbox()  # everything written to the terminal so far, after each read

    def read():
        written = ""
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the other end closed
                return
            if not chunk:
                return
            written += chunk.decode()
            screen.put(written)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        screen.wait_for(lambda text: "Queued 1" in text, timeout=30)
        run_on_device(server, thing, Succeed())
        assert process.wait(30) == 0, process.stderr.read()
        reader.join(5)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stderr.close()
        os.close(terminal)
    written = screen.items[-1]
    assert written.startswith("\x1b[?25l") and written.endswith("\x1b[?25h")  # cursor hidden, then shown
    frames = written.count(f"job {job_id}  ")
    # Each frame after the first moves up over the one before it instead of scrolling.
    assert frames >= 2 and len(re.findall(r"\x1b\[\d+A\r", written)) == frames - 1
    last = written[written.rindex(f"job {job_id}  ") :]
    assert f"job {job_id}  COMPLETED  1 things" in last and "# Succeeded 1" in last
    assert "Queued" not in last and not re.search(r"\x1b\[[\d;]*m", written)  # NO_COLOR: no colour
