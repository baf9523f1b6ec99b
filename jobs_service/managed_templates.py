"""The catalog of AWS-managed job templates and ``${aws:iot:parameter:NAME}`` substitution.

AWS ships a fixed set of job templates (AWS-Reboot, AWS-Download-File, ...)
whose documents follow the AWS IoT Device Client job document schema and carry
``${aws:iot:parameter:<key>}`` placeholders. ``CreateJob`` names one by its ARN,
``arn:aws:iot:{region}::jobtemplate/{name}:{version}`` (the account field is
empty), and fills the placeholders from ``documentParameters``.

The templates are package data (``managed_templates_data/*.json``), read and
checked once. This module is pure: no I/O beyond reading that data, no store.
See ``docs/managed-templates.md`` for the substitution rules and the sources.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import regex as _regex

from .errors import InvalidRequest, ResourceNotFound

__all__ = [
    "PLACEHOLDER_PREFIX",
    "ManagedTemplate",
    "TemplateParameter",
    "catalog",
    "describe_payload",
    "find",
    "load_templates",
    "parse_arn",
    "placeholders",
    "substitute",
    "summary_payload",
]

PLACEHOLDER_PREFIX = "${aws:iot:parameter:"
# Keys follow the model's ParameterKey pattern.
_PLACEHOLDER = re.compile(r"\$\{aws:iot:parameter:([a-zA-Z0-9_-]{1,128})\}")
_KEY = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_VERSION = re.compile(r"[0-9]+\.[0-9]+")
_ARN = re.compile(
    r"arn:aws:iot:(?P<region>[a-z0-9-]+)::jobtemplate/"
    r"(?P<name>[a-zA-Z0-9_-]{1,64}):(?P<version>[0-9]+\.[0-9]+)"
)
_MAX_DOCUMENT = 32768  # JobDocument max in the API model
_FILE_KEYS = frozenset(
    {"templateName", "templateVersion", "description", "environments", "documentParameters", "document"}
)
_PARAMETER_KEYS = frozenset({"key", "description", "regex", "example", "optional"})

# The patterns are Java regular expressions, applied to the whole value (Java's
# Matcher.matches(), hence fullmatch). In Java `.` stops at every line
# terminator (\n, \r, \u0085, \u2028, \u2029). Plain `.` in the `regex` module
# stops only at \n; with the WORD flag it stops at Unicode line breaks, which is
# Java's set plus VT and FF. The closer of the two, and the stricter.
_JAVA_FLAGS = _regex.V0 | _regex.WORD


@functools.cache
def _compiled(pattern: str) -> Any:
    return _regex.compile(pattern, _JAVA_FLAGS)


@dataclass(frozen=True)
class TemplateParameter:
    """One entry of ``documentParameters`` in DescribeManagedJobTemplate."""

    key: str
    description: str
    regex: str
    example: str | None
    optional: bool

    def accepts(self, value: str) -> bool:
        """Whether ``value`` matches this parameter's pattern as a whole."""
        return _compiled(self.regex).fullmatch(value) is not None


@dataclass(frozen=True)
class ManagedTemplate:
    """One version of one AWS-managed job template."""

    name: str
    version: str
    description: str
    document: str  # compact JSON text, placeholders included
    parameters: tuple[TemplateParameter, ...]
    environments: tuple[str, ...]

    @property
    def label(self) -> str:
        """``name:version``, as in the ARN; used to name the template in messages."""
        return f"{self.name}:{self.version}"

    def arn(self, region: str) -> str:
        return f"arn:aws:iot:{region}::jobtemplate/{self.name}:{self.version}"


def placeholders(document: str) -> list[str]:
    """The parameter keys of the placeholders in ``document``, in order of appearance."""
    return _PLACEHOLDER.findall(document)


# -- the catalog -------------------------------------------------------------


@functools.cache
def catalog() -> tuple[ManagedTemplate, ...]:
    """Every shipped managed template, sorted by name then version (read once)."""
    return load_templates(resources.files("iot_jobs_bridge.jobs_service") / "managed_templates_data")


