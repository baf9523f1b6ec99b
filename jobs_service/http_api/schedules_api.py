"""``/schedules``: recurring schedules over JSON, behind the same SigV4 check as the control plane.

AWS has no recurring jobs, so there is no botocore model to route by; these
few routes are matched here. Bodies and answers use the control plane's
camelCase and error style (``x-amzn-ErrorType``, ``message``). What a schedule
shares with CreateJob (targets, document or template, the job settings) is read
and checked against CreateJob's model, so it is refused with CreateJob's errors
when the schedule is created or changed, not when it fires.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from iot_jobs_bridge.jobs_service.errors import InvalidRequest, ResourceNotFound
from iot_jobs_bridge.jobs_service.http_api.params import parse_members
from iot_jobs_bridge.jobs_service.http_api.service import load_service_model
from iot_jobs_bridge.jobs_service.http_api.validation import check_members
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
# The schedule's own fields and the JSON type each takes.
_TYPES: dict[str, tuple[type, str]] = {
    "cron": (str, "string"),
    "timezone": (str, "string"),
    "misfire": (str, "string"),
    "overlap": (str, "string"),
    "enabled": (bool, "boolean"),
}
# CreateJob members a schedule body holds at its top level, and inside "settings".
_JOB_MEMBERS = ("targets", "document", "jobTemplateArn", "documentParameters")
_JOB_SETTINGS = ("jobExecutionsRolloutConfig", "abortConfig", "timeoutConfig", "jobExecutionsRetryConfig")
# Fields a PATCH may clear with null; a missing one is empty.
_CLEARABLE: dict[str, Any] = {
    "document": None,
    "jobTemplateArn": None,
    "documentParameters": {},
    "settings": {},
}
_SHOWN_MAX = 200


class SchedulesApi:
    """The ``/schedules`` routes; ``changed`` runs after a schedule is created or changed.

    The service passes the scheduler's wake-up there, so a new, changed or
    enabled schedule fires on time instead of after the scheduler's idle recheck.
    """

    def __init__(self, schedules: Schedules, changed: Callable[[], None] = lambda: None) -> None:
        self._schedules = schedules
        self._changed = changed

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
        if method == "POST":
            fields = _fields(body)
            if "cron" not in fields or "targets" not in fields:
                raise InvalidRequest("A schedule needs cron and targets")
            created = self._schedules.create(NewSchedule(name=name, **fields))
            self._changed()
            return _render(created)
        if method == "PATCH":
            changed = self._schedules.update(name, _fields(body))
            self._changed()
            return _render(changed)
        raise ResourceNotFound(f"No schedules operation matches {method} {path}")


def _fields(body: bytes) -> dict[str, Any]:
    """The NewSchedule fields a body gives, each of the type it must have."""
    data = read_json(body or b"{}", what="Request body")
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise InvalidRequest(f"Unknown schedule fields: {', '.join(unknown)}")
    if data.get("document") is not None and not isinstance(data["document"], str):
        # An object is accepted as the document itself; read strictly, it holds no NaN.
        data["document"] = json.dumps(data["document"], allow_nan=False)
    for key, (kind, name) in _TYPES.items():
        if key in data and not isinstance(data[key], kind):
            raise _bad_type(data[key], key, name)
    data.update(_job_members(data))
    for key, empty in _CLEARABLE.items():
        if key in data and data[key] is None:
            data[key] = empty
    return {_FIELDS[key]: value for key, value in data.items()}


def _job_members(data: dict[str, Any]) -> dict[str, Any]:
    """The body's CreateJob members, typed and checked as CreateJob's own body is."""
    members = load_service_model("iot").operation_model("CreateJob").input_shape.members
    top = {key: members[key] for key in _JOB_MEMBERS}
    found = parse_members(top, {key: data[key] for key in _JOB_MEMBERS if key in data})
    check_members(top, found)
    settings = data.get("settings")
    if settings is None:
        return found
    if not isinstance(settings, dict):
        raise _bad_type(settings, "settings", "structure")
    inside = {key: members[key] for key in _JOB_SETTINGS}
    typed = parse_members(inside, settings, "settings.")
    check_members(inside, typed, "settings.")
    # Keys CreateJob's settings do not have stay, for the schedule to refuse by name.
    others = {key: value for key, value in settings.items() if key not in inside}
    return {**found, "settings": {**others, **typed}}


def _bad_type(value: Any, path: str, kind: str) -> InvalidRequest:
    shown = f"'{value}'" if isinstance(value, str) else json.dumps(value)
    if len(shown) > _SHOWN_MAX:
        shown = shown[:_SHOWN_MAX] + "..."
    return InvalidRequest(f"Value {shown} at '{path}' is not a valid {kind}")


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
