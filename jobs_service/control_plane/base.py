"""What every group of control-plane handlers shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..arns import Arns
from ..certificates import Certificates
from ..domain_events import DomainEvent
from ..engine import JobsEngine, Outcome
from ..errors import ResourceNotFound
from ..models import ExecutionStatus
from ..pagination import encode_token, page_size
from ..policies import Policies
from ..registry import Registry
from ..templates import Templates

__all__ = ["Handler", "HandlerBase", "Params", "Services", "page", "status_filter"]

Params = dict[str, Any]
Handler = Callable[[Params], dict[str, Any] | None]


@dataclass(frozen=True)
class Services:
    """What the handler families work with: one set for the whole control plane."""

    engine: JobsEngine
    registry: Registry
    templates: Templates
    arns: Arns
    # Tells the device plane of committed changes (the outcome's domain events).
    announce: Callable[[list[DomainEvent]], None]
    after_delete: Callable[[], None] = lambda: None
    certificates: Certificates | None = None
    policies: Policies | None = None


class HandlerBase:
    """One family of control-plane handlers; `ControlPlane` composes them."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.engine = services.engine
        self.registry = services.registry
        self.templates = services.templates
        self.arns = services.arns
        self._announce = services.announce
        self._after_delete = services.after_delete

    def handlers(self) -> dict[str, Handler]:
        """This family's operations, by their names in the AWS API model."""
        raise NotImplementedError

    def group_id_to_name(self, group_id: str) -> str:
        group = self.registry.store.registry.get_group_by_id(group_id)
        if group is None:
            raise ResourceNotFound(f"Thing group with id {group_id} does not exist")
        return group.name

    def _sent(self, outcome: Outcome) -> Any:
        """Announce the outcome's events (the change is committed) and return its value."""
        if outcome.events:
            self._announce(outcome.events)
        return outcome.value


def page(
    operation: str, items: list[Any], params: Params, key: Callable[[Any], Any]
) -> tuple[list[Any], str | None]:
    """Cut one page from ``items`` fetched with one extra row; the token encodes the last key."""
    limit = page_size(params.get("maxResults"))
    if len(items) > limit:
        return items[:limit], encode_token(operation, key(items[limit - 1]))
    return items, None


def status_filter(value: str | None) -> ExecutionStatus | None:
    return ExecutionStatus(value) if value is not None else None
