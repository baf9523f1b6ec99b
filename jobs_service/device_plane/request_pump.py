"""Device requests from any transport, answered in batches that share one commit.

Requests wait in a :class:`FairQueue` (round-robin across things, bounded per
thing). The pump takes every request that is waiting, up to ``max_batch``,
answers each inside its own savepoint of one transaction, commits once, and
only then hands the replies and notifications of the whole batch to the
transport: one fsync for all of them, and nobody told before the change is
durable. A request that fails is undone alone; if the commit itself fails,
each request of the batch is answered again on its own, so each gets its own
reply (an InternalError, if the store still refuses).

Requests that arrive while a batch is answered make up the next batch, so a
quiet service answers each request at once and a busy one commits less often.

A request may come with a ``settled`` callback, called once its batch is
committed and its replies handed to the transport: a transport that takes
requests from a durable queue acknowledges them there, so a worker that dies
before that point leaves the request for another. It may also come with a
``claim``, run in the request's own transaction before it is answered: False
means the request was answered before (a redelivery after a commit whose
acknowledgement was lost), so it is settled without being answered again.

An ``answered`` observer (the metrics) is told of each request once its
replies were handed to the transport: its topic, the topic of the first
message sent for it (its ``/accepted`` or ``/rejected`` reply; None when
nothing was sent, as for a claim answered before), and the seconds since it
was put.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from .render import Message
from .request_queue import FairQueue

__all__ = ["MAX_BATCH", "QUEUE_PER_THING", "Answered", "Handler", "Request", "RequestPump"]

log = logging.getLogger(__name__)

#: Requests one thing may have waiting; more are dropped (its rate limit is long exceeded by then).
QUEUE_PER_THING = 1000
#: Requests answered in one transaction at most: bounds how long the store is held at once.
MAX_BATCH = 64

Handler = Callable[[str, bytes], list[Message]]
Settled = Callable[[], None]
Claim = Callable[[], bool]
Transaction = Callable[[], AbstractContextManager[Any]]
#: Told of each request answered: its topic, its first message's topic (None: none), seconds since put.
Answered = Callable[[str, str | None, float], None]


@dataclass(frozen=True, slots=True)
class Request:
    topic: str
    payload: bytes
    settled: Settled | None = None
    claim: Claim | None = None
    #: When it was put (``time.monotonic()``).
    received: float = 0.0


class RequestPump:
    def __init__(
        self,
        handle: Handler,
        send: Callable[[list[Message]], None],
        transaction: Transaction,
        *,
        max_batch: int = MAX_BATCH,
        per_thing: int = QUEUE_PER_THING,
        answered: Answered | None = None,
    ) -> None:
        self._handle = handle
        self._answered = answered
        self._send = send
        self._transaction = transaction
        self._max_batch = max_batch
        self._inbox: FairQueue[Request] = FairQueue(per_key_limit=per_thing)
        self._task: asyncio.Task[None] | None = None
        # Called after each batch is sent (e.g. to re-arm timers a start may have set).
        self.after_batch: Callable[[], None] = lambda: None
        self.shared_commits = 0  # batches of more than one request committed together

    def put(
        self, topic: str, payload: bytes, settled: Settled | None = None, claim: Claim | None = None
    ) -> None:
        """Queue a request; call it on the pump's event loop."""
        # The thing name is the third level; anything else shares one queue.
        parts = topic.split("/", 3)
        key = parts[2] if len(parts) > 3 else ""
        if not self._inbox.put(key, Request(topic, payload, settled, claim, time.monotonic())):
            if self._inbox.dropped % 1000 == 1:
                log.warning(
                    "Dropping requests from %r: more than %d are waiting", key, self._inbox.per_key_limit
                )
            if settled is not None:
                settled()  # dropped for good: a flood is not to be delivered again

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="device-requests")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            first = await self._inbox.get()
            batch = [first, *self._inbox.take(self._max_batch - 1)]
            answers = self._answers(batch)
            self._send([message for messages in answers for message in messages])
            if self._answered is not None:
                self._tell_answered(batch, answers)
            for request in batch:
                if request.settled is not None:
                    request.settled()
            self.after_batch()

    def answer(self, batch: Sequence[Request | tuple[str, bytes]]) -> list[Message]:
        """The messages owed for ``batch``, once what it changed is committed."""
        return [message for messages in self._answers(batch) for message in messages]

    def _answers(self, batch: Sequence[Request | tuple[str, bytes]]) -> list[list[Message]]:
        """The messages owed for each request of ``batch``, in order."""
        requests = [item if isinstance(item, Request) else Request(*item) for item in batch]
        if len(requests) > 1:
            try:
                with self._transaction():
                    # Each in a savepoint: a request that fails is undone alone.
                    answers = [self._answer_one(request, True) for request in requests]
            except Exception:
                log.exception("%d requests could not be committed together; answering each alone", len(batch))
            else:
                self.shared_commits += 1
                return answers
        # Alone, a request commits by itself, and a failed commit is its own error reply.
        return [self._answer_one(request, False) for request in requests]

    def _tell_answered(self, batch: Sequence[Request], answers: list[list[Message]]) -> None:
        assert self._answered is not None
        now = time.monotonic()
        for request, messages in zip(batch, answers, strict=True):
            try:
                self._answered(request.topic, messages[0].topic if messages else None, now - request.received)
            except Exception:
                log.exception("An observer of answered requests failed")

    def _answer_one(self, request: Request, savepoint: bool) -> list[Message]:
        try:
            if not savepoint and request.claim is None:
                return self._handle(request.topic, request.payload)
            with self._transaction():
                if request.claim is not None and not request.claim():
                    return []  # answered before: its replies went out then
                return self._handle(request.topic, request.payload)
        except Exception:
            # The handler answers errors itself; this is a bug, keep serving the others.
            log.exception("Handling %s failed", request.topic)
            return []
