"""``iotjobs job watch JOB_ID``: one job, live in the terminal, until it ends.

A client of the control plane like any operator's script. Each look costs one
DescribeJob, whose counts drive the view; the latest failures are listed
(ListJobExecutionsForJob) and described (DescribeJobExecution) only when a
failed, timed-out or rejected count moved, so watching a large rollout stays
cheap for the server. On a terminal the view is redrawn in place; in a pipe
it is one line per change, or with ``--json`` one JSON object per change.

Exit codes: 0 when the job ends COMPLETED; 1 when it ends CANCELED or
DELETION_IN_PROGRESS, does not exist (or is deleted while watched), or the
service refuses the request; 2 for a missing admin key or an endpoint that does
not answer the first look; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from .control_client import ControlClient, ServiceError, Unreachable, segment
from .credentials import CREDENTIALS_HELP, client_admin_key
from .watch_view import (
    ENDED,
    Failure,
    Rate,
    Snapshot,
    counts_of,
    finished,
    frame,
    json_line,
    plain_line,
    redraw,
)

__all__ = ["EXIT_INTERRUPTED", "EXIT_NOT_COMPLETED", "Watcher", "add_arguments", "run_job_command"]

EXIT_NOT_COMPLETED = 1
EXIT_INTERRUPTED = 130  # as a shell reports a command ended by SIGINT
SHOWN_FAILURES = 5
_FAILURE_STATUSES = ("FAILED", "TIMED_OUT", "REJECTED")
# With more failures of one status than this, the latest are looked for among the first ones by name.
_FAILURE_PAGES = 4
# Answers that say "not now" rather than "no": a watch that already showed the job carries on.
_TRANSIENT = frozenset({"ThrottlingException", "InternalFailureException", "ServiceUnavailableException"})


def add_arguments(job: argparse.ArgumentParser) -> None:
    """The actions of ``iotjobs job`` and their options."""
    job.description = f"Watch jobs from the terminal. {CREDENTIALS_HELP}"
    actions = job.add_subparsers(dest="action", required=True)
    watch = actions.add_parser(
        "watch",
        help="follow one job live until it ends",
        description="Shows one job live (status, executions by status, rate, latest failures) and exits "
        "when it ends: 0 if COMPLETED, 1 if CANCELED, being deleted or not found, 130 on Ctrl-C. "
        f"{CREDENTIALS_HELP}",
    )
    watch.add_argument("job_id", metavar="JOB_ID")
    watch.add_argument(
        "--endpoint",
        "--endpoint-url",
        dest="endpoint",
        default="http://127.0.0.1:8080",
        help="control plane URL (default %(default)s)",
    )
    watch.add_argument(
        "--interval", type=_seconds, default=1.0, help="seconds between looks (default %(default)g)"
    )
    watch.add_argument(
        "--json", action="store_true", help="one JSON object per line per change, and one when it ends"
    )
    watch.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./data"),
        help="the server's data dir, where the admin key is stored (default ./data)",
    )
    watch.add_argument("--region", default="us-east-1", help="region to sign for (default %(default)s)")


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


class Watcher:
    """Looks at one job: one DescribeJob per look; failures re-read only when their counts moved."""

    def __init__(self, client: ControlClient, job_id: str) -> None:
        self._client = client
        self.job_id = job_id
        self.endpoint = client.endpoint
        self._rate = Rate()
        self._counted: dict[str, int] = {}
        # Per failure status, its latest executions, newest first.
        self._failed: dict[str, list[_Failed]] = {}
        # What each held execution's device said, by (thing, execution number): it does not change.
        self._said: dict[tuple[str, int], dict[str, str]] = {}

    def look(self, now: float, wall: float) -> Snapshot:
        """The job now; ``now`` is monotonic time (for the rate), ``wall`` epoch seconds (for elapsed)."""
        job: dict[str, Any] = self._client.call("GET", f"/jobs/{segment(self.job_id)}")["job"]
        counts = counts_of(job.get("jobProcessDetails", {}))
        moved = [s for s in _FAILURE_STATUSES if counts[s] != self._counted.get(s, 0)]
        for status in moved:
            self._failed[status] = self._latest(status) if counts[status] else []
            self._counted[status] = counts[status]
        held = sorted(
            (entry for entries in self._failed.values() for entry in entries),
            key=lambda entry: entry.updated_at,
            reverse=True,
        )
        if moved:
            self._said = {(e.failure.thing_name, e.number): e.failure.status_details for e in held}
        ended = job["status"] in ENDED
        until = (job.get("completedAt") or job.get("lastUpdatedAt")) if ended else None
        return Snapshot(
            job_id=self.job_id,
            status=job["status"],
            counts=counts,
            rate_per_minute=self._rate.add(now, finished(counts)),
            elapsed=max(0.0, float(until or wall) - float(job.get("createdAt", wall))),
            failures=tuple(entry.failure for entry in held[:SHOWN_FAILURES]),
        )

    def _latest(self, status: str) -> list[_Failed]:
        summaries: list[dict[str, Any]] = []
        query = {"status": status, "maxResults": "250"}
        for _ in range(_FAILURE_PAGES):
            page = self._client.call("GET", f"/jobs/{segment(self.job_id)}/things", query=query)
            summaries.extend(page.get("executionSummaries", []))
            if not page.get("nextToken"):
                break
            query["nextToken"] = page["nextToken"]
        newest = sorted(summaries, key=lambda s: s["jobExecutionSummary"].get("lastUpdatedAt", 0))
        return [self._failure(s, status) for s in reversed(newest[-SHOWN_FAILURES:])]

    def _failure(self, summary: dict[str, Any], status: str) -> _Failed:
        thing = summary["thingArn"].rpartition("/")[2]
        execution = summary["jobExecutionSummary"]
        number = int(execution["executionNumber"])
        said = self._said.get((thing, number))
        if said is None:
            path = f"/things/{segment(thing)}/jobs/{segment(self.job_id)}"
            try:
                record = self._client.call("GET", path, query={"executionNumber": str(number)})
                said = dict(record["execution"].get("statusDetails", {}).get("detailsMap", {}))
            except ServiceError as exc:
                if exc.code != "ResourceNotFoundException":
                    raise
                said = {}  # deleted since it was listed
        updated = float(execution.get("lastUpdatedAt", 0))
        return _Failed(updated, number, Failure(thing, status, said))


@dataclass(frozen=True)
class _Failed:
    updated_at: float
    number: int
    failure: Failure


class _View(Protocol):
    def show(self, snapshot: Snapshot, *, final: bool) -> None: ...
    def trouble(self, message: str) -> None: ...
    def close(self) -> None: ...


class _Terminal:
    """Redraws the frame in place with ANSI cursor movement; the cursor is hidden meanwhile."""

    def __init__(self, out: TextIO, colour: bool) -> None:
        self._out = out
        self._colour = colour
        self._drawn = 0
        self._last: list[str] = []
        out.write("\x1b[?25l")

    def show(self, snapshot: Snapshot, *, final: bool) -> None:
        self._last = frame(snapshot, shutil.get_terminal_size().columns - 1, colour=self._colour)
        self._draw(self._last)

    def trouble(self, message: str) -> None:
        self._draw([*self._last, message])

    def _draw(self, lines: list[str]) -> None:
        self._out.write(redraw(lines, self._drawn))
        self._out.flush()
        self._drawn = len(lines)

    def close(self) -> None:
        self._out.write("\x1b[?25h")
        self._out.flush()


class _Lines:
    """One line per change (plain words, or JSON), and one when the job ends."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self._out = out
        self._json = as_json
        self._last: tuple[object, ...] | None = None

    def show(self, snapshot: Snapshot, *, final: bool) -> None:
        key = snapshot.change_key()
        if key == self._last and not (final and self._json):
            return
        self._last = key
        line = json_line(snapshot, time.time(), final=final) if self._json else plain_line(snapshot)
        self._out.write(line + "\n")
        self._out.flush()

    def trouble(self, message: str) -> None:
        print(f"iotjobs job watch: {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def run_job_command(args: argparse.Namespace) -> int:
    """Run ``iotjobs job ACTION``; returns the exit code (see the module's docstring)."""
    try:
        key = client_admin_key(args.data_dir)
    except ValueError as exc:
        print(f"iotjobs job {args.action}: {exc}", file=sys.stderr)
        return 2
    client = ControlClient(
        args.endpoint,
        region=args.region,
        access_key_id=key.access_key_id,
        secret_access_key=key.secret_access_key,
    )
    out = sys.stdout
    view: _View
    if not args.json and out.isatty():
        view = _Terminal(out, colour=not os.environ.get("NO_COLOR"))
    else:
        view = _Lines(out, as_json=args.json)
    try:
        return _follow(Watcher(client, args.job_id), view, args.interval)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep the interpreter's own flush quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return EXIT_NOT_COMPLETED
    finally:
        with contextlib.suppress(OSError):  # the terminal or pipe may be gone already
            view.close()


def _follow(watcher: Watcher, view: _View, interval: float) -> int:
    looked, outage = False, ""
    while True:
        started = time.monotonic()
        try:
            snapshot = watcher.look(started, time.time())
        except (Unreachable, ServiceError) as exc:
            transient = isinstance(exc, Unreachable) or exc.code in _TRANSIENT
            if not looked or not transient:
                return _refused(watcher, exc, looked)
            if str(exc) != outage:
                outage = str(exc)
                view.trouble(f"{exc}; trying again every {interval:g}s")
        else:
            looked, outage = True, ""
            final = snapshot.status in ENDED
            view.show(snapshot, final=final)
            if final:
                return 0 if snapshot.status == "COMPLETED" else EXIT_NOT_COMPLETED
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


def _refused(watcher: Watcher, exc: Unreachable | ServiceError, looked: bool) -> int:
    if isinstance(exc, Unreachable):
        message, code = str(exc), 2
    elif exc.code == "ResourceNotFoundException":
        what = "was deleted while watched" if looked else f"does not exist at {watcher.endpoint}"
        message, code = f"{exc.code}: job {watcher.job_id} {what}", EXIT_NOT_COMPLETED
    else:
        message, code = str(exc), EXIT_NOT_COMPLETED
    print(f"iotjobs job watch: {message}", file=sys.stderr, flush=True)
    return code
