"""The operator console at ``/console/``: server-rendered pages, a little script, live job pages.

Pages read and change everything through the control plane's own handlers
(:class:`.api.LocalApi`), so the console can do nothing the API refuses and
words refusals as the API does. Sign-in takes the admin key (:mod:`.sessions`);
live pages follow the engine's committed changes (:mod:`.live`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import Executor
from pathlib import Path

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..arns import Arns
from ..engine import JobsEngine
from ..http_api.service import Handler, ServiceApi
from ..schedules import Schedules
from .api import LocalApi
from .auth_pages import SignIn
from .base import PREFIX, Pages, SecurityHeaders
from .fleet_pages import FleetPages
from .job_form import CreateJobPage
from .jobs_pages import JobPages
from .live import LiveJobs
from .sessions import SessionKeys

__all__ = ["PREFIX", "Console"]


async def _to_jobs(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/jobs", status_code=303)


class Console:
    """The console's routes over one service's handlers; call :meth:`close` before the server stops."""

    def __init__(
        self,
        *,
        access_key_id: str,
        secret_access_key: str,
        handlers: Mapping[str, Handler],
        engine: JobsEngine,
        schedules: Schedules,
        arns: Arns,
        worker: Executor,
        refresh: float | None = None,
    ) -> None:
        """``refresh``: seconds between reads of a watched job besides its changes (for shared stores)."""
        self.live = LiveJobs(asyncio.get_running_loop(), refresh=refresh)
        engine.core.observe(self.live.observe)
        api = LocalApi(ServiceApi.for_service("iot", handlers), worker)
        pages = Pages(SessionKeys(access_key_id, secret_access_key), api, Pages.environment(), worker)
        self._sign_in = SignIn(pages)
        self._jobs = JobPages(pages, engine, arns, self.live)
        self._create = CreateJobPage(pages, engine.store, arns)
        self._fleet = FleetPages(pages, engine.store, schedules)

    def routes(self) -> list[BaseRoute]:
        sign_in = self._sign_in
        inner: list[BaseRoute] = [
            Route("/", _to_jobs),
            Route("/sign-in", sign_in.form, methods=["GET"]),
            Route("/sign-in", sign_in.submit, methods=["POST"]),
            Route("/sign-out", sign_in.sign_out, methods=["POST"]),
            *self._create.routes(),  # before /jobs/{job_id}, which would take "new"
            *self._jobs.routes(),
            *self._fleet.routes(),
            Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
        ]
        return [
            Route(PREFIX, _to_jobs),
            Mount(PREFIX, routes=inner, middleware=[Middleware(SecurityHeaders)]),
        ]

    def close(self) -> None:
        """End the live streams, so that the server's shutdown does not wait for them."""
        self.live.close()
