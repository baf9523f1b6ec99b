"""The jobs engine, its store, the device MQTT API and the HTTP control plane.

The public entry points are :class:`jobs_service.app.JobsService` (everything
``iotjobs serve`` runs, as one async context manager) and the ``iotjobs``
command in :mod:`iot_jobs_bridge.jobs_service.cli`. Importing this package loads nothing else,
so the engine can be used without the broker or the HTTP server.
"""

__all__: list[str] = []
