"""The console's pages of the fleet and the recurring work: things, groups, schedules, templates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..pagination import decode_token, encode_token
from ..schedules import Schedules
from ..store import Store
from . import presentation
from .base import Pages, page

__all__ = ["FleetPages"]

PAGE_ROWS = 50


def _query(request: Request, name: str, limit: int = 1000) -> str:
    return request.query_params.get(name, "")[:limit]


def _next(params: dict[str, str]) -> str:
    return "?" + urlencode(params)


class FleetPages:
    def __init__(self, pages: Pages, store: Store, schedules: Schedules) -> None:
        self.pages = pages
        self.store = store
        self.schedules = schedules

    def routes(self) -> list[Route]:
        return [
            Route("/things", self.things),
            Route("/things/{name}", self.thing),
            Route("/groups", self.groups),
            Route("/groups/{name}", self.group),
            Route("/schedules", self.schedule_list),
            Route("/schedules/{name}", self.schedule),
            Route("/templates", self.template_list),
            Route("/templates/{template_id}", self.template),
        ]

    async def _names(self, request: Request, kind: str, read: Callable[..., list[str]]) -> dict[str, Any]:
        """One page of thing or group names, found by text."""
        text = _query(request, "q", 200)
        after = decode_token(_query(request, "after") or None, f"Console{kind}", str)
        names = await self.pages.run(lambda: read(text=text or None, after=after, limit=PAGE_ROWS + 1))
        next_link = None
        if len(names) > PAGE_ROWS:
            next_link = _next({"q": text, "after": encode_token(f"Console{kind}", names[PAGE_ROWS - 1])})
        return {"names": names[:PAGE_ROWS], "text": text, "next_link": next_link, "paged": after is not None}

    # -- things ---------------------------------------------------------------
    @page(lambda self: self.pages)
    async def things(self, request: Request) -> Response:
        found = await self._names(request, "Things", self.store.overview.thing_names)
        return self.pages.render(request, "things.html", **found)

    @page(lambda self: self.pages)
    async def thing(self, request: Request) -> Response:
        name = request.path_params["name"]
        api = self.pages.api
        thing = await api.call("DescribeThing", {"thingName": name})
        groups = await api.call("ListThingGroupsForThing", {"thingName": name, "maxResults": 100})
        listing: dict[str, Any] = {"thingName": name, "maxResults": PAGE_ROWS}
        if _query(request, "after"):
            listing["nextToken"] = _query(request, "after")
        executions = await api.call("ListJobExecutionsForThing", listing)
        token = executions.get("nextToken")
        return self.pages.render(
            request,
            "thing.html",
            thing=thing,
            groups=[g["groupName"] for g in groups.get("thingGroups", [])],
            executions=[
                {"jobId": e["jobId"], **e["jobExecutionSummary"]}
                for e in executions.get("executionSummaries", [])
            ],
            next_link=_next({"after": token}) if token else None,
            paged=bool(_query(request, "after")),
        )

    # -- groups ---------------------------------------------------------------
    @page(lambda self: self.pages)
    async def groups(self, request: Request) -> Response:
        found = await self._names(request, "Groups", self.store.overview.group_names)
        return self.pages.render(request, "groups.html", **found)

    @page(lambda self: self.pages)
    async def group(self, request: Request) -> Response:
        name = request.path_params["name"]
        api = self.pages.api
        group = await api.call("DescribeThingGroup", {"thingGroupName": name})
        listing: dict[str, Any] = {"thingGroupName": name, "maxResults": PAGE_ROWS, "recursive": True}
        if _query(request, "after"):
            listing["nextToken"] = _query(request, "after")
        members = await api.call("ListThingsInThingGroup", listing)
        children = await self.pages.run(self.store.registry.child_groups, name)
        token = members.get("nextToken")
        return self.pages.render(
            request,
            "group.html",
            group=group,
            members=members.get("things", []),
            children=children,
            next_link=_next({"after": token}) if token else None,
            paged=bool(_query(request, "after")),
        )

    # -- schedules ------------------------------------------------------------
    @page(lambda self: self.pages)
    async def schedule_list(self, request: Request) -> Response:
        after = _query(request, "after", 200) or None
        schedules = await self.pages.run(
            lambda: self.schedules.list_schedules(after=after, limit=PAGE_ROWS + 1)
        )
        next_link = _next({"after": schedules[PAGE_ROWS - 1].name}) if len(schedules) > PAGE_ROWS else None
        return self.pages.render(
            request,
            "schedules.html",
            schedules=schedules[:PAGE_ROWS],
            next_link=next_link,
            paged=after is not None,
        )

    @page(lambda self: self.pages)
    async def schedule(self, request: Request) -> Response:
        name = request.path_params["name"]
        schedule = await self.pages.run(self.schedules.describe, name)
        history = await self.pages.run(lambda: self.schedules.history(name, limit=50))
        spec = schedule.spec
        return self.pages.render(
            request,
            "schedule.html",
            schedule=schedule,
            targets=spec.get("targets") or [],
            document=presentation.pretty_json(spec["document"]) if spec.get("document") else None,
            template=spec.get("jobTemplateArn"),
            history=history,
        )

    # -- templates ------------------------------------------------------------
    @page(lambda self: self.pages)
    async def template_list(self, request: Request) -> Response:
        listing: dict[str, Any] = {"maxResults": PAGE_ROWS}
        if _query(request, "after"):
            listing["nextToken"] = _query(request, "after")
        templates = await self.pages.api.call("ListJobTemplates", listing)
        managed = await self.pages.api.call("ListManagedJobTemplates", {"maxResults": 100})
        token = templates.get("nextToken")
        return self.pages.render(
            request,
            "templates.html",
            templates=templates.get("jobTemplates", []),
            managed=managed.get("managedJobTemplates", []),
            next_link=_next({"after": token}) if token else None,
            paged=bool(_query(request, "after")),
        )

    @page(lambda self: self.pages)
    async def template(self, request: Request) -> Response:
        template = await self.pages.api.call(
            "DescribeJobTemplate", {"jobTemplateId": request.path_params["template_id"]}
        )
        document = template.get("document")
        return self.pages.render(
            request,
            "template.html",
            template=template,
            document=presentation.pretty_json(document) if document else None,
        )
