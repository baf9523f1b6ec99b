"""Whole-packet reading: valid traffic passes unchanged, malformed PUBLISH topics are refused."""

import asyncio

import pytest
from amqtt.adapters import StreamReaderAdapter

from iot_jobs_bridge.broker.framing import CheckedReader, publish_topic_problem

from . import raw_mqtt


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "its topic is missing"),
        (b"\x00\x05ab", "its topic is cut short"),
        (b"\x00\x00payload", "its topic is empty"),
        (b"\x00\x03a/+", "its topic has a wildcard"),
        (b"\x00\x03a/#", "its topic has a wildcard"),
        (b"\x00\x02\xff\xfe", "its topic is not UTF-8"),
        (b"\x00\x03a\x00b", "its topic has a NUL character"),
        (b"\x00\x03a/bpayload", None),
    ],
)
def test_publish_topic_problems_are_named(body, problem):
    assert publish_topic_problem(body) == problem


class _Writer:
    _writer = None  # no transport to abort in this test


def test_valid_packets_pass_through_byte_for_byte():
    stream = (
        raw_mqtt.connect("t1")
        + raw_mqtt.subscribe(1, "a/+")
        + raw_mqtt.publish(b"a/b", b"x" * 300)  # a two-byte remaining length
    )

    async def scenario():
        inner = asyncio.StreamReader()
        inner.feed_data(stream)
        inner.feed_eof()
        reader = CheckedReader(StreamReaderAdapter(inner), _Writer())
        out = b""
        for size in (1, 1, 10, 7, 50):
            out += await reader.read(size)
        out += await reader.read(len(stream) - len(out))
        return out

    assert asyncio.run(scenario()) == stream


def test_a_malformed_publish_reads_as_the_end_of_the_stream():
    async def scenario():
        inner = asyncio.StreamReader()
        inner.feed_data(raw_mqtt.publish(b"a/#", b"{}") + raw_mqtt.publish(b"a/b", b"{}"))
        reader = CheckedReader(StreamReaderAdapter(inner), _Writer())
        with pytest.raises(asyncio.IncompleteReadError):
            await reader.read(1)
        with pytest.raises(asyncio.IncompleteReadError):
            await reader.read(1)  # and stays ended

    asyncio.run(scenario())
