"""What devices and watchers are told of an engine outcome: its events, rendered as the service does."""

from iot_jobs_bridge.jobs_service.arns import Arns
from iot_jobs_bridge.jobs_service.device_plane import Renderer

told = Renderer(Arns()).render
