"""How ``iotjobs serve`` logs: the operator's loggers, and the text and JSON formats.

The lines an operator acts on go to a few loggers with stable names, so they
can be filtered on (``grep 'iotjobs.jobs'``, or the ``logger`` field in JSON):

* ``iotjobs.jobs``: a job created, started, its paced rollout started and
  fully released, completed, canceled, aborted (WARNING, with the reason) or
  deleted; an execution timed out (WARNING);
* ``iotjobs.schedules``: a schedule fired (the job it created) or skipped a fire;
* ``iotjobs.devices``: an MQTT connection refused, with the reason, or closed
  because its access was withdrawn; connects and disconnects (with the
  reason) at DEBUG;
* ``iotjobs.access``: one line per control-plane request, at DEBUG, or at
  INFO with ``--access-log``.

Everything else is the software's own: ``iot_jobs_bridge.<module>`` (bounds
reached, errors), ``amqtt`` and ``uvicorn`` (WARNING and above).

Structured fields travel in ``extra=`` (``job_id``, ``thing``, ``reason``, ...):
the JSON format writes them as fields of the line's object; the text format
leaves them out, because each message already says them in words.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

__all__ = [
    "ACCESS",
    "DEVICES",
    "JOBS",
    "LOG_FORMATS",
    "SCHEDULES",
    "TEXT_FORMAT",
    "JsonFormatter",
    "setup_logging",
]

JOBS = "iotjobs.jobs"
SCHEDULES = "iotjobs.schedules"
DEVICES = "iotjobs.devices"
ACCESS = "iotjobs.access"

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What every LogRecord carries; anything else on a record came in through `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",  # Python 3.12 adds it to every record
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (ISO 8601, UTC), level, logger, message, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # `default=str`: a field that is not JSON (a path, an enum) is still written, never dropped.
        return json.dumps(line, default=str, ensure_ascii=False)


def setup_logging(level: str, log_format: str = "text", stream: TextIO | None = None) -> None:
    """Send every log line to ``stream`` (stderr) in ``log_format``, from ``level`` up.

    amqtt (and `transitions`, its state machines) and uvicorn log every
    connection at INFO or DEBUG: they are kept to WARNING and above, whatever ``level``.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = max(logging.WARNING, root.level)
    for name in ("amqtt", "transitions", "uvicorn"):
        logging.getLogger(name).setLevel(quiet)


def _utc(created: float) -> str:
    moment = dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")
