"""Model-driven routing and label decoding, without a server."""

from __future__ import annotations

import botocore.session
import pytest
import regex
from botocore.utils import percent_encode
from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge.jobs_service.errors import InvalidRequest
from iot_jobs_bridge.jobs_service.http_api.patterns import matches, translate
from iot_jobs_bridge.jobs_service.http_api.routing import Route, Router
from iot_jobs_bridge.jobs_service.http_api.service import ServiceApi


@pytest.fixture(scope="module")
def iot_router() -> Router:
    return Router.from_model(botocore.session.get_session().get_service_model("iot"))


@pytest.mark.parametrize(
    ("method", "path", "operation", "labels"),
    [
        ("PUT", "/jobs/j1", "CreateJob", {"jobId": "j1"}),
        ("PUT", "/jobs/j1/cancel", "CancelJob", {"jobId": "j1"}),
        ("GET", "/jobs/j1/job-document", "GetJobDocument", {"jobId": "j1"}),
        ("PUT", "/thing-groups/addThingToThingGroup", "AddThingToThingGroup", {}),
        (
            "POST",
            "/thing-groups/addThingToThingGroup",
            "CreateThingGroup",
            {"thingGroupName": "addThingToThingGroup"},
        ),
        ("GET", "/things/t%3A1/jobs/j1", "DescribeJobExecution", {"thingName": "t:1", "jobId": "j1"}),
        ("GET", "/destinations/arn:aws:iot:x/a/b", "GetTopicRuleDestination", {"arn": "arn:aws:iot:x/a/b"}),
    ],
)
def test_model_routes(iot_router, method, path, operation, labels):
    found = iot_router.match(method, path)

    assert found is not None
    assert (found.operation, found.labels) == (operation, labels)


def test_no_match_for_unknown_method_or_path(iot_router):
    assert iot_router.match("PATCH", "/thing-groups/addThingToThingGroup/x") is None
    assert iot_router.match("GET", "/jobs/") is None
    assert iot_router.match("GET", "/jobs/j1/") is None


def test_literal_segment_beats_label_beats_greedy_label():
    router = Router(
        [
            Route.compile("Greedy", "GET", "/a/{rest+}"),
            Route.compile("Label", "GET", "/a/{name}"),
            Route.compile("Literal", "GET", "/a/special"),
        ]
    )

    assert router.match("GET", "/a/special").operation == "Literal"
    assert router.match("GET", "/a/other").operation == "Label"
    assert router.match("GET", "/a/other/deeper").operation == "Greedy"


def test_encoded_slash_stays_inside_a_label(iot_router):
    found = iot_router.match("GET", "/things/a%2Fb/jobs")

    assert found is not None
    assert (found.operation, found.labels) == ("ListJobExecutionsForThing", {"thingName": "a/b"})


def test_label_that_is_not_utf8_is_an_invalid_request(iot_router):
    with pytest.raises(InvalidRequest, match="Path label 'thingName' is not valid percent-encoded UTF-8"):
        iot_router.match("GET", "/things/%FF/jobs")


@given(st.text(min_size=1, max_size=40))
def test_any_label_round_trips_through_botocore_encoding(name):
    router = Router([Route.compile("DescribeThing", "GET", "/things/{thingName}")])

    found = router.match("GET", "/things/" + percent_encode(name))

    assert found is not None
    assert found.labels == {"thingName": name}


def test_unknown_handler_name_is_refused_at_build_time():
    model = botocore.session.get_session().get_service_model("iot")
    with pytest.raises(ValueError, match="Not operations of iot: CreateJobb"):
        ServiceApi(model, {"CreateJobb": lambda params: None})


@pytest.mark.parametrize("service", ["iot", "iot-jobs-data"])
def test_every_model_pattern_compiles(service):
    model = botocore.session.get_session().get_service_model(service)
    patterns = {model.shape_for(name).metadata.get("pattern") for name in model.shape_names} - {None}

    for pattern in patterns:
        regex.compile(translate(pattern), regex.V1)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("[\\s\\S]*", "any\u2003thing\n", True),
        ("[\\p{Graph}\\x20]*", "plain text!", True),
        ("[\\p{Graph}\\x20]*", "café", False),
        ("[^\\p{C}]+", "café", True),
        ("[^\\p{C}]+", "line\nbreak", False),
        ("[\\w=,@-]+", "é", False),
        ("[a-zA-Z0-9_-]+|^\\$next", "$next", True),
        ("[a-zA-Z0-9_-]+", "job 1", False),
    ],
)
def test_java_pattern_semantics(pattern, value, expected):
    assert matches(pattern, value) is expected


def _scan(router: Router, method: str, path: str) -> str | None:
    """The operation a scan of every route picks: what the per-segment index must agree with."""
    best = None
    for route in router.routes:
        if route.match(method, path, {}) is not None and (best is None or route.rank < best.rank):
            best = route
    return best.operation if best else None


def test_the_route_index_picks_what_a_scan_of_every_route_picks(iot_router):
    checked = 0
    for route in iot_router.routes:
        path = regex.sub(r"\{[^{}]+\}", "x1", route.template.partition("?")[0])
        if route.query:
            continue  # query-selected routes are checked by their own cases
        found = iot_router.match(route.method, path)
        assert (found.operation if found else None) == _scan(iot_router, route.method, path), path
        checked += 1
    assert checked > 200
