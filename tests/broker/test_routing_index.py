"""The topic tree routes exactly as amqtt's filter-by-filter test does."""

import itertools

from amqtt.broker import Broker
from hypothesis import given, settings
from hypothesis import strategies as st

from iot_jobs_bridge.broker.routing import SubscriptionIndex

LEVELS = st.sampled_from(["a", "b", "$aws", "things", "", "jobs"])
FILTER_LEVELS = st.one_of(LEVELS, st.just("+"))


@st.composite
def filters(draw):
    levels = draw(st.lists(FILTER_LEVELS, min_size=1, max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels)


topics = st.lists(LEVELS, min_size=1, max_size=5).map("/".join)


def stock_matches(topic: str, topic_filter: str) -> bool:
    # amqtt 0.12.1's own rule, called unbound (it only uses self for logging).
    class _Quiet:
        class logger:
            @staticmethod
            def debug(*_args):
                return None

    return Broker._matches(_Quiet(), topic, topic_filter)


@settings(max_examples=400)
@given(st.lists(filters(), max_size=12), st.lists(topics, min_size=1, max_size=8), st.data())
def test_matching_equals_the_stock_rule_through_adds_and_removes(all_filters, all_topics, data):
    index = SubscriptionIndex()
    present: set[str] = set()
    for topic_filter in all_filters:
        index[topic_filter] = []
        present.add(topic_filter)
    for topic_filter in data.draw(st.lists(st.sampled_from(sorted(present)), max_size=4)) if present else []:
        if topic_filter in index:
            del index[topic_filter]
            present.discard(topic_filter)
    for topic in all_topics:
        expected = {f for f in present if stock_matches(topic, f)}
        assert set(index.matching(topic)) == expected, (topic, present)


def test_dollar_topics_skip_leading_wildcards():
    index = SubscriptionIndex()
    for topic_filter in ("#", "+/things/t1", "$aws/#", "$aws/things/+"):
        index[topic_filter] = []
    assert sorted(index.matching("$aws/things/t1")) == ["$aws/#", "$aws/things/+"]
    assert sorted(index.matching("plain/things/t1")) == ["#", "+/things/t1"]


def test_a_parent_multi_level_wildcard_matches_the_parent_itself():
    index = SubscriptionIndex()
    index["a/#"] = []
    assert index.matching("a") == ["a/#"]
    assert index.matching("a/b/c") == ["a/#"]
    assert index.matching("b") == []


def test_every_way_of_removing_keeps_the_tree_in_step():
    index = SubscriptionIndex()
    for name in ("a/b", "a/+", "c"):
        index.setdefault(name, [])
    index.pop("a/b")
    assert index.matching("a/b") == ["a/+"]
    index.update({"d/e": []})
    assert index.matching("d/e") == ["d/e"]
    key, _ = index.popitem()
    assert key == "d/e" and index.matching("d/e") == []
    index.clear()
    assert index.matching("a/x") == [] and len(index) == 0
    assert index.pop("missing", None) is None


def test_repr_does_not_walk_the_fleet():
    index = SubscriptionIndex()
    for n in range(1000):
        index[f"$aws/things/t{n}/jobs/notify"] = []
    assert repr(index) == "<SubscriptionIndex of 1000 filters>"


def test_removing_a_filter_prunes_only_its_own_branch():
    index = SubscriptionIndex()
    names = ["a/b/c", "a/b", "a/b/c/d"]
    for name in names:
        index[name] = []
    for removed in itertools.permutations(names, 2):
        fresh = SubscriptionIndex()
        for name in names:
            fresh[name] = []
        for name in removed:
            del fresh[name]
        (left,) = set(names) - set(removed)
        assert fresh.matching(left) == [left]
