"""Map an HTTP method and raw path to an operation of a rest-json service model.

Each operation's ``requestUri`` template (``/jobs/{jobId}/cancel``,
``/destinations/{arn+}``) becomes an anchored regular expression over the *raw*
(still percent-encoded) path, so an encoded ``/`` inside a label never splits
it. When several templates match, the one whose leftmost differing segment is a
literal wins over a label, and a label wins over a greedy label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from iot_jobs_bridge.jobs_service.errors import InvalidRequest

__all__ = ["Route", "RouteMatch", "Router"]

_LABEL = re.compile(r"\{([^{}]+)\}")

# Segment ranks: lower is more specific.
_LITERAL, _PLAIN_LABEL, _GREEDY_LABEL = 0, 1, 2


@dataclass(frozen=True)
class RouteMatch:
    """A matched operation and its percent-decoded URI labels (keyed by label name)."""

    operation: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Route:
    """One compiled ``requestUri`` template of one operation."""

    operation: str
    method: str
    template: str
    regex: re.Pattern[str]
    labels: tuple[str, ...]
    rank: tuple[int, ...]
    # Literal query parameters a template may carry (``/x?versions``): name -> value or None.
    query: tuple[tuple[str, str | None], ...]

    @classmethod
    def compile(cls, operation: str, method: str, template: str) -> Route:
        """Compile ``template`` (a model ``requestUri``) for ``method``."""
        path, _, query_part = template.partition("?")
        pieces: list[str] = []
        labels: list[str] = []
        position = 0
        for found in _LABEL.finditer(path):
            pieces.append(re.escape(path[position : found.start()]))
            name = found.group(1)
            greedy = name.endswith("+")
            labels.append(name.rstrip("+"))
            pieces.append("(.+)" if greedy else "([^/]+)")
            position = found.end()
        pieces.append(re.escape(path[position:]))
        rank = tuple(_segment_rank(segment) for segment in path.split("/")[1:])
        query = tuple(_literal_query(query_part))
        return cls(
            operation, method.upper(), template, re.compile("".join(pieces)), tuple(labels), rank, query
        )

    def match(self, method: str, raw_path: str, query_keys: Mapping[str, str]) -> dict[str, str] | None:
        """Return the still-encoded labels if this route serves the request, else None."""
        if method != self.method:
            return None
        found = self.regex.fullmatch(raw_path)
        if found is None:
            return None
        for name, value in self.query:
            if name not in query_keys or (value is not None and query_keys[name] != value):
                return None
        return dict(zip(self.labels, found.groups(), strict=True))


class Router:
    """All routes of one service; :meth:`match` picks the most specific one."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes = tuple(routes)
        # Routes by method and literal first segment, so a request is tried against a few, not all;
        # a template whose first segment holds a label is tried for every path.
        self._by_head: dict[tuple[str, str], list[Route]] = {}
        self._anywhere: list[Route] = []
        for route in self._routes:
            head = _first_segment(route.template.partition("?")[0])
            if "{" in head:
                self._anywhere.append(route)
            else:
                self._by_head.setdefault((route.method, head), []).append(route)

    @classmethod
    def from_model(cls, service_model: Any) -> Router:
        """Build the routes of every operation in a botocore ``ServiceModel``."""
        routes = []
        for name in service_model.operation_names:
            http = service_model.operation_model(name).http
            routes.append(Route.compile(name, http.get("method", "POST"), http["requestUri"]))
        return cls(routes)

    @property
    def routes(self) -> Sequence[Route]:
        return self._routes

    def match(self, method: str, raw_path: str, query: Sequence[tuple[str, str]] = ()) -> RouteMatch | None:
        """Find the operation for ``method`` and the raw (percent-encoded) ``raw_path``.

        Labels come back percent-decoded as UTF-8; a label that is not valid
        UTF-8 once decoded is an :class:`InvalidRequest`.
        """
        query_keys = dict(reversed(query))  # first occurrence wins
        method = method.upper()
        candidates = (*self._by_head.get((method, _first_segment(raw_path)), ()), *self._anywhere)
        best: tuple[Route, dict[str, str]] | None = None
        for route in candidates:
            labels = route.match(method, raw_path, query_keys)
            if labels is not None and (best is None or route.rank < best[0].rank):
                best = (route, labels)
        if best is None:
            return None
        route, raw_labels = best
        return RouteMatch(
            route.operation, {name: _decode_label(name, raw) for name, raw in raw_labels.items()}
        )


def _first_segment(path: str) -> str:
    return path.split("/", 2)[1] if path.startswith("/") else path


def _segment_rank(segment: str) -> int:
    if "{" not in segment:
        return _LITERAL
    return _GREEDY_LABEL if "+}" in segment else _PLAIN_LABEL


def _literal_query(query_part: str) -> Iterable[tuple[str, str | None]]:
    for pair in filter(None, query_part.split("&")):
        name, sep, value = pair.partition("=")
        yield name, (value if sep else None)


def _decode_label(name: str, raw: str) -> str:
    # The raw path is latin-1 decoded bytes; going back to bytes first keeps
    # unencoded UTF-8 and %-escapes on the same footing.
    try:
        return unquote_to_bytes(raw.encode("latin-1")).decode("utf-8")
    except UnicodeError as exc:
        raise InvalidRequest(f"Path label '{name}' is not valid percent-encoded UTF-8") from exc