def load_templates(directory: Traversable) -> tuple[ManagedTemplate, ...]:
    """Read and check every ``*.json`` template file in ``directory``.

    Bad data is a defect of the package, not of a request, so it raises
    ``ValueError`` naming the file.
    """
    templates: dict[tuple[str, str], ManagedTemplate] = {}
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        try:
            template = _parse(json.loads(entry.read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"Managed job template file {entry.name}: {exc}") from exc
        if (template.name, template.version) in templates:
            raise ValueError(f"Managed job template file {entry.name}: {template.label} is defined twice")
        templates[(template.name, template.version)] = template
    return tuple(sorted(templates.values(), key=lambda t: (t.name, _version_key(t.version))))


def _parse(data: Any) -> ManagedTemplate:
    if not isinstance(data, dict) or set(data) != _FILE_KEYS:
        raise ValueError(f"expected an object with exactly the keys {sorted(_FILE_KEYS)}")
    name, version = data["templateName"], data["templateVersion"]
    if not (isinstance(name, str) and _NAME.fullmatch(name)):
        raise ValueError(f"templateName {name!r} is not 1-64 characters of [a-zA-Z0-9_-]")
    if not (isinstance(version, str) and _VERSION.fullmatch(version)):
        raise ValueError(f"templateVersion {version!r} is not of the form N.N")
    if not isinstance(data["document"], dict):
        raise ValueError("document must be a JSON object")
    # Compact separators reproduce the document text DescribeManagedJobTemplate returns.
    document = json.dumps(data["document"], separators=(",", ":"), ensure_ascii=False)
    if len(document) > _MAX_DOCUMENT:
        raise ValueError(f"document is {len(document)} characters; the limit is {_MAX_DOCUMENT}")
    parameters = tuple(_parse_parameter(p) for p in data["documentParameters"])
    keys = [p.key for p in parameters]
    if len(set(keys)) != len(keys):
        raise ValueError(f"documentParameters repeat a key: {keys}")
    used = placeholders(document)
    if document.count(PLACEHOLDER_PREFIX) != len(used):
        raise ValueError(f"document has a malformed {PLACEHOLDER_PREFIX}...}} placeholder")
    if set(used) != set(keys):
        raise ValueError(
            f"placeholders {sorted(set(used))} and documentParameters {sorted(keys)} do not agree"
        )
    environments = data["environments"]
    if not (isinstance(environments, list) and all(isinstance(e, str) for e in environments)):
        raise ValueError("environments must be a list of strings")
    description = data["description"]
    if not isinstance(description, str):
        raise ValueError("description must be a string")
    return ManagedTemplate(
        name=name,
        version=version,
        description=description,
        document=document,
        parameters=parameters,
        environments=tuple(environments),
    )


def _parse_parameter(data: Any) -> TemplateParameter:
    if not isinstance(data, dict) or not {"key", "description", "regex", "optional"} <= set(data) <= (
        _PARAMETER_KEYS
    ):
        raise ValueError(f"documentParameter {data!r} needs key, description, regex, optional (and example)")
    key, pattern, example = data["key"], data["regex"], data.get("example")
    if not (isinstance(key, str) and _KEY.fullmatch(key)):
        raise ValueError(f"documentParameter key {key!r} is not 1-128 characters of [a-zA-Z0-9_-]")
    if not isinstance(data["description"], str) or not isinstance(data["optional"], bool):
        raise ValueError(f"documentParameter {key}: description must be a string and optional a boolean")
    if not isinstance(pattern, str) or not (example is None or isinstance(example, str)):
        raise ValueError(f"documentParameter {key}: regex and example must be strings")
    try:
        _compiled(pattern)
    except _regex.error as exc:
        raise ValueError(f"documentParameter {key}: regex {pattern} does not compile: {exc}") from exc
    parameter = TemplateParameter(
        key=key, description=data["description"], regex=pattern, example=example, optional=data["optional"]
    )
    if example is not None and not parameter.accepts(example):
        raise ValueError(f"documentParameter {key}: example {example!r} does not match {pattern}")
    return parameter


def _version_key(version: str) -> tuple[int, ...]:
    # Numeric, so 1.10 is later than 1.9.
    return tuple(int(part) for part in version.split("."))


def find(
    name: str, version: str | None = None, *, templates: Iterable[ManagedTemplate] | None = None
) -> ManagedTemplate:
    """The managed template ``name`` at ``version``, or its latest version when ``version`` is None.

    ``templates`` defaults to :func:`catalog`.
    """
    pool = catalog() if templates is None else tuple(templates)
    candidates = [t for t in pool if t.name == name and (version is None or t.version == version)]
    if not candidates:
        label = name if version is None else f"{name}:{version}"
        raise ResourceNotFound(f"Managed job template {label} does not exist")
    return max(candidates, key=lambda t: _version_key(t.version))


def parse_arn(arn: str) -> tuple[str, str, str] | None:
    """``(region, name, version)`` of a managed-template ARN, else None.

    A custom template's ARN has an account field, so it gives None. The name is
    not looked up here: an unknown name still parses, and :func:`find` reports it.
    """
    match = _ARN.fullmatch(arn)
    if match is None:
        return None
    return match["region"], match["name"], match["version"]


# -- substitution -------------------------------------------------------------


def substitute(document: str, parameters: Mapping[str, str], template: ManagedTemplate) -> str:
    """Fill the ``${aws:iot:parameter:KEY}`` placeholders of ``document`` from ``parameters``.

    Checks, in this order, each failing with ``InvalidRequest``: every key is
    declared by ``template``; every non-optional parameter is given; each value
    matches its parameter's pattern as a whole and does not itself contain
    ``${aws:iot:parameter:``. Values are inserted JSON-escaped, since every
    placeholder sits inside a JSON string literal; an optional parameter that
    was not given becomes the empty string.
    """
    declared = {p.key: p for p in template.parameters}
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise InvalidRequest(
            f"Managed job template {template.label} does not declare documentParameters: {', '.join(unknown)}"
        )
    missing = [p.key for p in template.parameters if not p.optional and p.key not in parameters]
    if missing:
        raise InvalidRequest(
            f"Managed job template {template.label} requires documentParameters: {', '.join(missing)}"
        )
    for parameter in template.parameters:
        value = parameters.get(parameter.key)
        if value is None:
            continue
        if not parameter.accepts(value):
            raise InvalidRequest(
                f"documentParameters value for {parameter.key} does not match the pattern "
                f"{parameter.regex} of managed job template {template.label}"
            )
        # A value may carry other placeholders (the guide points AWS-Download-File
        # users at S3 presigned-URL ones for private objects) but not a parameter
        # placeholder: the result would look unsubstituted.
        if PLACEHOLDER_PREFIX in value:
            raise InvalidRequest(
                f"documentParameters value for {parameter.key} contains {PLACEHOLDER_PREFIX}"
            )

    def fill(match: re.Match[str]) -> str:
        key = match[1]
        if key not in declared:
            raise ValueError(f"Document placeholder {key} is not declared by {template.label}")
        # json.dumps quotes and escapes; the quotes are already in the document.
        return json.dumps(parameters.get(key, ""), ensure_ascii=False)[1:-1]

    return _PLACEHOLDER.sub(fill, document)


# -- control-plane payloads ----------------------------------------------------


def describe_payload(t: ManagedTemplate, region: str) -> dict[str, Any]:
    """The DescribeManagedJobTemplate response body."""
    return {
        "templateName": t.name,
        "templateArn": t.arn(region),
        "description": t.description,
        "templateVersion": t.version,
        "environments": list(t.environments),
        "documentParameters": [_parameter_payload(p) for p in t.parameters],
        "document": t.document,
    }


def summary_payload(t: ManagedTemplate, region: str) -> dict[str, Any]:
    """One ``managedJobTemplates`` item of the ListManagedJobTemplates response."""
    return {
        "templateArn": t.arn(region),
        "templateName": t.name,
        "description": t.description,
        "environments": list(t.environments),
        "templateVersion": t.version,
    }


def _parameter_payload(p: TemplateParameter) -> dict[str, Any]:
    payload: dict[str, Any] = {"key": p.key, "description": p.description, "regex": p.regex}
    if p.example is not None:  # absent fields are left out, never null
        payload["example"] = p.example
    payload["optional"] = p.optional
    return payload
