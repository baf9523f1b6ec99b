"""A broker restart in the middle of a job: the job still ends, reported exactly once."""

import asyncio
import json

import pytest

from iot_jobs_bridge.device_sdk import AsyncJobsClient, Backoff, JobRunner

from ..clients import paho_client, subscribe
from ..conftest import ACCESS_KEY_ID, SECRET, start_server
from .helpers import create_job, execution, make_thing, wait_until_async, write_handler

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("finish", ["while-the-broker-is-down", "after-the-broker-is-back"])
def test_broker_restart_mid_job_ends_with_the_job_reported_exactly_once(tmp_path, finish):
    data_dir, handlers = tmp_path / "data", tmp_path / "handlers"
    runs, go = tmp_path / "runs", tmp_path / "go"
    write_handler(
        handlers, "slow.sh", f'echo run >> "{runs}"\nwhile [ ! -e "{go}" ]; do sleep 0.05; done\necho done\n'
    )
    first = start_server(data_dir)
    servers = [first]
    try:
        iot = first.iot()
        arn = make_thing(iot, "restart-dev")
        create_job(iot, "restart-job", arn, {"operation": "slow.sh"})
        endpoint = f"mqtt://{first.mqtt_host}:{first.mqtt_port}"

        async def scenario():
            client = AsyncJobsClient("restart-dev", endpoint, request_timeout=3.0, backoff=Backoff(0.1, 0.5))
            async with client:
                runner = JobRunner(client, handlers_dir=handlers)
                task = asyncio.ensure_future(runner.run())
                await wait_until_async(lambda: runs.exists())
                await asyncio.to_thread(first.stop)
                await wait_until_async(lambda: not client.connected)
                if finish == "while-the-broker-is-down":
                    go.touch()
                    await asyncio.sleep(0.5)  # the handler ends and its report waits for the broker
                    assert runner.reports == type(runner.reports)(), "nothing can be reported while down"
                extra = ["--mqtt-port", str(first.mqtt_port)]
                second = await asyncio.to_thread(start_server, data_dir, extra_args=extra)
                servers.append(second)
                with paho_client(
                    second.mqtt_host,
                    second.mqtt_port,
                    "restart-monitor",
                    username=ACCESS_KEY_ID,
                    password=SECRET,
                ) as monitor:
                    subscribe(monitor, "$aws/events/jobExecution/restart-job/+")
                    go.touch()
                    await wait_until_async(lambda: len(runner.reports) == 1, timeout=30)
                    if finish == "after-the-broker-is-back":
                        await wait_until_async(lambda: monitor.inbox.count() >= 1)
                    await asyncio.sleep(1.0)  # room for a duplicate report to show up, if there were one
                    events = [json.loads(payload) for _topic, payload in monitor.inbox.items]
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return list(runner.reports), events, second

        reports, events, second = asyncio.run(scenario())
        record = execution(second.iot(), "restart-job", "restart-dev")
        assert runs.read_text() == "run\n", "the handler ran once"
        assert [(r.job_id, r.status, r.reported) for r in reports] == [("restart-job", "SUCCEEDED", True)]
        assert record["status"] == "SUCCEEDED"
        assert record["versionNumber"] == 3, "queued (1), started (2), succeeded (3): one report, no repeat"
        statuses = [e["status"] for e in events]
        if finish == "after-the-broker-is-back":
            assert statuses == ["SUCCEEDED"]
        else:
            # The waiting report goes out as soon as the device is back, which may be before
            # the monitor has subscribed; the version number above shows it landed once.
            assert statuses in ([], ["SUCCEEDED"])
    finally:
        for server in servers:
            server.stop()
