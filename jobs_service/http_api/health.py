"""``GET /health``: whether the service can do its work, for load balancers and supervisors.

Unauthenticated, on the control-plane port. 200 with ``{"status": "ok",
"broker": "ok", "store": "ok", ...}`` when every part answers; 503 with
``"status": "failing"`` and the failing part's entry saying what is wrong
otherwise. Each check is a callable that returns ``None`` when its part is
fine, or a sentence naming the problem; a check that raises, or takes longer
than ``within`` (:data:`CHECK_WITHIN`), counts as failing.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["CHECK_WITHIN", "Check", "Health"]

log = logging.getLogger(__name__)

Check = Callable[[], str | None]
#: Seconds a check has to answer (a store stuck behind a lock must not hang the health check).
CHECK_WITHIN = 2.0


class Health:
    """The ``/health`` endpoint over named checks (``broker``, ``store``)."""

    def __init__(
        self,
        checks: Mapping[str, Check],
        *,
        version: str | None = None,
        within: float = CHECK_WITHIN,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks = dict(checks)
        self._within = within
        self._version = version or _installed_version()
        self._monotonic = monotonic
        self._started = monotonic()
        self._failing: dict[str, str | None] = {}

    async def respond(self, request: Request) -> Response:
        """The endpoint: 200 or 503, with each part's state."""
        results = await asyncio.gather(*(self._run(name, check) for name, check in self._checks.items()))
        parts = dict(zip(self._checks, results, strict=True))
        healthy = all(result == "ok" for result in results)
        body: dict[str, Any] = {
            "status": "ok" if healthy else "failing",
            **parts,
            "version": self._version,
            "uptimeSeconds": int(self._monotonic() - self._started),
        }
        return JSONResponse(body, status_code=200 if healthy else 503, headers={"Cache-Control": "no-store"})

    async def _run(self, name: str, check: Check) -> str:
        # In a worker thread: a check may wait on the store's lock.
        try:
            problem = await asyncio.wait_for(asyncio.to_thread(check), self._within)
        except TimeoutError:
            problem = f"no answer within {self._within:g} s"
        except Exception as exc:
            problem = f"check failed: {exc}"
        # Logged when a part starts or stops failing, not on every probe.
        before = self._failing.get(name)
        if problem is not None and before is None:
            log.warning("health: %s is failing: %s", name, problem, extra={"part": name, "reason": problem})
        elif problem is None and before is not None:
            log.info("health: %s is ok again", name, extra={"part": name})
        self._failing[name] = problem
        return "ok" if problem is None else problem


def _installed_version() -> str:
    try:
        return importlib.metadata.version("iot-jobs-bridge")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
