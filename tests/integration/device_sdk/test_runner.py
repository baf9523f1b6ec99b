"""The job runner against the real server: what each kind of job ends as, and cancellation."""

import asyncio
import contextlib

import pytest

from iot_jobs_bridge.device_sdk import AsyncJobsClient, JobRunner, Outcome

from .helpers import create_job, details, execution, make_thing, pid_alive, wait_until_async, write_handler

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def running(server, thing: str, **runner_options):
    """A connected client and a running runner for ``thing``; stopped on exit."""
    async with AsyncJobsClient(thing, f"mqtt://{server.mqtt_host}:{server.mqtt_port}") as client:
        runner = JobRunner(client, **runner_options)
        task = asyncio.ensure_future(runner.run())
        try:
            yield runner
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def ended(iot, job_id: str, thing: str):
    record = execution(iot, job_id, thing)
    return record if record["status"] not in ("QUEUED", "IN_PROGRESS") else None


def test_run_command_output_and_exit_code_land_in_status_details(server, iot, unique):
    thing = f"{unique}-dev"
    arn = make_thing(iot, thing)
    command = "sh,-c,echo to-stdout; echo to-stderr >&2"
    create_job(iot, f"{unique}-ok", arn, {"version": "1.0", "steps": [_command("greet", command)]})

    async def scenario():
        async with running(server, thing):
            return await wait_until_async(lambda: ended(iot, f"{unique}-ok", thing))

    record = asyncio.run(scenario())
    assert record["status"] == "SUCCEEDED"
    assert details(record) == {"exitCode": "0", "stdout": "to-stdout\n", "stderr": "to-stderr\n"}


def test_a_failing_command_is_failed_with_its_exit_code(server, iot, unique):
    thing = f"{unique}-dev"
    arn = make_thing(iot, thing)
    create_job(iot, f"{unique}-bad", arn, {"version": "1.0", "steps": [_command("boom", "sh,-c,exit 7")]})

    async def scenario():
        async with running(server, thing) as runner:
            await wait_until_async(lambda: len(runner.reports) == 1)
            return execution(iot, f"{unique}-bad", thing), list(runner.reports)

    record, reports = asyncio.run(scenario())
    assert record["status"] == "FAILED"
    assert details(record) == {"reason": "boom exited with code 7", "exitCode": "7"}
    assert [(r.job_id, r.status, r.reported) for r in reports] == [(f"{unique}-bad", "FAILED", True)]


def test_an_unknown_operation_is_rejected(server, iot, unique, tmp_path):
    thing = f"{unique}-dev"
    arn = make_thing(iot, thing)
    create_job(iot, f"{unique}-unknown", arn, {"operation": "reflash-the-moon"})

    async def scenario():
        async with running(server, thing, handlers_dir=tmp_path):
            return await wait_until_async(lambda: ended(iot, f"{unique}-unknown", thing))

    record = asyncio.run(scenario())
    assert record["status"] == "REJECTED"
    assert details(record)["reason"] == (
        f"unknown operation 'reflash-the-moon': no executable reflash-the-moon in {tmp_path.resolve()}"
    )


def test_handler_format_runs_the_named_handler_with_its_args(server, iot, unique, tmp_path):
    thing = f"{unique}-dev"
    arn = make_thing(iot, thing)
    write_handler(tmp_path, "install.sh", 'echo "installing $1 and $2 for $IOTJOBS_JOB_ID"\n')
    job_id = f"{unique}-install"
    create_job(iot, job_id, arn, {"operation": "install.sh", "args": ["lftp", "a b"], "path": "default"})

    async def scenario():
        async with running(server, thing, handlers_dir=tmp_path):
            return await wait_until_async(lambda: ended(iot, job_id, thing))

    record = asyncio.run(scenario())
    assert record["status"] == "SUCCEEDED"
    assert details(record)["stdout"] == f"installing lftp and a b for {job_id}\n"


def test_python_handlers_report_progress_and_their_outcome(server, iot, unique):
    thing = f"{unique}-dev"
    arn = make_thing(iot, thing)
    create_job(iot, f"{unique}-fw", arn, {"operation": "firmware", "version": "2.1"})
    seen_progress = asyncio.Event()
    release = asyncio.Event()

    async def firmware(job):
        job.progress({"percent": "40"})
        await release.wait()
        return Outcome.succeeded(installed=job.document["version"])

    async def scenario():
        async with running(server, thing) as runner:
            runner.register("firmware", firmware)
            progress = await wait_until_async(
                lambda: details(execution(iot, f"{unique}-fw", thing)) == {"percent": "40"}
            )
            seen_progress.set()
            release.set()
            return progress, await wait_until_async(lambda: ended(iot, f"{unique}-fw", thing))

    progress, record = asyncio.run(scenario())
    assert progress and seen_progress.is_set()
    assert record["status"] == "SUCCEEDED"
    assert details(record) == {"installed": "2.1"}


def test_a_plain_function_handler_that_raises_fails_the_job(server, iot, unique):
    thing = f"{unique}-dev"
    arn = make_thing(iot, thing)
    create_job(iot, f"{unique}-oops", arn, {"operation": "calibrate"})

    def calibrate(job):
        raise RuntimeError(f"sensor missing on {job.thing_name}")

    async def scenario():
        async with running(server, thing) as runner:
            runner.register("calibrate", calibrate)
            return await wait_until_async(lambda: ended(iot, f"{unique}-oops", thing))

    record = asyncio.run(scenario())
    assert record["status"] == "FAILED"
    assert details(record) == {"reason": f"RuntimeError: sensor missing on {thing}"}


