"""Kill -9 a worker and a broker node mid-rollout: nothing is lost, nothing runs twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import environment, run_cluster

pytestmark = pytest.mark.integration

THINGS = 150


@pytest.fixture
def cluster(tmp_path):
    yield from run_cluster(tmp_path / "cluster")


def _executions(iot, job_id: str) -> list[dict]:
    pages = iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id)
    return [summary for page in pages for summary in page["executionSummaries"]]


def test_killing_a_worker_and_a_broker_node_mid_job_loses_no_execution_and_runs_none_twice(cluster):
    survivor = cluster.iot(1)
    job_id = "failover-job"
    simulate = subprocess.Popen(
        [
            *(sys.executable, "-m", "iot_jobs_bridge.jobs_service.cli", "simulate"),
            *("--mqtt", ",".join(cluster.where["mqtt"]), "--http", cluster.where["http"][1]),
            *("--things", str(THINGS), "--prefix", "failover", "--job-id", job_id),
            # Slow devices, so the job is still running when the kills come.
            *("--profile", "slow=100", "--slow-median", "3", "--workers", "2"),
            *("--deadline", "150", "--json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    try:
        # Mid-job: some executions have finished, most have not.
        deadline = time.monotonic() + 120
        while True:
            assert simulate.poll() is None, simulate.communicate()
            statuses = (
                [e["jobExecutionSummary"]["status"] for e in _executions(survivor, job_id)]
                if _job_exists(survivor, job_id)
                else []
            )
            if statuses.count("SUCCEEDED") >= 10:
                break
            assert time.monotonic() < deadline, f"the job never got going: {statuses}"
            time.sleep(0.2)
        assert statuses.count("SUCCEEDED") < THINGS // 2
        cluster.kill_worker(0)
        os.kill(cluster.where["pids"]["brokers"][0], signal.SIGKILL)
        out, err = simulate.communicate(timeout=170)
    finally:
        if simulate.poll() is None:
            simulate.kill()
            simulate.communicate()
    assert simulate.returncode == 0, out + err
    report = json.loads(out)
    assert report["lost"] == 0 and report["duplicated"] == 0 and report["mismatched"] == 0, report
    assert report["statuses"] == {"SUCCEEDED": THINGS}
    executions = _executions(survivor, job_id)
    assert len(executions) == THINGS
    assert len({e["thingArn"] for e in executions}) == THINGS  # exactly one execution per thing
    assert {e["jobExecutionSummary"]["status"] for e in executions} == {"SUCCEEDED"}
    assert {e["jobExecutionSummary"]["executionNumber"] for e in executions} == {1}
    assert survivor.describe_job(jobId=job_id)["job"]["status"] == "COMPLETED"


def _job_exists(iot, job_id: str) -> bool:
    try:
        iot.describe_job(jobId=job_id)
    except iot.exceptions.ResourceNotFoundException:
        return False
    return True
