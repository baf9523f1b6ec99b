"""Prometheus metrics: counters moved as the service works, gauges read from the store at each scrape.

One `Metrics` per service, on a registry of its own (never the process-wide
default: several services may share a process). What moves the counters:

* the engine's observers (`EngineCore.observe`): every execution written by a
  committed transaction (transitions, timeouts) and its domain events (aborts);
* the request pump: each device request once its replies were handed to the
  transport (operation, outcome, seconds since it arrived);
* the HTTP gateway: each control-plane request once answered;
* the schedules: each fire recorded, by outcome;
* the store: each COMMIT's duration.

The gauges of jobs and executions are not kept in memory: a collector reads
them with one grouped query each when ``/metrics`` is scraped (off the event
loop), so they are right after a restart and on every worker sharing a store.
``docs/metrics.md`` describes every metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from iot_jobs_bridge.schemas import topics

from .domain_events import Activity, JobChanged
from .job_policies import ABORT_REASON
from .models import ExecutionStatus, JobStatus
from .states import EXECUTION_TRANSITIONS, INITIAL_STATUSES
from .store.jobs import JobsRepository

__all__ = ["NEW", "Metrics"]

#: ``from`` of an execution's first transition, into the status it was created in.
NEW = "NONE"
#: Outcomes of a schedule's fire (`Schedules`), each a series from the start.
FIRE_OUTCOMES = ("created", "skipped-overlap", "skipped-misfire", "failed")
#: Device request operations: the topic grammar's, ``invalid`` for a path that names none.
DEVICE_OPERATIONS = tuple(operation.value for operation in topics.Operation)
# Device requests take milliseconds when the store keeps up, seconds when it does not.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A COMMIT is one fsync on SQLite, one round trip on PostgreSQL.
_COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """The service's metrics; its methods are the hooks the wiring hands to each part.

    ``connected_devices``, when the service can tell (the embedded broker's
    presence), says how many devices are connected now; it is read at each
    scrape, from a thread other than the event loop's.
    """

    def __init__(self, jobs: JobsRepository, *, connected_devices: Callable[[], int] | None = None) -> None:
        #: What a scrape reads.
        self.registry = CollectorRegistry(auto_describe=False)
        # The counters and histograms live here, and reach the scrape without their _created samples.
        registry = CollectorRegistry(auto_describe=False)
        self.device_requests = Counter(
            "iotjobs_device_requests",
            "Device requests answered over MQTT, by operation and by the reply: accepted or rejected.",
            ["operation", "outcome"],
            registry=registry,
        )
        self.device_request_seconds = Histogram(
            "iotjobs_device_request_duration_seconds",
            "Seconds from a device request's arrival to its replies being handed to the broker.",
            buckets=_REQUEST_BUCKETS,
            registry=registry,
        )
        self.control_plane_requests = Counter(
            "iotjobs_control_plane_requests",
            'Control-plane (HTTP API) requests answered, by operation ("-": none) and HTTP status code.',
            ["operation", "code"],
            registry=registry,
        )
        self.transitions = Counter(
            "iotjobs_execution_transitions",
            f'Job executions that changed status, by status before ("{NEW}" for a new execution) and after.',
            ["from", "to"],
            registry=registry,
        )
        self.timeouts = Counter(
            "iotjobs_execution_timeouts",
            "Job executions that timed out (their in-progress or step timer ran out).",
            registry=registry,
        )
        self.aborts = Counter(
            "iotjobs_job_aborts",
            f"Jobs canceled by their abortConfig (reasonCode {ABORT_REASON}).",
            registry=registry,
        )
        self.schedule_fires = Counter(
            "iotjobs_schedule_fires",
            "Fires of recurring schedules by outcome: created, skipped-overlap, skipped-misfire, failed.",
            ["outcome"],
            registry=registry,
        )
        self.store_commit_seconds = Histogram(
            "iotjobs_store_commit_seconds",
            "Seconds each store transaction's COMMIT took.",
            buckets=_COMMIT_BUCKETS,
            registry=registry,
        )
        # Series known in advance start at 0, so that a rate over them is right from the first change.
        for operation in DEVICE_OPERATIONS:
            for outcome in ("accepted", "rejected"):
                self.device_requests.labels(operation, outcome)
        for before, after in _TRANSITIONS:
            self.transitions.labels(before, after)
        for outcome in FIRE_OUTCOMES:
            self.schedule_fires.labels(outcome)
        self.registry.register(_WithoutCreated(registry))
        # The process' CPU seconds, memory and open files (process_*), where /proc has them.
        ProcessCollector(registry=self.registry)
        self.registry.register(_StoreGauges(jobs))
        if connected_devices is not None:
            self.registry.register(_ConnectedDevices(connected_devices))

    # -- hooks -------------------------------------------------------------
    def observe(self, activity: Activity) -> None:
        """An engine observer: count what one committed transaction did."""
        for write in activity.writes:
            if not write.transition:
                continue  # a progress report, or a save that kept the status
            before = NEW if write.previous is None else write.previous.value
            self.transitions.labels(before, write.status.value).inc()
            if write.status is ExecutionStatus.TIMED_OUT:
                self.timeouts.inc()
        for event in activity.events:
            if isinstance(event, JobChanged) and _is_abort(event):
                self.aborts.inc()

    def device_request_answered(self, topic: str, reply_topic: str | None, seconds: float) -> None:
        """A request pump observer: ``reply_topic`` is the first message sent for the request."""
        request = topics.parse_request(topic)
        if request is None or reply_topic is None:
            return  # not a request, or one answered before (a redelivery): nothing was sent now
        if reply_topic == topics.accepted(topic):
            outcome = "accepted"
        elif reply_topic == topics.rejected(topic):
            outcome = "rejected"
        else:
            return
        self.device_requests.labels(request.operation.value, outcome).inc()
        self.device_request_seconds.observe(seconds)

    def control_plane_answered(self, operation: str, status: int, seconds: float) -> None:
        """The HTTP gateway's ``answered``: one API request answered with ``status``."""
        self.control_plane_requests.labels(operation, str(status)).inc()

    def schedule_fired(self, outcome: str) -> None:
        """A fire of a schedule was recorded with ``outcome``."""
        self.schedule_fires.labels(outcome).inc()

    def commit_took(self, seconds: float) -> None:
        """The store's commit hook."""
        self.store_commit_seconds.observe(seconds)

    # -- scrapes -----------------------------------------------------------
    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """Every metric, and the media type they are written in.

        That is OpenMetrics when ``accept`` (a request's ``Accept`` header) asks
        for it, as Prometheus does, else Prometheus' text format. It queries the
        store: call it off the event loop.
        """
        encode, media_type = choose_encoder(accept)
        return encode(self.registry), media_type


