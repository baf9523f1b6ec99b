"""The console's create-job form, turned into CreateJob's input.

Numbers are passed on as numbers when they read as such and as the text typed
otherwise, so that CreateJob's own validation words every refusal, as it does
for boto3. Only what the form's layout adds (which targets are picked, which
rows are filled) is read here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..arns import Arns
from ..errors import JobsError
from ..store import Store
from .base import PREFIX, Pages, action, page, quote_segment

__all__ = ["CreateJobPage", "create_job_params"]

#: Abort and retry criteria rows the form offers.
ABORT_ROWS = 3
RETRY_ROWS = 2
#: Things and groups offered for picking; more are entered by ARN.
PICK_LIMIT = 500


def _number(text: str) -> Any:
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def create_job_params(form: Mapping[str, str], arns: Arns) -> dict[str, Any]:
    """CreateJob's input from the form's fields (see ``create_job.html``)."""
    params: dict[str, Any] = {"jobId": form.get("jobId", "").strip()}
    targets = [arns.thing(name) for name in _lines(form.get("things", ""))]
    targets += [arns.thing_group(name) for name in _lines(form.get("groups", ""))]
    targets += _lines(form.get("moreTargets", ""))
    params["targets"] = list(dict.fromkeys(targets))
    if form.get("description", "").strip():
        params["description"] = form["description"].strip()
    params["targetSelection"] = form.get("targetSelection") or "SNAPSHOT"
    if form.get("source") == "template":
        params["jobTemplateArn"] = form.get("template", "")
        parameters = {}
        for line in _lines(form.get("parameters", "")):
            key, _, value = line.partition("=")
            parameters[key.strip()] = value.strip()
        if parameters:
            params["documentParameters"] = parameters
    else:
        params["document"] = form.get("document", "")
    rollout: dict[str, Any] = {}
    if form.get("maximumPerMinute", "").strip():
        rollout["maximumPerMinute"] = _number(form["maximumPerMinute"])
    if form.get("baseRatePerMinute", "").strip():
        criterion = form.get("increaseCriterion") or "numberOfNotifiedThings"
        rollout["exponentialRate"] = {
            "baseRatePerMinute": _number(form["baseRatePerMinute"]),
            "incrementFactor": _number(form.get("incrementFactor", "")),
            "rateIncreaseCriteria": {criterion: _number(form.get("increaseAfter", ""))},
        }
    if rollout:
        params["jobExecutionsRolloutConfig"] = rollout
    criteria = [
        {
            "failureType": form[f"abortType{i}"],
            "action": "CANCEL",
            "thresholdPercentage": _number(form.get(f"abortThreshold{i}", "")),
            "minNumberOfExecutedThings": _number(form.get(f"abortMin{i}", "")),
        }
        for i in range(ABORT_ROWS)
        if form.get(f"abortType{i}")
    ]
    if criteria:
        params["abortConfig"] = {"criteriaList": criteria}
    if form.get("inProgressTimeout", "").strip():
        params["timeoutConfig"] = {"inProgressTimeoutInMinutes": _number(form["inProgressTimeout"])}
    retries = [
        {"failureType": form[f"retryType{i}"], "numberOfRetries": _number(form.get(f"retryCount{i}", ""))}
        for i in range(RETRY_ROWS)
        if form.get(f"retryType{i}")
    ]
    if retries:
        params["jobExecutionsRetryConfig"] = {"criteriaList": retries}
    return params


class CreateJobPage:
    def __init__(self, pages: Pages, store: Store, arns: Arns) -> None:
        self.pages = pages
        self.store = store
        self.arns = arns

    def routes(self) -> list[Route]:
        return [
            Route("/jobs/new", self.form, methods=["GET"]),
            Route("/jobs/new", self.submit, methods=["POST"]),
        ]

    async def _choices(self) -> dict[str, Any]:
        overview = self.store.overview
        things = await self.pages.run(lambda: overview.thing_names(text=None, after=None, limit=PICK_LIMIT))
        groups = await self.pages.run(lambda: overview.group_names(text=None, after=None, limit=PICK_LIMIT))
        templates = await self.pages.api.call("ListJobTemplates", {"maxResults": 250})
        return {
            "thing_choices": things,
            "group_choices": groups,
            "template_choices": [
                (t["jobTemplateArn"], t["jobTemplateId"]) for t in templates.get("jobTemplates", [])
            ],
            "abort_rows": range(ABORT_ROWS),
            "retry_rows": range(RETRY_ROWS),
        }

    @page(lambda self: self.pages)
    async def form(self, request: Request) -> Response:
        values: dict[str, str] = {"document": '{\n  "operation": "reboot"\n}'}
        template = request.query_params.get("template", "")[:200]
        if template:
            values.update(source="template", template=self.arns.job_template(template))
        return self.pages.render(
            request, "create_job.html", values=values, message="", **await self._choices()
        )

    @action(lambda self: self.pages)
    async def submit(self, request: Request) -> Response:
        form: dict[str, str] = request.state.form
        try:
            result = await self.pages.api.call("CreateJob", create_job_params(form, self.arns))
        except JobsError as error:
            return self.pages.render(
                request,
                "create_job.html",
                http_status=error.http_status,
                values=form,
                message=error.message,
                **await self._choices(),
            )
        return RedirectResponse(f"{PREFIX}/jobs/{quote_segment(result['jobId'])}", status_code=303)
