"""AWS IoT policy documents, evaluated for one connection's actions. Pure functions.

A policy is JSON with statements of ``Effect`` (Allow or Deny), ``Action``
(``iot:Connect``, ``iot:Publish``, ``iot:Subscribe``, ``iot:Receive``, or
``iot:*``; ``*`` and ``?`` wildcards) and ``Resource`` (ARNs such as
``arn:aws:iot:us-east-1:123456789012:topic/$aws/things/t1/jobs/*``, with the
same wildcards and the variables ``${iot:Connection.Thing.ThingName}`` and
``${iot:ClientId}``). An explicit Deny wins; without a matching Allow the
action is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = ["PolicyError", "Statement", "action_matches", "allowed", "parse_policy", "resource_arn"]

_ACTIONS = ("iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_KNOWN_VARIABLES = ("iot:Connection.Thing.ThingName", "iot:ClientId")


class PolicyError(ValueError):
    """A policy document that cannot be used; the message names the problem."""


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]


def parse_policy(document: str) -> tuple[Statement, ...]:
    """The statements of a policy document; raises `PolicyError` naming what is wrong."""
    try:
        data = json.loads(document)
    except ValueError as exc:
        raise PolicyError("The policy document is not valid JSON") from exc
    if not isinstance(data, dict) or "Statement" not in data:
        raise PolicyError("The policy document needs a Statement")
    raw = data["Statement"]
    statements = raw if isinstance(raw, list) else [raw]
    return tuple(_statement(s, n) for n, s in enumerate(statements))


def resource_arn(prefix: str, action: str, name: str) -> str:
    """The ARN an action is checked against: client/…, topic/… or topicfilter/…."""
    kind = {"iot:Connect": "client", "iot:Subscribe": "topicfilter"}.get(action, "topic")
    return f"{prefix}:{kind}/{name}"


def allowed(statements: tuple[Statement, ...], action: str, resource: str, variables: dict[str, str]) -> bool:
    """Whether ``statements`` allow ``action`` on ``resource`` (explicit Deny wins)."""
    verdict = False
    for statement in statements:
        if not any(action_matches(pattern, action) for pattern in statement.actions):
            continue
        if not any(_matches(pattern, resource, variables) for pattern in statement.resources):
            continue
        if statement.effect == "Deny":
            return False
        verdict = True
    return verdict


def action_matches(pattern: str, action: str) -> bool:
    """Whether a statement's action pattern (``iot:*``, ``iot:Pub*``...) covers ``action``."""
    return _matches(pattern, action, {})


def _statement(data: Any, index: int) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(data, dict):
        raise PolicyError(f"{where} must be an object")
    effect = data.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{where}.Effect must be Allow or Deny")
    actions, resources = (
        _strings(data.get("Action"), f"{where}.Action"),
        _strings(data.get("Resource"), where),
    )
    for action in actions:
        if not any(_matches(action, known, {}) for known in _ACTIONS):
            raise PolicyError(f"{where}.Action {action!r} names no action this broker checks")
    for resource in resources:
        for name in _VARIABLE.findall(resource):
            if name not in _KNOWN_VARIABLES:
                raise PolicyError(f"{where}.Resource uses the unsupported variable ${{{name}}}")
    return Statement(effect, actions, resources)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise PolicyError(f"{where} must be a string or a non-empty list of strings")
    return tuple(values)


def _matches(pattern: str, value: str, variables: dict[str, str]) -> bool:
    expanded = _VARIABLE.sub(lambda m: variables.get(m[1], "\x00unset\x00"), pattern)
    return _compiled(expanded).fullmatch(value) is not None


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)
