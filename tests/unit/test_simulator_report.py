import json

from iot_jobs_bridge.simulator.report import Latency, Report, percentile


def test_nearest_rank_percentiles():
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) is None


def test_latency_of_no_values_is_empty():
    assert Latency.of([]) == Latency(0, None, None, None)


def _report(**changes):
    base = dict(
        things=4,
        job_id="j",
        jobs=1,
        connect_seconds=1.0,
        connections_per_second=4.0,
        seconds=2.0,
        executions_per_second=2.0,
        notify_to_start=Latency.of([0.1, 0.2]),
        start_to_terminal=Latency.of([0.3]),
        notify_to_terminal=Latency.of([0.4, 0.5]),
        statuses={"SUCCEEDED": 3, "FAILED": 1},
        expected_statuses={"SUCCEEDED": 3, "FAILED": 1},
        profiles={"succeed": 3, "fail": 1},
    )
    return Report(**{**base, **changes})


def test_json_has_the_keys_machines_rely_on():
    data = json.loads(_report().to_json())
    for key in (
        "things",
        "seconds",
        "executions_per_second",
        "statuses",
        "expected_statuses",
        "lost",
        "duplicated",
        "cpu_seconds",
        "cpu_per_execution_ms",
    ):
        assert key in data
    assert data["lost"] == 0 and data["duplicated"] == 0 and data["ok"] is True


def test_a_lost_or_duplicated_thing_is_not_ok_and_is_named():
    report = _report(lost=["sim-00002"], duplicated=["sim-00003"])
    assert not report.ok
    data = json.loads(report.to_json())
    assert (data["lost"], data["lost_things"]) == (1, ["sim-00002"])
    assert (data["duplicated"], data["duplicated_things"]) == (1, ["sim-00003"])
    assert "MISMATCH" in report.to_text()
    assert "lost              1: sim-00002" in report.to_text()


def test_text_report_shows_percentiles():
    text = _report().to_text()
    assert "notify → start    p50 0.100 s  p95 0.200 s  p99 0.200 s  (n=2)" in text
    assert "every thing ended as its profile predicts" in text


def test_text_report_shows_the_simulators_own_cpu():
    text = _report(cpu_seconds=12.5, cpu_per_execution_ms=2.5).to_text()
    assert "simulator CPU     12.50 s (2.50 ms per execution)" in text
