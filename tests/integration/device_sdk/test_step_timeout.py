"""A handler that asks for a step timeout is timed out by the service, and stopped."""

import asyncio

import pytest

from iot_jobs_bridge.device_sdk import AsyncJobsClient, JobRunner

from ..conftest import start_server
from .helpers import create_job, execution, make_thing, wait_until_async

pytestmark = pytest.mark.integration


def test_a_hanging_handler_with_a_step_timeout_is_timed_out_and_stopped(tmp_path):
    # At time scale 60 the one-minute step timeout lasts one second.
    server = start_server(tmp_path / "data", extra_env={"IOTJOBS_TIME_SCALE": "60"})
    try:
        iot = server.iot()
        arn = make_thing(iot, "slow-dev")
        create_job(iot, "stuck", arn, {"operation": "stuck"})
        stopped = []

        async def stuck(job):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                stopped.append(job.cancelled.is_set())
                raise

        async def scenario():
            async with AsyncJobsClient("slow-dev", f"mqtt://{server.mqtt_host}:{server.mqtt_port}") as client:
                runner = JobRunner(client)
                runner.register("stuck", stuck, step_timeout_minutes=1)
                task = asyncio.ensure_future(runner.run())
                await wait_until_async(lambda: len(runner.reports) == 1, timeout=20)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return list(runner.reports)

        reports = asyncio.run(scenario())
        assert stopped == [True], "the handler was cancelled because the service ended the job"
        assert [(r.job_id, r.reported) for r in reports] == [("stuck", False)]
        assert reports[0].status in ("TIMED_OUT", "ENDED")
        assert execution(iot, "stuck", "slow-dev")["status"] == "TIMED_OUT"
    finally:
        server.stop()
