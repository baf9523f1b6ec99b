"""`iotjobs job watch`'s view, worked out without a server: bar, legend, rate, lines; and what it asks."""

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge.jobs_service.cli import main
from iot_jobs_bridge.jobs_service.job_watch import Watcher
from iot_jobs_bridge.jobs_service.watch_view import (
    STATUSES,
    Failure,
    Rate,
    Snapshot,
    bar,
    compact_details,
    counts_of,
    elapsed_text,
    frame,
    json_line,
    legend,
    plain_line,
    redraw,
)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def counts(**given_counts):
    return {status: given_counts.get(status.lower(), 0) for status in STATUSES}


def snapshot(rate=12.0, failures=(), **given_counts):
    return Snapshot("job-1", "IN_PROGRESS", counts(**given_counts), rate, 65.0, tuple(failures))


# -- counts, bar, legend ---------------------------------------------------------


def test_counts_come_from_job_process_details_with_every_status():
    found = counts_of({"numberOfSucceededThings": 6, "numberOfTimedOutThings": 1, "processingTargets": []})
    assert found == counts(succeeded=6, timed_out=1)


def test_the_bar_splits_its_width_by_count_finished_statuses_first():
    assert bar(counts(succeeded=6, failed=2, queued=2), 10) == "######XX.."
    assert bar(counts(in_progress=1, queued=3), 8) == ">>......"


def test_a_status_with_any_things_gets_a_character_and_the_width_holds():
    drawn = bar(counts(succeeded=998, failed=1, rejected=1), 10)
    assert drawn == "########XR"


def test_an_empty_job_draws_an_empty_bar():
    assert bar(counts(), 5) == "     "


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=8, max_size=8), st.integers(8, 120))
def test_the_bar_always_fills_its_width_exactly(numbers, width):
    given_counts = dict(zip(STATUSES, numbers, strict=True))
    drawn = bar(given_counts, width)
    assert len(drawn) == width
    if sum(numbers):
        for status, number in given_counts.items():
            character = bar({status: 1}, 1)
            assert (character in drawn) == (number > 0), status


def test_colour_wraps_each_status_in_its_own_escape_and_changes_no_character():
    coloured = bar(counts(succeeded=1, failed=1), 4, colour=True)
    assert coloured == "\x1b[32m##\x1b[0m\x1b[31mXX\x1b[0m"
    assert ANSI.sub("", coloured) == bar(counts(succeeded=1, failed=1), 4)


def test_the_legend_names_each_status_with_things_in_words():
    assert legend(counts(succeeded=6, timed_out=1, in_progress=2)) == [
        "# Succeeded 6",
        "T Timed out 1",
        "> In progress 2",
    ]
    assert legend(counts()) == []


# -- rate --------------------------------------------------------------------------


def test_the_rate_needs_two_looks():
    rate = Rate()
    assert rate.add(100.0, 0) is None
    assert rate.add(101.0, 2) == pytest.approx(120.0)


def test_the_rate_covers_the_last_minute_once_looks_span_one():
    rate = Rate(window=60)
    rate.add(0.0, 0)
    for second in range(1, 61):
        rate.add(float(second), second * 2)  # 120 a minute for the first minute
    for second in range(61, 121):
        last = rate.add(float(second), 120)  # then nothing more
    assert last == 0.0
    rate.add(121.0, 150)
    assert rate.add(150.0, 150) == pytest.approx(30.0)  # 30 finished since second 90


def test_a_retry_never_makes_the_rate_negative():
    rate = Rate()
    rate.add(0.0, 5)
    assert rate.add(1.0, 4) == 0.0


# -- details, time, the terminal frame --------------------------------------------


@pytest.mark.parametrize(
    ("details", "shown"),
    [
        ({"exitCode": "3", "stderr": "first\n  boom at the end \n", "reason": "run exited with code 3"},
         "exit 3; run exited with code 3; boom at the end"),
        ({"reason": "disk full"}, "disk full"),
        ({"step": "2", "percent": "50"}, "percent=50; step=2"),
        ({}, ""),
    ],
)  # fmt: skip
def test_what_a_device_said_fits_one_line(details, shown):
    assert compact_details(details) == shown