def test_cancel_during_a_long_handler_kills_it_and_reports_nothing(server, iot, unique, tmp_path):
    thing = f"{unique}-dev"
    arn = make_thing(iot, thing)
    pid_file = tmp_path / "pid"
    write_handler(tmp_path / "handlers", "long.sh", f'echo $$ > "{pid_file}"\nexec sleep 120\n')
    job_id = f"{unique}-long"
    create_job(iot, job_id, arn, {"operation": "long.sh"})

    async def scenario():
        async with running(server, thing, handlers_dir=tmp_path / "handlers", kill_grace=1.0) as runner:
            await wait_until_async(lambda: pid_file.exists() and pid_file.read_text().strip())
            pid = int(pid_file.read_text())
            assert pid_alive(pid)
            await asyncio.to_thread(iot.cancel_job, jobId=job_id, force=True)
            await wait_until_async(lambda: not pid_alive(pid), timeout=10)
            await wait_until_async(lambda: len(runner.reports) == 1)
            return list(runner.reports)

    reports = asyncio.run(scenario())
    assert [(r.job_id, r.reported) for r in reports] == [(job_id, False)]
    record = execution(iot, job_id, thing)
    assert record["status"] == "CANCELED"
    assert details(record) == {}, "the device must not report a job the service canceled"


def test_jobs_run_one_at_a_time_in_queue_order(server, iot, unique):
    thing = f"{unique}-dev"
    arn = make_thing(iot, thing)
    order = []
    for n in range(3):
        create_job(iot, f"{unique}-{n}", arn, {"operation": "step", "n": n})

    async def step(job):
        order.append(("start", job.document["n"]))
        await asyncio.sleep(0.2)
        order.append(("end", job.document["n"]))

    async def scenario():
        async with running(server, thing) as runner:
            runner.register("step", step)
            await wait_until_async(lambda: len(runner.reports) == 3)
            return [r.job_id for r in runner.reports]

    finished = asyncio.run(scenario())
    assert finished == [f"{unique}-0", f"{unique}-1", f"{unique}-2"]
    assert order == [(kind, n) for n in range(3) for kind in ("start", "end")]


def test_an_offline_device_runs_jobs_queued_meanwhile_after_reconnecting(server, iot, unique):
    thing = f"{unique}-dev"
    arn = make_thing(iot, thing)
    ran = []

    async def scenario():
        async with running(server, thing) as runner:
            runner.register("note", lambda job: ran.append(job.job_id))
            await runner.client.wait_connected(10)
            await runner.client.drop_connection(offline_for=2.0)
            await wait_until_async(lambda: not runner.client.connected)
            for n in range(2):
                await asyncio.to_thread(create_job, iot, f"{unique}-{n}", arn, {"operation": "note"})
            assert ran == [], "nothing can run while the device is offline"
            await wait_until_async(lambda: len(runner.reports) == 2, timeout=20)
            return [(r.job_id, r.status) for r in runner.reports]

    reports = asyncio.run(scenario())
    assert reports == [(f"{unique}-0", "SUCCEEDED"), (f"{unique}-1", "SUCCEEDED")]
    assert ran == [f"{unique}-0", f"{unique}-1"]


def test_a_job_left_in_progress_by_an_earlier_agent_is_run_again(server, iot, unique):
    thing = f"{unique}-dev"
    arn = make_thing(iot, thing)
    job_id = f"{unique}-again"
    create_job(iot, job_id, arn, {"operation": "work"})
    runs = []

    async def scenario():
        async with AsyncJobsClient(thing, f"mqtt://{server.mqtt_host}:{server.mqtt_port}") as client:
            started = await client.start_next()
            assert started is not None and started.status == "IN_PROGRESS"
        async with running(server, thing) as runner:
            runner.register("work", lambda job: runs.append(job.version_number))
            await wait_until_async(lambda: len(runner.reports) == 1)

    asyncio.run(scenario())
    assert runs == [2], "the IN_PROGRESS execution is run once more, at the version it was left at"
    assert execution(iot, job_id, thing)["status"] == "SUCCEEDED"


def test_runner_cancelled_locally_kills_the_handler_and_leaves_the_job_in_progress(
    server, iot, unique, tmp_path
):
    thing = f"{unique}-dev"
    arn = make_thing(iot, thing)
    pid_file = tmp_path / "pid"
    write_handler(tmp_path / "handlers", "long.sh", f'echo $$ > "{pid_file}"\nexec sleep 120\n')
    job_id = f"{unique}-stop"
    create_job(iot, job_id, arn, {"operation": "long.sh"})

    async def scenario():
        async with running(server, thing, handlers_dir=tmp_path / "handlers", kill_grace=1.0):
            await wait_until_async(lambda: pid_file.exists() and pid_file.read_text().strip())
        return int(pid_file.read_text())

    pid = asyncio.run(scenario())
    assert not pid_alive(pid)
    assert execution(iot, job_id, thing)["status"] == "IN_PROGRESS"


def _command(name: str, command: str) -> dict:
    return {"action": {"name": name, "type": "runCommand", "input": {"command": command}}}
