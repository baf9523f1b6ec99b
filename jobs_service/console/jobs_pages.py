"""The console's job pages: the list, one job (live), one execution, and canceling them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ..arns import Arns
from ..engine import JobsEngine
from ..errors import InvalidRequest
from ..job_policies import rate_per_minute
from ..models import JobStatus
from ..pagination import decode_token, encode_token
from . import presentation
from .base import PREFIX, Pages, action, page, quote_segment
from .live import LiveJobs
from .sessions import SESSION_COOKIE

__all__ = ["JobPages"]


#: Rows per page of the jobs list and of a job's executions.
PAGE_ROWS = 50
#: Minutes the pace chart covers.
PACE_MINUTES = 30
_JOB_STATUSES = [status.value for status in JobStatus]
_OPEN = ("QUEUED", "IN_PROGRESS")


def _field(request: Request, name: str, limit: int = 200) -> str:
    return request.query_params.get(name, "")[:limit]


def _status_filter(request: Request, allowed: list[str] | tuple[str, ...]) -> str:
    status = _field(request, "status")
    if status and status not in allowed:
        raise InvalidRequest(f"status must be one of {', '.join(allowed)}")
    return status


class JobPages:
    def __init__(self, pages: Pages, engine: JobsEngine, arns: Arns, live: LiveJobs) -> None:
        self.pages = pages
        self.engine = engine
        self.arns = arns
        self.live = live

    def routes(self) -> list[Route]:
        return [
            Route("/jobs", self.jobs),
            Route("/jobs/{job_id}", self.job),
            Route("/jobs/{job_id}/live", self.job_live),
            Route("/jobs/{job_id}/cancel", self.confirm_cancel_job, methods=["GET"]),
            Route("/jobs/{job_id}/cancel", self.cancel_job, methods=["POST"]),
            Route("/jobs/{job_id}/things/{thing_name}", self.execution),
            Route(
                "/jobs/{job_id}/things/{thing_name}/cancel", self.confirm_cancel_execution, methods=["GET"]
            ),
            Route("/jobs/{job_id}/things/{thing_name}/cancel", self.cancel_execution, methods=["POST"]),
        ]

    # -- the list -----------------------------------------------------------
    @page(lambda self: self.pages)
    async def jobs(self, request: Request) -> Response:
        status = _status_filter(request, _JOB_STATUSES)
        text = _field(request, "q")
        after = decode_token(_field(request, "after", 1000) or None, "ConsoleJobs", float, str)
        overview = self.engine.store.overview

        def read() -> tuple[list[Any], dict[str, dict[str, int]]]:
            jobs = overview.jobs_page(
                status=JobStatus(status) if status else None,
                text=text or None,
                after=tuple(after) if after else None,
                limit=PAGE_ROWS + 1,
            )
            counts = overview.counts_of_jobs([job.job_id for job in jobs[:PAGE_ROWS]])
            return jobs, {job_id: {s.value: n for s, n in c.items()} for job_id, c in counts.items()}

        jobs, counts = await self.pages.run(read)
        next_link = None
        if len(jobs) > PAGE_ROWS:
            last = jobs[PAGE_ROWS - 1]
            token = encode_token("ConsoleJobs", [last.created_at, last.job_id])
            next_link = "?" + urlencode({"status": status, "q": text, "after": token})
        rows = [
            {
                "job": job,
                "counts": counts.get(job.job_id, {}),
                "segments": presentation.segments(counts.get(job.job_id, {})),
                "total": sum(counts.get(job.job_id, {}).values()),
            }
            for job in jobs[:PAGE_ROWS]
        ]
        return self.pages.render(
            request,
            "jobs.html",
            rows=rows,
            statuses=_JOB_STATUSES,
            status=status,
            text=text,
            next_link=next_link,
            paged=after is not None,
        )

    # -- one job ------------------------------------------------------------
    @page(lambda self: self.pages)
    async def job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        live = await self._live_parts(request, job_id)
        document = (await self.pages.api.call("GetJobDocument", {"jobId": job_id}))["document"]
        job = live["job"]
        targets = [self._target(arn) for arn in job.get("targets", [])]
        return self.pages.render(
            request,
            "job.html",
            **live,
            targets=targets,
            document=presentation.pretty_json(document),
            live_url=f"{PREFIX}/jobs/{quote_segment(job_id)}/live?{request.url.query}",
        )

    async def job_live(self, request: Request) -> Response:
        """Server-sent events: the live parts of a job's page, after each change of the job."""
        session = self.pages.keys.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return Response("Sign in first.", status_code=401)
        request.state.session = session
        job_id = request.path_params["job_id"]
        await self._live_parts(request, job_id)  # a job that does not exist is refused here, as a 404
        last: list[str] = []

        async def read() -> str | None:
            try:
                parts = await self._live_parts(request, job_id)
            except Exception:  # deleted meanwhile, or the store is away: say so once, keep the stream
                data = json.dumps({"gone": True})
            else:
                data = json.dumps(self._rendered(request, parts))
            if last and last[0] == data:
                return None
            last[:] = [data]
            return data

        return StreamingResponse(
            self.live.stream(job_id, read),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def _rendered(self, request: Request, parts: dict[str, Any]) -> dict[str, Any]:
        fragments = {}
        for name in ("summary", "pace", "abort", "executions"):
            template = self.pages.templates.get_template(f"job_{name}.html")
            fragments[f"job-{name}"] = template.render(request=request, **parts)
        return {"status": parts["job"]["status"], "parts": fragments}

    async def _live_parts(self, request: Request, job_id: str) -> dict[str, Any]:
        """Everything of a job's page that changes while it runs."""
        api = self.pages.api
        job = (await api.call("DescribeJob", {"jobId": job_id}))["job"]
        status = _status_filter(request, presentation.EXECUTION_STATUSES)
        listing: dict[str, Any] = {"jobId": job_id, "maxResults": PAGE_ROWS}
        if status:
            listing["status"] = status
        after = _field(request, "after", 1000)
        if after:
            listing["nextToken"] = after
        executions = await api.call("ListJobExecutionsForJob", listing)
        counts = presentation.counts_of(job["jobProcessDetails"])
        record = await self.pages.run(self.engine.get_job, job_id)
        now = self.engine.clock.now()
        per_minute = await self.pages.run(
            lambda: self.engine.store.overview.queued_per_minute(job_id, since=now - PACE_MINUTES * 60)
        )
        standings = await self.pages.run(self.engine.lifecycle.abort_standings, record)
        configured = rate_per_minute(
            job.get("jobExecutionsRolloutConfig"),
            notified=record.released,
            succeeded=counts["SUCCEEDED"],
        )
        rows = [
            {
                "thing": self.arns.parse_target(summary["thingArn"])[1],
                **summary["jobExecutionSummary"],
            }
            for summary in executions.get("executionSummaries", [])
        ]
        next_link = None
        if executions.get("nextToken"):
            next_link = "?" + urlencode({"status": status, "after": executions["nextToken"]})
        return {
            "job": job,
            "counts": counts,
            "total": sum(counts.values()),
            "segments": presentation.segments(counts),
            "pace": presentation.pace_chart(per_minute, now=now, minutes=PACE_MINUTES, configured=configured),
            "standings": standings,
            "rows": rows,
            "execution_status": status,
            "execution_statuses": presentation.EXECUTION_STATUSES,
            "next_link": next_link,
            "paged": bool(after),
            "open_statuses": _OPEN,
        }

    def _target(self, arn: str) -> dict[str, str]:
        kind, name = self.arns.parse_target(arn)
        section = "things" if kind == "thing" else "groups"
        return {"kind": "Thing" if kind == "thing" else "Group", "name": name, "section": section}

    # -- one execution ------------------------------------------------------
    @page(lambda self: self.pages)
    async def execution(self, request: Request) -> Response:
        job_id, thing_name = request.path_params["job_id"], request.path_params["thing_name"]
        params: dict[str, Any] = {"jobId": job_id, "thingName": thing_name}
        number = _field(request, "number")
        if number:
            if not number.isdigit():
                raise InvalidRequest("number must be an execution number")
            params["executionNumber"] = int(number)
        execution = (await self.pages.api.call("DescribeJobExecution", params))["execution"]
        attempts = await self.pages.api.call(
            "ListJobExecutionsForThing", {"thingName": thing_name, "jobId": job_id, "maxResults": 100}
        )
        details = execution.get("statusDetails", {}).get("detailsMap", {})
        return self.pages.render(
            request,
            "execution.html",
            execution=execution,
            job_id=job_id,
            thing_name=thing_name,
            details=details,
            output=[(key, details[key]) for key in ("exitCode", "stdout", "stderr") if key in details],
            others={k: v for k, v in details.items() if k not in ("exitCode", "stdout", "stderr")},
            attempts=[a["jobExecutionSummary"] for a in attempts.get("executionSummaries", [])],
            open_statuses=_OPEN,
        )

    # -- canceling ----------------------------------------------------------
    @page(lambda self: self.pages)
    async def confirm_cancel_job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        job = (await self.pages.api.call("DescribeJob", {"jobId": job_id}))["job"]
        return self.pages.render(request, "confirm_cancel_job.html", job=job)

    @action(lambda self: self.pages)
    async def cancel_job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        form = request.state.form
        params: dict[str, Any] = {"jobId": job_id, "force": form.get("force") == "on"}
        if form.get("comment"):
            params["comment"] = form["comment"]
        await self.pages.api.call("CancelJob", params)
        return RedirectResponse(f"{PREFIX}/jobs/{quote_segment(job_id)}", status_code=303)

    @page(lambda self: self.pages)
    async def confirm_cancel_execution(self, request: Request) -> Response:
        job_id, thing_name = request.path_params["job_id"], request.path_params["thing_name"]
        execution = (
            await self.pages.api.call("DescribeJobExecution", {"jobId": job_id, "thingName": thing_name})
        )["execution"]
        return self.pages.render(
            request,
            "confirm_cancel_execution.html",
            execution=execution,
            job_id=job_id,
            thing_name=thing_name,
        )

    @action(lambda self: self.pages)
    async def cancel_execution(self, request: Request) -> Response:
        job_id, thing_name = request.path_params["job_id"], request.path_params["thing_name"]
        force = request.state.form.get("force") == "on"
        await self.pages.api.call(
            "CancelJobExecution", {"jobId": job_id, "thingName": thing_name, "force": force}
        )
        return RedirectResponse(
            f"{PREFIX}/jobs/{quote_segment(job_id)}/things/{quote_segment(thing_name)}",
            status_code=303,
        )