def test_a_device_cannot_steer_the_terminal_with_escape_sequences():
    said = compact_details({"reason": "\x1b[2J\x1b]0;owned\x07gone", "stderr": "\u202eevil"})
    assert said == "?[2J?]0;owned?gone; ?evil"


def test_long_details_are_cut_to_the_limit():
    assert compact_details({"reason": "x" * 200}, limit=20) == "x" * 17 + "..."


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (42.9, "42s"), (185, "3m05s"), (7385, "2h03m05s")])
def test_elapsed_time_reads_in_hours_minutes_seconds(seconds, text):
    assert elapsed_text(seconds) == text


def test_the_frame_shows_status_bar_legend_rate_elapsed_and_failures():
    failures = [Failure(f"thing-{n}", "FAILED", {"exitCode": str(n)}) for n in range(5)]
    lines = frame(snapshot(succeeded=6, failed=5, queued=1, failures=failures), 80)
    assert lines[0] == "job job-1  IN_PROGRESS  12 things  1m05s"
    assert lines[1] == "[" + bar(counts(succeeded=6, failed=5, queued=1), 60) + "]"
    assert lines[2] == "# Succeeded 6  X Failed 5  . Queued 1"
    assert lines[3] == "rate 12.0/min (finished, last minute)"
    assert lines[4:] == ["latest failures:", *(f"  thing-{n} failed: exit {n}" for n in range(5))]


def test_no_frame_line_is_wider_than_the_terminal():
    failures = [Failure("t" * 100, "TIMED_OUT", {"reason": "r" * 100})]
    every = counts(**{status.lower(): 1000 for status in STATUSES})
    lines = frame(Snapshot("j" * 90, "IN_PROGRESS", every, None, 3.0, tuple(failures)), 40, colour=True)
    assert all(len(ANSI.sub("", line)) <= 40 for line in lines), lines
    assert "rate measuring (finished, last minute)" in lines
    assert sum(line.count("\x1b[0m") for line in lines[2:-3]) == len(STATUSES)  # the legend wrapped whole


def test_a_redraw_moves_up_over_the_last_frame_and_clears_what_is_left():
    assert redraw(["a", "b"], 0) == "a\x1b[K\nb\x1b[K\n\x1b[J"
    assert redraw(["c"], 2) == "\x1b[2A\rc\x1b[K\n\x1b[J"


# -- lines for pipes and machines ---------------------------------------------------


def test_a_plain_line_says_it_all_in_words():
    failure = Failure("thing-9", "REJECTED", {"reason": "no such tool"})
    line = plain_line(snapshot(succeeded=6, rejected=1, failures=[failure]))
    assert line == (
        "job-1 IN_PROGRESS: Succeeded 6, Rejected 1; 12.0/min; 1m05s; "
        "latest failure thing-9 rejected: no such tool"
    )
    assert plain_line(snapshot(rate=None)) == "job-1 IN_PROGRESS: no executions yet; measuring; 1m05s"


def test_a_json_line_has_the_documented_keys():
    failure = Failure("thing-2", "FAILED", {"exitCode": "1"})
    line = json.loads(
        json_line(snapshot(rate=7.333, succeeded=1, failed=1, failures=[failure]), 5.0, final=True)
    )
    assert line == {
        "jobId": "job-1",
        "status": "IN_PROGRESS",
        "counts": counts(succeeded=1, failed=1),
        "rate_per_minute": 7.33,
        "failures": [{"thingName": "thing-2", "status": "FAILED", "statusDetails": {"exitCode": "1"}}],
        "at": 5.0,
        "final": True,
    }


def test_only_status_counts_and_failures_make_a_change():
    assert snapshot(rate=1.0).change_key() == snapshot(rate=2.0).change_key()
    assert snapshot(succeeded=1).change_key() != snapshot(queued=1).change_key()
    failed = [Failure("t", "FAILED", {})]
    assert snapshot(failed=1).change_key() != snapshot(failed=1, failures=failed).change_key()


