"""`iotjobs run`: one command on one device, its output and its exit code."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from .clients import Inbox
from .conftest import ACCESS_KEY_ID, SECRET
from .device_sdk.helpers import DeviceProcess, endpoint, make_thing

pytestmark = pytest.mark.integration


@pytest.fixture
def device(server, iot, unique):
    name = f"{unique}-dev"
    make_thing(iot, name)
    process = DeviceProcess("--thing", name, "--endpoint", endpoint(server))
    yield name
    process.close()


def run(server, *args, credentials=True, timeout=60, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTJOBS_")}
    if credentials:
        env.update(IOTJOBS_ACCESS_KEY_ID=ACCESS_KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
    command = [
        sys.executable,
        "-m",
        "iot_jobs_bridge.jobs_service.cli",
        "run",
        "--endpoint",
        server.http_url,
        *args,
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_output_and_exit_code_come_back(server, device):
    result = run(server, "--thing", device, "--", "sh", "-c", "echo out, with a comma; echo err >&2; exit 0")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "out, with a comma\n"
    assert "err\n" in result.stderr
    assert "succeeded" in result.stderr


def test_a_failing_command_exits_with_the_devices_exit_code(server, device):
    result = run(server, "--thing", device, "--", "sh", "-c", "echo broken >&2; exit 3")
    assert result.returncode == 3
    assert "broken" in result.stderr
    assert "iotjobs run: FAILED: run exited with code 3" in result.stderr


def test_a_command_the_device_does_not_have_is_rejected(server, device):
    result = run(server, "--thing", device, "--", "no-such-command-anywhere")
    assert result.returncode == 125
    assert "REJECTED" in result.stderr and "no-such-command-anywhere" in result.stderr


def test_no_answer_in_time_cancels_the_job(server, iot, unique):
    name = f"{unique}-offline"
    make_thing(iot, name)  # no device runs for it
    result = run(server, "--thing", name, "--timeout", "1", "--", "true")
    assert result.returncode == 124
    assert "no result within 1s" in result.stderr
    job_id = next(line.split()[1] for line in result.stderr.splitlines() if line.startswith("job "))
    assert iot.describe_job(jobId=job_id)["job"]["status"] == "CANCELED"


def test_unknown_things_and_missing_credentials_are_clear_errors(server, tmp_path):
    result = run(server, "--thing", "nobody-here", "--", "true")
    assert result.returncode == 2 and "nobody-here" in result.stderr
    result = run(server, "--thing", "x", "--data-dir", str(tmp_path), "--", "true", credentials=False)
    assert result.returncode == 2 and "no admin key" in result.stderr
    assert f"({tmp_path}/admin-credentials.json does not exist)" in result.stderr
    result = run(server, "--thing", "x")
    assert result.returncode == 2 and "give the command after --" in result.stderr


def test_without_the_environment_the_key_comes_from_the_data_dir(server, device, tmp_path):
    (tmp_path / "data").mkdir()
    stored = {"accessKeyId": ACCESS_KEY_ID, "secretAccessKey": SECRET}
    (tmp_path / "data" / "admin-credentials.json").write_text(json.dumps(stored))
    # ./data by default, as the server's own default.
    result = run(
        server, "--thing", device, "--", "echo", "from the data dir", credentials=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from the data dir\n"


class RunProcess:
    """``iotjobs run`` as a subprocess whose stderr lines arrive, with when they came, in ``lines``."""

    def __init__(self, server, *args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("IOTJOBS_")}
        env.update(IOTJOBS_ACCESS_KEY_ID=ACCESS_KEY_ID, IOTJOBS_SECRET_ACCESS_KEY=SECRET)
        command = [
            sys.executable,
            "-m",
            "iot_jobs_bridge.jobs_service.cli",
            "run",
            "--endpoint",
            server.http_url,
        ]
        self.process = subprocess.Popen(
            [*command, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines = Inbox()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.put((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, fragment, timeout=10.0):
        return self.lines.wait_for(lambda item: fragment in item[1], timeout)

    def finish(self, timeout=60):
        """The exit code and stdout once it ends (its output is small: the pipe never fills)."""
        code = self.process.wait(timeout)
        self._reader.join(5)
        stdout = self.process.stdout.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return code, stdout


def test_a_device_that_is_not_connected_is_said_so_at_once(server, iot, unique):
    name = f"{unique}-away"
    make_thing(iot, name)
    run = RunProcess(server, "--thing", name, "--timeout", "3", "--", "true")
    created_at, _ = run.wait_for(f"job run-{name}-")
    said_at, line = run.wait_for(f"{name} is not connected")
    assert said_at - created_at < 2.0
    assert line == f"{name} is not connected (not since the server started); the job waits for it, up to 3s"
    code, _ = run.finish()
    assert code == 124


def test_a_device_connecting_later_is_noticed_and_runs_the_job(server, iot, unique):
    name = f"{unique}-late"
    make_thing(iot, name)
    run = RunProcess(server, "--thing", name, "--timeout", "60", "--", "sh", "-c", "sleep 1; echo done")
    run.wait_for(f"{name} is not connected")
    device = DeviceProcess("--thing", name, "--endpoint", endpoint(server))
    try:
        run.wait_for(f"{name} connected", timeout=20)
        run.wait_for("in_progress", timeout=20)
        code, stdout = run.finish()
    finally:
        device.close()
    assert (code, stdout) == (0, "done\n")
    said = [
        line.split()[0] if line.startswith(("in_progress", "succeeded")) else line
        for _, line in run.lines.items
    ]
    assert said.index(f"{name} connected") < said.index("in_progress") < said.index("succeeded")
