"""What the console's pages show: statuses in words, the stacked bar, the pace chart, the form's input."""

from iot_jobs_bridge.jobs_service.arns import Arns
from iot_jobs_bridge.jobs_service.console import presentation
from iot_jobs_bridge.jobs_service.console.job_form import create_job_params


def test_statuses_read_as_words():
    assert presentation.label("TIMED_OUT") == "Timed out"
    assert presentation.label("IN_PROGRESS") == "In progress"


def test_counts_cover_every_status():
    counts = presentation.counts_of({"numberOfSucceededThings": 6, "numberOfFailedThings": 1})
    assert counts["SUCCEEDED"] == 6 and counts["FAILED"] == 1
    assert set(counts) == set(presentation.EXECUTION_STATUSES)
    assert sum(counts.values()) == 7


def test_the_bar_stacks_statuses_in_order_across_the_whole_width():
    parts = presentation.segments({"FAILED": 1, "SUCCEEDED": 2, "QUEUED": 1, "REMOVED": 0})
    assert [(p.status, p.count) for p in parts] == [("QUEUED", 1), ("SUCCEEDED", 2), ("FAILED", 1)]
    assert [p.start for p in parts] == [0, 25, 75]
    assert sum(p.width for p in parts) == 100
    assert presentation.segments({}) == []


def test_the_pace_chart_has_a_bar_per_minute_and_the_configured_line():
    now = 60 * 1000 + 30  # half way through minute 1000
    chart = presentation.pace_chart([(998, 4), (999, 10), (1000, 2)], now=now, minutes=5, configured=20)
    assert [bar[3] for bar in chart.bars] == [0, 0, 4, 10, 2]
    assert chart.recent == 10 and chart.peak == 10
    assert chart.configured_y == 0  # the configured rate is the top of the scale
    assert chart.bars[3][1] == chart.height / 2  # 10 of 20
    unpaced = presentation.pace_chart([], now=now, minutes=3)
    assert unpaced.configured_y is None and unpaced.peak == 0


def test_documents_are_indented_and_text_left_alone():
    assert presentation.pretty_json('{"a":[1]}') == '{\n  "a": [\n    1\n  ]\n}'
    assert presentation.pretty_json("not json") == "not json"
    assert presentation.when(None) == ""
    assert presentation.when(0) == "1970-01-01 00:00:00"


def test_the_form_becomes_create_jobs_input():
    arns = Arns()
    params = create_job_params(
        {
            "jobId": " j1 ",
            "things": "t1\nt2",
            "groups": "g",
            "moreTargets": arns.thing("t1") + "\n" + arns.thing("t3"),
            "document": '{"a": 1}',
            "maximumPerMinute": "10",
            "baseRatePerMinute": "2",
            "incrementFactor": "1.5",
            "increaseCriterion": "numberOfSucceededThings",
            "increaseAfter": "5",
            "abortType0": "FAILED",
            "abortThreshold0": "12.5",
            "abortMin0": "10",
            "abortType1": "",
            "abortThreshold1": "99",
            "inProgressTimeout": "soon",
            "retryType1": "TIMED_OUT",
            "retryCount1": "3",
        },
        arns,
    )
    assert params["jobId"] == "j1"
    assert params["targets"] == [arns.thing("t1"), arns.thing("t2"), arns.thing_group("g"), arns.thing("t3")]
    assert params["document"] == '{"a": 1}'
    assert params["jobExecutionsRolloutConfig"] == {
        "maximumPerMinute": 10,
        "exponentialRate": {
            "baseRatePerMinute": 2,
            "incrementFactor": 1.5,
            "rateIncreaseCriteria": {"numberOfSucceededThings": 5},
        },
    }
    assert params["abortConfig"] == {
        "criteriaList": [
            {
                "failureType": "FAILED",
                "action": "CANCEL",
                "thresholdPercentage": 12.5,
                "minNumberOfExecutedThings": 10,
            }
        ]
    }
    # Text that is no number goes to CreateJob as typed, so that its validation words the refusal.
    assert params["timeoutConfig"] == {"inProgressTimeoutInMinutes": "soon"}
    assert params["jobExecutionsRetryConfig"] == {
        "criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 3}]
    }


def test_a_template_replaces_the_document():
    params = create_job_params(
        {
            "jobId": "j",
            "source": "template",
            "template": "arn:t",
            "parameters": "a=1\n b = two \n\n",
            "document": "{}",
        },
        Arns(),
    )
    assert "document" not in params
    assert params["jobTemplateArn"] == "arn:t"
    assert params["documentParameters"] == {"a": "1", "b": "two"}