# -- what a look asks of the service ------------------------------------------------


class Service:
    """Answers the three calls a watch makes, from a dict of executions, and records each call."""

    endpoint = "http://service.invalid"

    def __init__(self):
        self.executions = {}  # thing -> (status, lastUpdatedAt, statusDetails)
        self.calls = []

    def call(self, method, path, body=None, *, query=None):
        self.calls.append(path)
        if path == "/jobs/job-1":
            members = {s: 0 for s in STATUSES}
            for status, _, _ in self.executions.values():
                members[status] += 1
            details = {f"numberOf{s.title().replace('_', '')}Things": n for s, n in members.items()}
            return {"job": {"status": "IN_PROGRESS", "createdAt": 0.0, "jobProcessDetails": details}}
        if path == "/jobs/job-1/things":
            return {
                "executionSummaries": [
                    {
                        "thingArn": f"arn:aws:iot:us-east-1:123456789012:thing/{thing}",
                        "jobExecutionSummary": {"status": status, "lastUpdatedAt": at, "executionNumber": 1},
                    }
                    for thing, (status, at, _) in sorted(self.executions.items())
                    if status == query["status"]
                ]
            }
        thing = path.split("/")[2]
        status, _, said = self.executions[thing]
        return {"execution": {"status": status, "statusDetails": {"detailsMap": said}}}


def test_a_look_costs_one_describe_unless_failures_moved():
    service = Service()
    service.executions = {"a": ("QUEUED", 1.0, {}), "b": ("QUEUED", 1.0, {})}
    watcher = Watcher(service, "job-1")
    watcher.look(0.0, 10.0)
    watcher.look(1.0, 11.0)
    assert service.calls == ["/jobs/job-1", "/jobs/job-1"]
    service.calls.clear()
    service.executions["b"] = ("FAILED", 2.0, {"exitCode": "2"})
    seen = watcher.look(2.0, 12.0)
    assert service.calls == ["/jobs/job-1", "/jobs/job-1/things", "/things/b/jobs/job-1"]
    assert seen.failures == (Failure("b", "FAILED", {"exitCode": "2"}),)
    service.calls.clear()
    service.executions["a"] = ("REJECTED", 3.0, {"reason": "no"})
    seen = watcher.look(3.0, 13.0)
    # Only the rejected list is read again, and b's details are not asked twice.
    assert service.calls == ["/jobs/job-1", "/jobs/job-1/things", "/things/a/jobs/job-1"]
    assert [f.thing_name for f in seen.failures] == ["a", "b"]  # newest first
    assert seen.elapsed == 13.0


def test_at_most_five_failures_are_shown_newest_first():
    service = Service()
    service.executions = {f"t{n}": ("FAILED", float(n), {}) for n in range(8)}
    seen = Watcher(service, "job-1").look(0.0, 0.0)
    assert [f.thing_name for f in seen.failures] == ["t7", "t6", "t5", "t4", "t3"]
    assert sum(path.startswith("/things/") for path in service.calls) == 5


# -- the command line ----------------------------------------------------------------


def test_watch_states_the_credentials_rule_and_its_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["job", "watch", "--help"])
    shown = " ".join(re.sub(r"-\n\s*", "-", capsys.readouterr().out).split())
    assert "The admin key comes from IOTJOBS_ACCESS_KEY_ID and IOTJOBS_SECRET_ACCESS_KEY" in shown
    assert "0 if COMPLETED, 1 if CANCELED" in shown and "130 on Ctrl-C" in shown
    assert "--endpoint ENDPOINT, --endpoint-url ENDPOINT" in shown


def test_no_admin_key_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("IOTJOBS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("IOTJOBS_SECRET_ACCESS_KEY", raising=False)
    assert main(["job", "watch", "j", "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("iotjobs job watch: no admin key")


@pytest.mark.parametrize("interval", ["0", "-1"])
def test_the_interval_must_be_positive(interval, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["job", "watch", "j", "--interval", interval])
    assert stopped.value.code == 2
    assert f"{interval} is not a positive number of seconds" in capsys.readouterr().err
