"""Mosquitto ACL files from the registry: who may use which topics. Pure functions.

Mosquitto knows a certificate client by the certificate's common name (the
TLS listener sets ``use_identity_as_username``), so every certificate gets a
``user <CN>`` section:

* with no policy attached, the per-thing rule of `broker.acl` for each thing
  it is attached to: publish the four request topics, read the jobs subtree;
* with policies, their statements translated into Mosquitto's terms.

Mosquitto matches MQTT filters, not AWS's ``*``/``?`` globs, and has no notion
of a client id in a user's own rules, so the translation is exact for the
common shapes (a ``*`` filling a level, read as ``+`` in the middle and ``#``
at the end; ``${iot:Connection.Thing.ThingName}``) and otherwise errs on the
safe side: an Allow it cannot express is dropped, a Deny it cannot express is
widened to the whole subtree where its wildcard starts, and a Deny of any
action denies every action on its topics (a Mosquitto ``deny`` line). Policy
variables stand for the certificate's things, since on AWS a device's client
id is its thing name. ``iot:Connect`` is not checked by Mosquitto.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from iot_jobs_bridge.broker.policy import Statement, action_matches
from iot_jobs_bridge.schemas.topics import REQUEST_PATHS

__all__ = [
    "FULL_ACCESS",
    "MosquittoUser",
    "Rule",
    "acl_file",
    "anonymous_thing_patterns",
    "policy_rules",
    "thing_rules",
]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_TOPIC_KINDS = {"iot:Publish": "topic", "iot:Receive": "topic", "iot:Subscribe": "topicfilter"}

# (access, topic filter): access is "read", "write", "readwrite" or "deny".
Rule = tuple[str, str]


# The service's own account (and monitoring tools using the admin key).
FULL_ACCESS: tuple[Rule, ...] = (("readwrite", "#"), ("readwrite", "$aws/#"), ("read", "$SYS/#"))


@dataclass(frozen=True)
class MosquittoUser:
    """A Mosquitto username and the rules it gets."""

    username: str
    rules: tuple[Rule, ...]


def acl_file(users: Iterable[MosquittoUser], patterns: Iterable[Rule] = ()) -> str:
    """The text of a Mosquitto ``acl_file``: ``pattern`` lines, then a section per user."""
    lines = ["# Written by iotjobs serve from its registry; changes here are overwritten."]
    lines += [f"pattern {access} {topic}" for access, topic in patterns]
    for user in users:
        if any(c in user.username for c in "\n\r") or not user.username.strip():
            continue  # such a name cannot be written to the file, so it gets no rights
        lines += ["", f"user {user.username}"]
        lines += [f"topic {access} {topic}" for access, topic in user.rules]
    return "\n".join(lines) + "\n"


def thing_rules(thing: str) -> list[Rule]:
    """The per-thing default: publish its request topics, read its jobs subtree."""
    prefix = f"$aws/things/{thing}/jobs"
    return [("read", f"{prefix}/#")] + [("write", f"{prefix}/{request}") for request in REQUEST_PATHS]


def anonymous_thing_patterns() -> list[Rule]:
    """`thing_rules` for clients known only by their client id (the plain listener)."""
    return thing_rules("%c")


def policy_rules(statements: tuple[Statement, ...], things: tuple[str, ...], prefix: str) -> list[Rule]:
    """AWS IoT policy statements as Mosquitto rules, for a certificate attached to ``things``."""
    allow: dict[str, list[str]] = {action: [] for action in _TOPIC_KINDS}
    denied: list[str] = []
    for statement in statements:
        for action, kind in _TOPIC_KINDS.items():
            if not any(action_matches(pattern, action) for pattern in statement.actions):
                continue
            deny = statement.effect == "Deny"
            for resource in statement.resources:
                for name in _names(resource, kind, prefix, things, deny=deny):
                    if deny:
                        denied.append(_widen(name))
                    elif (narrowed := _narrow(name, filters=kind == "topicfilter")) is not None:
                        allow[action].append(narrowed)
    readable = _intersection(allow["iot:Subscribe"], allow["iot:Receive"])
    writable = allow["iot:Publish"]
    rules: list[Rule] = [("deny", topic) for topic in _with_dollar(denied)]
    read, write = _with_dollar(readable), _with_dollar(writable)
    for topic in dict.fromkeys(read + write):
        access = "readwrite" if topic in read and topic in write else "read" if topic in read else "write"
        rules.append((access, topic))
    return rules


def _names(resource: str, kind: str, prefix: str, things: tuple[str, ...], *, deny: bool) -> list[str]:
    """The topic (or filter) globs a resource names for ``kind``, variables filled in.

    For a Deny, a resource whose wildcards reach past the ARN's kind
    (``arn:aws:iot:*``) names everything, and a variable with no thing to stand
    for (the client id could be anything) becomes ``*``.
    """
    if resource == "*":
        glob = "*"
    else:
        marker = f":{kind}/"
        at = resource.find(marker)
        every_resource = resource.endswith(":*") and _glob_matches(resource[:-2], prefix)
        # A wildcard before the resource type (`arn:aws:iot:*`, `...:top*`) may stand for this kind.
        parts = resource.split(":", 5)
        names_a_kind = len(parts) == 6 and re.match(r"[a-z]+/", parts[5]) is not None
        reaches_past_kind = at < 0 and not names_a_kind and ("*" in resource or "?" in resource)
        if at >= 0 and _glob_matches(resource[:at], prefix):
            glob = resource[at + len(marker) :]
        elif every_resource or (deny and reaches_past_kind):
            glob = "*"
        else:
            return []
    if not _VARIABLE.search(glob):
        return [glob]
    if deny and not things:
        return [_VARIABLE.sub("*", glob)]
    return [_VARIABLE.sub(thing, glob) for thing in things]


def _glob_matches(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _narrow(glob: str, *, filters: bool) -> str | None:
    """An MQTT filter matching only topics the glob matches, or None if there is no useful one.

    In a topic name ``+`` and ``#`` are literal characters on AWS, which no
    topic holds, so an Allow naming them allows nothing. A trailing ``*`` level
    becomes ``#``, which also matches the parent topic itself (``a`` for
    ``a/*``): the one place a translated Allow is wider, kept because
    Mosquitto checks a subscription to ``a/#`` against it.
    """
    if not filters and ("+" in glob or "#" in glob):
        return None
    levels = glob.split("/")
    out = []
    for index, level in enumerate(levels):
        if level == "*":
            out.append("#" if index == len(levels) - 1 else "+")
        elif "*" in level or "?" in level:
            return None
        else:
            out.append(level)
    return "/".join(out)


def _widen(glob: str) -> str:
    """An MQTT filter matching every topic the glob matches (and perhaps more).

    A ``*`` filling a whole level is read as that one level, as in `_narrow`:
    ``$aws/things/*/jobs/get`` means any thing, and thing names hold no ``/``.
    """
    levels = glob.split("/")
    out = []
    for index, level in enumerate(levels):
        if level == "*" and index < len(levels) - 1:
            out.append("+")
        elif "*" in level or "?" in level:
            out.append("#")
            break
        else:
            out.append(level)
    return "/".join(out)


def _with_dollar(filters: list[str]) -> list[str]:
    """Add `$aws/...` twins of filters starting with a wildcard: Mosquitto's `#` skips `$` topics."""
    out: list[str] = []
    for topic in filters:
        out.append(topic)
        first, _, rest = topic.partition("/")
        if first == "#":
            out.append("$aws/#")
        elif first == "+":
            out.append(f"$aws/{rest}")
    return list(dict.fromkeys(out))


def _intersection(first: list[str], second: list[str]) -> list[str]:
    """Filters (from either list) whose topics both lists allow."""
    kept = [a for a in first if any(_covers(b, a) for b in second)]
    kept += [b for b in second if any(_covers(a, b) for a in first)]
    return list(dict.fromkeys(kept))


def _covers(wide: str, narrow: str) -> bool:
    """Whether every topic ``narrow`` matches is matched by ``wide``."""
    wide_levels, narrow_levels = wide.split("/"), narrow.split("/")
    for index, level in enumerate(wide_levels):
        if level == "#":
            return True
        if index >= len(narrow_levels) or narrow_levels[index] == "#":
            return False
        if level != "+" and level != narrow_levels[index]:
            return False
    return len(wide_levels) == len(narrow_levels)
