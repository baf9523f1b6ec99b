"""``/schedules``: recurring schedules over JSON, behind the same SigV4 check as the control plane.

AWS has no recurring jobs, so there is no botocore model to route by; these
few routes are matched here. Bodies and answers use the control plane's
camelCase and error style (``x-amzn-ErrorType``, ``message``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from iot_jobs_bridge.jobs_service.errors import InvalidRequest, ResourceNotFound
from iot_jobs_bridge.jobs_service.json_input import read_json
from iot_jobs_bridge.jobs_service.schedules import NewSchedule, Schedules
from iot_jobs_bridge.jobs_service.store import Schedule

__all__ = ["SchedulesApi"]

_ONE = re.compile(r"/schedules/([^/]+)")
_HISTORY = re.compile(r"/schedules/([^/]+)/history")
# JSON body keys -> NewSchedule fields.
_FIELDS = {
    "cron": "cron",
    "timezone": "timezone",
    "targets": "targets",
    "document": "document",
    "jobTemplateArn": "template_arn",
    "documentParameters": "parameters",
    "settings": "settings",
    "misfire": "misfire",
    "overlap": "overlap",
    "enabled": "enabled",
}


class SchedulesApi:
    def __init__(self, schedules: Schedules) -> None:
        self._schedules = schedules

    @staticmethod
    def handles(path: str) -> bool:
        return path == "/schedules" or path.startswith("/schedules/")

    def __call__(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        """Answer one request; raises the service's errors for the gateway to render."""
        if path == "/schedules" and method == "GET":
            return {"schedules": [_render(s) for s in self._schedules.list_schedules()]}
        history = _HISTORY.fullmatch(path)
        if history and method == "GET":
            return {"fires": self._schedules.history(history[1])}
        one = _ONE.fullmatch(path)
        if one is None:
            raise ResourceNotFound(f"No schedules operation matches {method} {path}")
        name = one[1]
        if method == "GET":
            return _render(self._schedules.describe(name))
        if method == "DELETE":
            self._schedules.delete(name)
            return {}
        fields = _fields(body)
        if method == "POST":
            if "cron" not in fields or "targets" not in fields:
                raise InvalidRequest("A schedule needs cron and targets")
            return _render(self._schedules.create(NewSchedule(name=name, **fields)))
        if method == "PATCH":
            return _render(self._schedules.update(name, fields))
        raise ResourceNotFound(f"No schedules operation matches {method} {path}")


def _fields(body: bytes) -> dict[str, Any]:
    data = read_json(body or b"{}", what="Request body")
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise InvalidRequest(f"Unknown schedule fields: {', '.join(unknown)}")
    if "document" in data and not isinstance(data["document"], str):
        # An object is accepted as the document itself; read strictly, it holds no NaN.
        data["document"] = json.dumps(data["document"], allow_nan=False)
    return {_FIELDS[key]: value for key, value in data.items()}


def _render(schedule: Schedule) -> dict[str, Any]:
    spec = schedule.spec
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "targets": spec.get("targets"),
        "document": spec.get("document"),
        "jobTemplateArn": spec.get("jobTemplateArn"),
        "documentParameters": spec.get("documentParameters") or None,
        "settings": spec.get("settings") or None,
        "misfire": schedule.misfire,
        "overlap": schedule.overlap,
        "enabled": schedule.enabled,
        "createdAt": schedule.created_at,
        "nextFireTime": schedule.next_fire_at if schedule.enabled else None,
    }
