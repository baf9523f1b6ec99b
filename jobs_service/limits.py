"""Device-plane limits: list caps, payload size and the per-thing request rate."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeviceLimits"]


@dataclass(frozen=True)
class DeviceLimits:
    """What one device may ask of the service, and how much it is told at once (spec §8, §12.2)."""

    # QUEUED executions in a GetPendingJobExecutions reply (every IN_PROGRESS one is listed).
    queued_in_pending: int = 10
    # Executions in one notify (ListNotification), IN_PROGRESS first.
    notify_entries: int = 10
    # Larger request payloads are refused unread (the AWS IoT message limit).
    max_payload_bytes: int = 128 * 1024
    # Sustained requests per second per thing, and the burst above it, before RequestThrottled.
    requests_per_second: float = 20.0
    request_burst: int = 40
