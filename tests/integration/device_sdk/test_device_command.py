"""``iotjobs device`` as a real process: handlers, logs, SIGINT, argument errors."""

import pytest

from .helpers import (
    DeviceProcess,
    create_job,
    details,
    endpoint,
    make_thing,
    status_is,
    wait_until,
    write_handler,
)


@pytest.fixture
def run_device():
    """``run_device(*args)`` starts ``iotjobs device``; every process is killed at teardown."""
    started: list[DeviceProcess] = []

    def run(*args: str) -> DeviceProcess:
        process = DeviceProcess(*args)
        started.append(process)
        return process

    yield run
    for process in started:
        process.close()


@pytest.fixture
def thing(iot, unique):
    name = f"{unique}-dev"
    return name, make_thing(iot, name)


def test_a_handler_job_succeeds_and_sigint_stops_the_agent(server, iot, thing, unique, run_device, tmp_path):
    name, arn = thing
    handlers = tmp_path / "handlers"
    write_handler(handlers, "hello.sh", 'echo "hello $1"\n')
    device = run_device("--thing", name, "--endpoint", endpoint(server), "--handlers-dir", str(handlers))
    job_id = create_job(iot, f"{unique}-job", arn, {"operation": "hello.sh", "args": ["world"]})

    record = wait_until(
        status_is(iot, job_id, name, "SUCCEEDED", "FAILED", "REJECTED"), timeout=15, what="the job to end"
    )
    assert record["status"] == "SUCCEEDED", device.text
    assert details(record) == {"stdout": "hello world\n", "exitCode": "0"}
    device.wait_for_line(job_id, "SUCCEEDED")

    device.interrupt()
    assert device.wait(timeout=10) == 0, device.text
    assert "Traceback" not in device.text


def test_run_command_is_rejected_when_switched_off(server, iot, thing, unique, run_device):
    name, arn = thing
    document = {
        "version": "1.0",
        "steps": [{"action": {"name": "say", "type": "runCommand", "input": {"command": "echo,hi"}}}],
    }
    job_id = create_job(iot, f"{unique}-job", arn, document)
    device = run_device("--thing", name, "--endpoint", endpoint(server), "--no-run-command")

    record = wait_until(
        status_is(iot, job_id, name, "SUCCEEDED", "FAILED", "REJECTED"), timeout=15, what="the job to end"
    )
    assert record["status"] == "REJECTED", device.text
    assert "runCommand" in details(record)["reason"]

    device.interrupt()
    assert device.wait(timeout=10) == 0, device.text


def test_a_missing_handlers_dir_exits_2_naming_it(server, thing, run_device, tmp_path):
    missing = tmp_path / "no-such-handlers"
    device = run_device("--thing", thing[0], "--endpoint", endpoint(server), "--handlers-dir", str(missing))

    assert device.wait(timeout=10) == 2
    assert str(missing) in device.text


def test_an_endpoint_that_is_not_mqtt_exits_2(thing, run_device):
    device = run_device("--thing", thing[0], "--endpoint", "http://x")

    assert device.wait(timeout=10) == 2
    assert "--endpoint" in device.text
    assert "mqtt://" in device.text
