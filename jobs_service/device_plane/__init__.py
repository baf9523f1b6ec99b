"""The device plane: the engine's domain events rendered to MQTT topics and payloads."""

from __future__ import annotations

from .render import Message, Renderer

__all__ = ["Message", "Renderer"]
