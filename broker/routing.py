"""Subscription lookup in a topic tree, so routing a message does not scan every filter.

amqtt keeps subscriptions in a dict ``filter -> [(session, qos), ...]`` and, for
each message, tests the topic against every filter in it. `SubscriptionIndex`
is that same dict (amqtt keeps using it as one) with a tree of filter levels
kept beside it: `matching(topic)` walks only the branches the topic can reach,
so its cost follows the topic's depth and the filters that match, not the size
of the fleet.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SubscriptionIndex"]


class _Node:
    __slots__ = ("children", "filter")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.filter: str | None = None  # the whole filter that ends at this node, if any


class SubscriptionIndex(dict[str, Any]):
    """amqtt's ``Broker._subscriptions`` dict, with a topic tree over its keys.

    Every way of adding or removing a key keeps the tree in step; values (the
    subscriber lists amqtt appends to) are not looked at.
    """

    def __init__(self) -> None:
        super().__init__()
        self._root = _Node()

    def matching(self, topic: str) -> list[str]:
        """The filters that match ``topic`` under MQTT 3.1.1 rules.

        As in amqtt's ``Broker._matches``: a topic starting with ``$`` never
        matches a filter whose first level is ``+`` or ``#`` [MQTT-4.7.2-1], and
        ``a/#`` also matches ``a``.
        """
        levels = topic.split("/")
        found: list[str] = []
        self._walk(self._root, levels, 0, topic.startswith("$"), found)
        return found

    def _walk(self, node: _Node, levels: list[str], depth: int, dollar: bool, found: list[str]) -> None:
        if depth == len(levels):
            if node.filter is not None:
                found.append(node.filter)
            rest = node.children.get("#")
            if rest is not None and rest.filter is not None:
                found.append(rest.filter)
            return
        if not (dollar and depth == 0):
            rest = node.children.get("#")
            if rest is not None and rest.filter is not None:
                found.append(rest.filter)
            one = node.children.get("+")
            if one is not None:
                self._walk(one, levels, depth + 1, dollar, found)
        exact = node.children.get(levels[depth])
        if exact is not None:
            self._walk(exact, levels, depth + 1, dollar, found)

    # -- keeping the tree in step with the dict -------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self:
            self._insert(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._remove(key)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            value = super().pop(key)
            self._remove(key)
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self) -> tuple[str, Any]:
        key, value = super().popitem()
        self._remove(key)
        return key, value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        super().clear()
        self._root = _Node()

    def __repr__(self) -> str:
        # amqtt logs repr(self._subscriptions) at debug level after every SUBSCRIBE, and
        # the f-string is built even when debug is off: keep it from costing O(fleet).
        return f"<SubscriptionIndex of {len(self)} filters>"

    def _insert(self, topic_filter: str) -> None:
        node = self._root
        for level in topic_filter.split("/"):
            node = node.children.setdefault(level, _Node())
        node.filter = topic_filter

    def _remove(self, topic_filter: str) -> None:
        path: list[tuple[_Node, str]] = []
        node = self._root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                return
            path.append((node, level))
            node = child
        node.filter = None
        for parent, level in reversed(path):  # prune branches left empty
            child = parent.children[level]
            if child.filter is not None or child.children:
                break
            del parent.children[level]