def _is_abort(event: JobChanged) -> bool:
    """Whether ``event`` is a job canceled by its abortConfig.

    A later cancel with force of an aborted job keeps the reason code, but is
    the operator's, and the job is then force-canceled, which an abort never is.
    """
    job = event.job
    return event.operation == "canceled" and job.reason_code == ABORT_REASON and not job.force_canceled


# Every status change the state machine allows, and each status an execution may begin in.
_TRANSITIONS = sorted(
    {(before.value, after.value) for before, after in EXECUTION_TRANSITIONS if before is not after}
    | {(NEW, status.value) for status in INITIAL_STATUSES}
)


class _WithoutCreated(Collector):
    """The metrics of ``registry`` without their ``_created`` samples.

    The client library writes one such sample (when the series began) beside
    every counter and histogram series; Prometheus' text format stores it as a
    series of its own, which doubles the series and says nothing a rate needs.
    (The library can only turn them off for the whole process.)
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def describe(self) -> Iterator[Metric]:
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():  # new objects at each collection: ours to change
            metric.samples = [sample for sample in metric.samples if not sample.name.endswith("_created")]
            yield metric


class _StoreGauges(Collector):
    """Jobs per status, and the executions of each open job per status, read from the store."""

    def __init__(self, jobs: JobsRepository) -> None:
        self._jobs = jobs

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self._jobs.jobs_per_status(), self._jobs.open_jobs_execution_counts())

    @staticmethod
    def _families(
        jobs: dict[JobStatus, int] | None = None,
        executions: dict[str, dict[ExecutionStatus, int]] | None = None,
    ) -> Iterator[Metric]:
        per_job = GaugeMetricFamily(
            "iotjobs_job_executions",
            "Things per status of their latest execution, for each job not yet finished (IN_PROGRESS or "
            "SCHEDULED); a job's series go when it ends.",
            labels=["job_id", "status"],
        )
        for job_id, counts in sorted((executions or {}).items()):
            for status in ExecutionStatus:
                per_job.add_metric([job_id, status.value], counts.get(status, 0))
        yield per_job
        per_status = GaugeMetricFamily("iotjobs_jobs", "Jobs per status.", labels=["status"])
        if jobs is not None:
            for job_status in JobStatus:
                per_status.add_metric([job_status.value], jobs.get(job_status, 0))
        yield per_status


class _ConnectedDevices(Collector):
    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        family.add_metric([], self._count())
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "iotjobs_connected_devices",
            "Devices connected to the embedded broker now (not the admin key's clients nor the service's).",
        )
