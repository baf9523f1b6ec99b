"""SQL for the service clock's anchor, which the workers sharing a store agree on."""

from __future__ import annotations

from typing import NamedTuple

from .base import Repository

__all__ = ["ClockAnchor", "ServiceClockRepository"]


class ClockAnchor(NamedTuple):
    """Service time ``service`` was wall time ``wall``; it runs ``scale`` times as fast."""

    service: float
    wall: float
    scale: float


class ServiceClockRepository(Repository):
    def anchor(self) -> ClockAnchor | None:
        row = self._row("SELECT service, wall, scale FROM service_clock WHERE id = 1")
        return ClockAnchor(row["service"], row["wall"], row["scale"]) if row is not None else None

    def set_anchor(self, anchor: ClockAnchor, *, replace: bool) -> ClockAnchor:
        """Store ``anchor`` (over the one stored, if ``replace``); returns the anchor now stored."""
        with self._db.atomic():
            conflict = (
                "DO UPDATE SET service = excluded.service, wall = excluded.wall, scale = excluded.scale"
                if replace
                else "DO NOTHING"
            )
            self._execute(
                "INSERT INTO service_clock (id, service, wall, scale) VALUES (1, ?, ?, ?)"
                f" ON CONFLICT (id) {conflict}",
                tuple(anchor),
            )
            stored = self.anchor()
        assert stored is not None
        return stored
