"""Running one handler process: no shell, output tails kept, killed with its children on cancel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .status_details import MAX_VALUE_CHARS

__all__ = ["ProcessResult", "run_process"]

# Bytes kept per stream: enough for the last 1,024 characters even if each takes 4 bytes.
_KEEP_BYTES = MAX_VALUE_CHARS * 4
# How long a killed process's pipes may stay open (held by escaped children) before we stop reading.
_PIPE_CLOSE_LIMIT = 5.0


@dataclass(frozen=True)
class ProcessResult:
    """How a process ended: its exit code (negative: killed by that signal) and its output tails."""

    exit_code: int
    stdout: str
    stderr: str
    stderr_lines: int


class _Tail:
    def __init__(self) -> None:
        self.data = bytearray()
        self.lines = 0
        self.partial = False

    def add(self, chunk: bytes) -> None:
        self.lines += chunk.count(b"\n")
        self.partial = not chunk.endswith(b"\n")
        self.data += chunk
        del self.data[:-_KEEP_BYTES]

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")[-MAX_VALUE_CHARS:]

    @property
    def line_count(self) -> int:
        return self.lines + (1 if self.partial and self.data else 0)


async def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    kill_grace: float = 5.0,
) -> ProcessResult:
    """Run ``argv`` (never through a shell) and wait for it.

    The process gets its own session; if the awaiting task is cancelled, the whole
    process group gets SIGTERM, then SIGKILL after ``kill_grace`` seconds, before
    the cancellation goes on. ``OSError`` (missing or non-executable program) propagates.
    """
    # The process exists once the fork is done, before creation returns: a cancel that
    # lands meanwhile must still kill its whole group. (asyncio would kill the leader
    # alone, then wait for the pipes that its children hold open.)
    creating = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    )
    try:
        process = await asyncio.shield(creating)
    except asyncio.CancelledError:
        process = await creating
        await _kill(process, _drain_both(process, _Tail(), _Tail()), kill_grace)
        raise
    out, err = _Tail(), _Tail()
    drained = _drain_both(process, out, err)
    try:
        await asyncio.shield(drained)
        exit_code = await process.wait()
    except asyncio.CancelledError:
        await _kill(process, drained, kill_grace)
        raise
    return ProcessResult(exit_code, out.text(), err.text(), err.line_count)


def _drain_both(process: asyncio.subprocess.Process, out: _Tail, err: _Tail) -> asyncio.Future[Any]:
    """Read both pipes in a task of their own, which a cancel does not stop: a process
    that floods its output while being killed must not fill a pipe nobody reads."""
    assert process.stdout is not None and process.stderr is not None
    return asyncio.ensure_future(asyncio.gather(_drain(process.stdout, out), _drain(process.stderr, err)))


async def _drain(stream: asyncio.StreamReader, tail: _Tail) -> None:
    while chunk := await stream.read(65536):
        tail.add(chunk)


async def _kill(process: asyncio.subprocess.Process, drained: asyncio.Future[Any], grace: float) -> None:
    """SIGTERM the process group; SIGKILL whatever of it is left after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), grace)
    # Also reaps children that outlived a leader which obeyed SIGTERM.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        # A child that left the group could keep the pipes open; do not wait on it forever.
        await asyncio.wait_for(asyncio.shield(drained), _PIPE_CLOSE_LIMIT)
    except TimeoutError:
        drained.cancel()
    await process.wait()
