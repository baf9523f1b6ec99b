"""Replies are delivered while other clients subscribe and unsubscribe, as SDK clients do per request."""

import contextlib
import json
import threading

from ..clients import subscribe


def test_every_request_is_answered_while_another_device_changes_its_subscriptions(connect):
    sender, churner = connect("sender"), connect("churner")
    stop = threading.Event()
    changes = []

    def churn():
        # IotJobsClientV2 subscribes to "<request topic>/+" before each request and
        # unsubscribes when it needs the slot for another one.
        while not stop.is_set():
            topic_filter = f"{churner.prefix}/job-{len(changes)}/get/+"
            assert not subscribe(churner.client, topic_filter)[0].is_failure
            churner.client.unsubscribe(topic_filter)
            changes.append(topic_filter)

    thread = threading.Thread(target=churn, daemon=True)
    tokens = [f"request-{i}" for i in range(300)]
    replies_topics = (sender.topic("get/accepted"), sender.topic("get/rejected"))
    mark = sender.settle()
    thread.start()
    try:
        # Throttled or not, each request is owed exactly one reply.
        for token in tokens:
            sender.client.publish(sender.topic("get"), json.dumps({"clientToken": token}), qos=1)
        with contextlib.suppress(AssertionError):  # what is missing is counted below
            sender.wait_since(mark, lambda m: m[0] in replies_topics, count=len(tokens), timeout=5)
    finally:
        stop.set()
        thread.join(15)
    sender.request("get")  # once nothing changes any more, a later reply: nothing else is on its way
    answered = [json.loads(p).get("clientToken") for t, p in sender.since(mark) if t in replies_topics]
    answered = [token for token in answered if token in tokens]
    assert changes, "no subscription changed meanwhile"
    assert len(answered) == len(tokens), (
        f"{len(tokens) - len(answered)} of {len(tokens)} requests got no reply"
    )
    assert sorted(answered) == sorted(tokens)
