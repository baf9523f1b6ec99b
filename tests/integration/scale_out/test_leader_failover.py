"""Kill -9 the worker that runs the timers: rollout pacing, a timeout and a cron schedule carry on, once."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from ..clients import paho_client, subscribe
from ..conftest import ACCESS_KEY_ID, SECRET
from .conftest import RunningCluster, environment, run_cluster

pytestmark = pytest.mark.integration

# One configured minute lasts six seconds.
SCALE = 10
PACED_THINGS = 80
PER_MINUTE = 60  # one release a (service) second: ten a real second


@dataclass
class Outcome:
    queued_at: list[float]
    timed_out_events: list[dict]
    timed_out_execution: dict
    fires: list[dict]
    cron_jobs: list[str]


def _wait(predicate, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _executions(iot, job_id: str) -> list[dict]:
    pages = iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id)
    return [summary for page in pages for summary in page["executionSummaries"]]


def _schedule(cluster: RunningCluster, worker: int, *args: str) -> dict:
    action, *rest = args
    result = subprocess.run(
        [
            *(sys.executable, "-m", "iot_jobs_bridge.jobs_service.cli", "schedule", action),
            *("--endpoint", cluster.where["http"][worker], *rest),
        ],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


@pytest.fixture(scope="module")
def after_leader_kill(tmp_path_factory) -> Outcome:
    for cluster in run_cluster(tmp_path_factory.mktemp("leader"), IOTJOBS_TIME_SCALE=str(SCALE)):
        yield _scenario(cluster)


def _scenario(cluster: RunningCluster) -> Outcome:
    leader = _wait(lambda: (cluster.leader(),) if cluster.leader() is not None else None, "a leader")[0]
    survivor = 1 - leader
    iot = cluster.iot(survivor)  # the operator's calls go to the worker that stays
    arns = [iot.create_thing(thingName=f"paced-{n:03}")["thingArn"] for n in range(PACED_THINGS)]
    timed_arn = iot.create_thing(thingName="timed-dev")["thingArn"]
    cron_arn = iot.create_thing(thingName="cron-dev")["thingArn"]
    with paho_client(*cluster.node(0), "monitor", username=ACCESS_KEY_ID, password=SECRET) as monitor:
        assert not subscribe(monitor, "$aws/events/jobExecution/timed/#")[0].is_failure
        # An in-progress timeout of one minute, started now.
        iot.create_job(
            jobId="timed", targets=[timed_arn], document="{}", timeoutConfig={"inProgressTimeoutInMinutes": 1}
        )
        with paho_client(*cluster.node(1), "timed-dev") as device:
            assert not subscribe(device, "$aws/things/timed-dev/jobs/start-next/accepted")[0].is_failure
            device.publish("$aws/things/timed-dev/jobs/start-next", "{}", qos=1)
            device.inbox.wait_for(lambda m: m[0].endswith("start-next/accepted"))
        # A cron schedule firing every minute.
        _schedule(cluster, survivor, "create", "tick", "--cron", "* * * * *", "--targets", cron_arn,
                  "--document", "{}", "--overlap", "allow")  # fmt: skip
        # A paced rollout.
        iot.create_job(
            jobId="paced",
            targets=arns,
            document="{}",
            jobExecutionsRolloutConfig={"maximumPerMinute": PER_MINUTE},
        )
        _wait(lambda: len(_executions(iot, "paced")) >= PACED_THINGS // 4, "a quarter of the rollout")
        cluster.kill_worker(leader)
        _wait(lambda: cluster.leader() == survivor, "the new leader")
        _wait(lambda: len(_executions(iot, "paced")) == PACED_THINGS, "the whole rollout")
        execution = _wait(
            lambda: (
                (e := iot.describe_job_execution(jobId="timed", thingName="timed-dev")["execution"])["status"]
                == "TIMED_OUT"
                and e
            ),
            "the timeout",
        )
        fired_after_kill = len(_schedule(cluster, survivor, "history", "tick")["fires"])
        _wait(
            lambda: len(_schedule(cluster, survivor, "history", "tick")["fires"]) >= fired_after_kill + 2,
            "two more fires",
        )
        _schedule(cluster, survivor, "disable", "tick")
        time.sleep(1.0)  # room for a second timed_out event to show up, if there were one
        events = [
            json.loads(payload) for topic, payload in monitor.inbox.items if topic.endswith("/timed_out")
        ]
    fires = _schedule(cluster, survivor, "history", "tick")["fires"]
    queued = sorted(e["jobExecutionSummary"]["queuedAt"].timestamp() for e in _executions(iot, "paced"))
    jobs = [job["jobId"] for page in iot.get_paginator("list_jobs").paginate() for job in page["jobs"]]
    return Outcome(queued, events, execution, fires, [j for j in jobs if j.startswith("tick-")])


def test_a_paced_rollout_keeps_its_rate_across_the_leader_kill(after_leader_kill):
    queued = after_leader_kill.queued_at
    assert len(queued) == PACED_THINGS
    per_minute = 60 * (len(queued) - 1) / (queued[-1] - queued[0])
    assert per_minute == pytest.approx(PER_MINUTE, rel=0.05)


def test_an_in_progress_timeout_fires_once_when_the_leader_dies(after_leader_kill):
    assert after_leader_kill.timed_out_execution["status"] == "TIMED_OUT"
    assert after_leader_kill.timed_out_execution["executionNumber"] == 1
    assert len(after_leader_kill.timed_out_events) == 1


def test_a_cron_schedule_never_fires_twice_nor_skips_a_minute(after_leader_kill):
    fires = sorted(fire["fireTime"] for fire in after_leader_kill.fires)
    assert len(fires) == len(set(fires)) >= 3
    assert all(later - earlier == 60 for earlier, later in itertools.pairwise(fires))
    assert len(after_leader_kill.cron_jobs) == len(set(after_leader_kill.cron_jobs)) == len(fires)
