"""A hypothesis state machine over the engine: random operations from both planes.

After every step it checks that terminal executions never change, that
every change moves an execution's version by exactly one, that every status
change of an execution or a job is one its transition table holds, and that
what devices were told (the last notify and notify-next per thing) matches the
pending list in the store.
"""

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from iot_jobs_bridge.jobs_service.arns import Arns
from iot_jobs_bridge.jobs_service.clock import FakeClock
from iot_jobs_bridge.jobs_service.engine import JobsEngine, NewJob
from iot_jobs_bridge.jobs_service.errors import JobsError
from iot_jobs_bridge.jobs_service.models import ExecutionStatus, JobStatus, TargetSelection
from iot_jobs_bridge.jobs_service.registry import Registry
from iot_jobs_bridge.jobs_service.states import (
    EXECUTION_TRANSITIONS,
    INITIAL_STATUSES,
    JOB_TRANSITIONS,
    TERMINAL_STATUSES,
)
from iot_jobs_bridge.jobs_service.store import Store

from .rendering import told

THINGS = ["t1", "t2", "t3"]
JOBS = ["j1", "j2", "j3", "j4", "j5"]
things = st.sampled_from(THINGS)
jobs = st.sampled_from(JOBS)


class EngineMachine(RuleBasedStateMachine):
    @initialize()
    def start(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.store = Store(Path(self.tmp.name) / "jobs.sqlite3")
        self.clock = FakeClock()
        self.arns = Arns()
        self.engine = JobsEngine(self.store, self.clock, self.arns)
        self.registry = Registry(self.store, self.clock, self.arns)
        for name in THINGS:
            self.engine.membership.create_thing(name)
        self.registry.create_group("g")
        # What each device was told: the head's identity and the pending set.
        self.told_next: dict[str, tuple[str, int] | None] = dict.fromkeys(THINGS)
        self.told_set: dict[str, set[tuple[str, int]]] = {name: set() for name in THINGS}
        self.seen: dict[int, tuple[ExecutionStatus, int]] = {}
        self.job_statuses: dict[str, JobStatus] = {}

    def teardown(self):
        if hasattr(self, "store"):
            self.store.close()
            self.tmp.cleanup()

    def _apply(self, call):
        self.clock.advance(1)
        try:
            outcome = call()
        except JobsError:
            return
        for message in told(outcome.events):
            parts = message.topic.split("/")
            if parts[:2] != ["$aws", "things"]:
                continue
            thing = parts[2]
            if parts[-1] == "notify-next":
                execution = message.payload.get("execution")
                self.told_next[thing] = (
                    (execution["jobId"], execution["executionNumber"]) if execution else None
                )
            elif parts[-1] == "notify":
                listed = [entry for entries in message.payload["jobs"].values() for entry in entries]
                self.told_set[thing] = {(entry["jobId"], entry["executionNumber"]) for entry in listed}

    @rule(
        job_id=jobs,
        names=st.sets(things, max_size=3),
        to_group=st.booleans(),
        continuous=st.booleans(),
        timeout=st.booleans(),
    )
    def create_job(self, job_id, names, to_group, continuous, timeout):
        arns = [self.arns.thing(name) for name in sorted(names)]
        if to_group:
            arns.append(self.arns.thing_group("g"))
        selection = TargetSelection.CONTINUOUS if continuous else TargetSelection.SNAPSHOT
        self._apply(
            lambda: self.engine.jobs.create_job(
                NewJob(
                    job_id=job_id,
                    targets=arns or [self.arns.thing_group("g")],
                    document="{}",
                    target_selection=selection,
                    settings={"timeoutConfig": {"inProgressTimeoutInMinutes": 1}} if timeout else {},
                )
            )
        )

    @rule(thing=things)
    def start_next(self, thing):
        self._apply(lambda: self.engine.device.start_next(thing, {"step": "start"}))

    @rule(thing=things, job_id=jobs, status=st.sampled_from(list(ExecutionStatus)), stale=st.booleans())
    def update(self, thing, job_id, status, stale):
        current = self.store.jobs.get_execution(job_id, thing)
        expected = (current.version_number - 1 if stale else current.version_number) if current else None
        self._apply(
            lambda: self.engine.device.update(
                thing,
                job_id,
                status=status,
                status_details={"s": status.value},
                expected_version=expected,
                execution_number=None,
            )
        )

    @rule(minutes=st.integers(min_value=0, max_value=2))
    def timers_run(self, minutes):
        self.clock.advance(minutes * 60)
        self._apply(lambda: self.engine.lifecycle.time_out_due(self.clock.now()))

    @rule(job_id=jobs, force=st.booleans())
    def cancel_job(self, job_id, force):
        self._apply(lambda: self.engine.jobs.cancel_job(job_id, force=force, reason_code=None, comment=None))

    @rule(thing=things, job_id=jobs, force=st.booleans())
    def cancel_execution(self, thing, job_id, force):
        self._apply(
            lambda: self.engine.jobs.cancel_execution(
                job_id, thing, force=force, expected_version=None, status_details=None
            )
        )

    @rule(thing=things, job_id=jobs, force=st.booleans())
    def delete_execution(self, thing, job_id, force):
        current = self.store.jobs.get_execution(job_id, thing)
        number = current.execution_number if current else 1
        self._apply(lambda: self.engine.jobs.delete_execution(job_id, thing, number, force=force))

    @rule(job_id=jobs, force=st.booleans())
    def delete_job(self, job_id, force):
        self._apply(lambda: self.engine.jobs.delete_job(job_id, force=force))
        self.engine.jobs.finish_deletions()

    @rule(thing=things)
    def join_group(self, thing):
        self._apply(lambda: self.engine.membership.add_thing_to_group("g", thing))

    @rule(thing=things)
    def leave_group(self, thing):
        self._apply(lambda: self.engine.membership.remove_thing_from_group("g", thing))

    @rule(thing=things)
    def delete_and_recreate_thing(self, thing):
        self._apply(lambda: self.engine.membership.delete_thing(thing, expected_version=None))
        self._apply(lambda: self.engine.membership.create_thing(thing))

    @invariant()
    def terminal_executions_never_change_and_versions_only_grow(self):
        if not hasattr(self, "store"):
            return
        current: dict[int, tuple[ExecutionStatus, int]] = {}
        for thing in THINGS:
            for execution in self.store.jobs.executions_for_thing(
                thing, status=None, job_id=None, after=None, limit=-1
            ):
                current[execution.seq] = (execution.status, execution.version_number)
        for seq, (status, version) in current.items():
            if seq not in self.seen:
                assert status in INITIAL_STATUSES and version == 1, (
                    f"execution {seq} began {status} v{version}"
                )
                continue
            old_status, old_version = self.seen[seq]
            # One step changes an execution at most once, and every change moves its version by one.
            assert version - old_version in (0, 1), f"version of execution {seq}: {old_version} -> {version}"
            if old_status in TERMINAL_STATUSES:
                assert (status, version) == (old_status, old_version), f"terminal execution {seq} changed"
            elif status != old_status:
                assert version == old_version + 1, f"execution {seq} changed status without a new version"
                assert (old_status, status) in EXECUTION_TRANSITIONS, (
                    f"execution {seq}: {old_status} -> {status}"
                )
        self.seen = current

    @invariant()
    def jobs_only_make_the_moves_of_their_table(self):
        if not hasattr(self, "store"):
            return
        for job_id in JOBS:
            job = self.store.jobs.get_job(job_id)
            before = self.job_statuses.pop(job_id, None)
            if job is None:
                continue
            if before is not None and job.status != before:
                assert (before, job.status) in JOB_TRANSITIONS, f"job {job_id}: {before} -> {job.status}"
            self.job_statuses[job_id] = job.status

    @invariant()
    def devices_were_told_the_stored_pending_list(self):
        if not hasattr(self, "store"):
            return
        for thing in THINGS:
            pending = self.store.jobs.pending_executions(thing)
            head = (pending[0].job_id, pending[0].execution_number) if pending else None
            assert self.told_next[thing] == head, (
                f"{thing} was told head {self.told_next[thing]}, store has {head}"
            )
            assert self.told_set[thing] == {(e.job_id, e.execution_number) for e in pending}
            statuses = [e.status for e in pending]
            assert statuses == sorted(statuses, key=lambda s: s is not ExecutionStatus.IN_PROGRESS)


EngineMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
TestEngineStateMachine = EngineMachine.TestCase
