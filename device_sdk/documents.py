"""The job document formats of the AWS IoT Device Client, read into a plan of actions.

Two formats are understood:

* the handler format ``{"operation": NAME, "args": [...], "allowStdErr": N,
  "includeStdOut": bool, "path": "default"}``, which runs the handler ``NAME``;
* the action format ``{"version": "1.0", "steps": [{"action": {...}}], "finalStep": {...}}``
  whose actions are ``runHandler`` (``input.handler``, ``input.args``) or
  ``runCommand`` (``input.command``, comma-separated, ``\\,`` for a literal comma).

Either may carry ``"variables": {"NAME": "value"}``, passed to every process as
environment variables. A malformed document raises :class:`DocumentError`,
which the runner reports as REJECTED with the message as the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Action", "DocumentError", "Plan", "plan_from_document", "split_command"]

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DocumentError(ValueError):
    """The job document cannot be run as written; the message says why."""


@dataclass(frozen=True)
class Action:
    """One process to run: a handler from the handlers directory, or a command."""

    name: str
    type: Literal["runHandler", "runCommand"]
    program: str
    args: tuple[str, ...] = ()
    allow_stderr: int | None = None
    ignore_failure: bool = False
    run_as_user: str | None = None


@dataclass(frozen=True)
class Plan:
    """What a job document asks for: steps in order, an optional final step, and options."""

    steps: tuple[Action, ...]
    final_step: Action | None = None
    include_stdout: bool = True
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def actions(self) -> tuple[Action, ...]:
        return self.steps if self.final_step is None else (*self.steps, self.final_step)


def plan_from_document(document: dict[str, Any]) -> Plan | None:
    """The plan for ``document``, or ``None`` when it is in neither Device Client format."""
    if "steps" in document or "version" in document:
        return _action_plan(document)
    if "operation" in document:
        return _handler_plan(document)
    return None


def split_command(command: str) -> tuple[str, ...]:
    """``"echo,a\\,b"`` → ``("echo", "a,b")``: split on commas, ``\\,`` keeps a literal comma."""
    parts = [p.replace("\\,", ",") for p in re.split(r"(?<!\\),", command)]
    if not parts[0].strip():
        raise DocumentError("runCommand needs a command before the first comma")
    return tuple(parts)


def _handler_plan(document: dict[str, Any]) -> Plan:
    operation = document["operation"]
    if not isinstance(operation, str) or not operation:
        raise DocumentError("operation must be a non-empty string")
    _check_path(document.get("path"))
    action = Action(
        name=operation,
        type="runHandler",
        program=operation,
        args=_strings(document.get("args", []), "args"),
        allow_stderr=_count(document.get("allowStdErr"), "allowStdErr"),
    )
    return Plan(
        steps=(action,),
        include_stdout=_flag(document.get("includeStdOut", True), "includeStdOut"),
        variables=_variables(document.get("variables", {})),
    )


def _action_plan(document: dict[str, Any]) -> Plan:
    if document.get("version") != "1.0":
        raise DocumentError(f'job document version {document.get("version")!r} is not supported; use "1.0"')
    steps = document.get("steps")
    if not isinstance(steps, list) or not steps:
        raise DocumentError("steps must be a non-empty list of actions")
    final = document.get("finalStep")
    return Plan(
        steps=tuple(_action(step, f"steps[{i}]") for i, step in enumerate(steps)),
        final_step=_action(final, "finalStep") if final is not None else None,
        include_stdout=_flag(document.get("includeStdOut", True), "includeStdOut"),
        variables=_variables(document.get("variables", {})),
    )


def _action(step: Any, where: str) -> Action:
    action = step.get("action") if isinstance(step, dict) else None
    if not isinstance(action, dict):
        raise DocumentError(f"{where} must be an object with an action")
    name = action.get("name", where)
    if not isinstance(name, str):
        raise DocumentError(f"{where}.action.name must be a string")
    kind = action.get("type")
    given = action.get("input")
    if not isinstance(given, dict):
        raise DocumentError(f"{where}.action.input must be an object")
    common: dict[str, Any] = {
        "name": name,
        "allow_stderr": _count(action.get("allowStdErr"), f"{where}.action.allowStdErr"),
        "ignore_failure": _flag(action.get("ignoreStepFailure", False), f"{where}.action.ignoreStepFailure"),
        "run_as_user": _optional_string(action.get("runAsUser"), f"{where}.action.runAsUser"),
    }
    if kind == "runHandler":
        handler = given.get("handler")
        if not isinstance(handler, str) or not handler:
            raise DocumentError(f"{where}.action.input.handler must be a non-empty string")
        _check_path(given.get("path"))
        args = _strings(given.get("args", []), f"{where}.action.input.args")
        return Action(type="runHandler", program=handler, args=args, **common)
    if kind == "runCommand":
        command = given.get("command")
        if not isinstance(command, str) or not command:
            raise DocumentError(f"{where}.action.input.command must be a non-empty string")
        program, *rest = split_command(command)
        return Action(type="runCommand", program=program, args=tuple(rest), **common)
    raise DocumentError(f"{where}.action.type {kind!r} is not runHandler or runCommand")


def _check_path(path: Any) -> None:
    # Handlers run only from the configured directory, never from a path a job names.
    if path not in (None, "", "default"):
        raise DocumentError(f"path {path!r} is not allowed: handlers run only from the handlers directory")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DocumentError(f"{where} must be a list of strings")
    return tuple(value)


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise DocumentError(f"{where} must be a whole number of lines")


def _flag(value: Any, where: str) -> bool:
    # The Device Client writes these both as JSON booleans and as "true"/"false" strings.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise DocumentError(f"{where} must be true or false")


def _optional_string(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise DocumentError(f"{where} must be a string")


def _variables(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise DocumentError("variables must be an object of strings")
    for name, text in value.items():
        if _VARIABLE.fullmatch(name) is None or not isinstance(text, str):
            raise DocumentError(f"variable {name!r} must be a shell-style name with a string value")
    return dict(value)
