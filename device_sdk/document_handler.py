"""The built-in handler: runs Device Client job documents with processes.

Handlers (``runHandler`` and the ``operation`` format) are executables in the
handlers directory, found by plain file name; a name with a path separator, or a
symlink leading out of the directory, is refused. ``runCommand`` runs a program
from ``PATH`` with the given arguments. Nothing ever goes through a shell.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .documents import Action, DocumentError, Plan, plan_from_document
from .job import Job, JobRejected, Outcome
from .process import ProcessResult

__all__ = ["DocumentHandler", "PreparedPlan"]


@dataclass(frozen=True)
class PreparedPlan:
    """A plan whose every program has been found and checked before the job starts."""

    plan: Plan
    programs: tuple[str, ...]  # one resolved path per action, in ``plan.actions`` order


class DocumentHandler:
    """Runs the Device Client formats; ``handlers_dir`` may be ``None`` (then only runCommand)."""

    def __init__(self, handlers_dir: Path | None, *, allow_run_command: bool = True) -> None:
        self.handlers_dir = handlers_dir.resolve() if handlers_dir is not None else None
        self.allow_run_command = allow_run_command

    def prepare(self, document: dict[str, Any]) -> PreparedPlan | None:
        """The checked plan for ``document``; ``None`` if it is not a Device Client document.

        Raises :class:`JobRejected` when the device cannot run it: a malformed
        document, a handler that is not in the handlers directory, a command that
        is not installed, runCommand switched off, or another ``runAsUser``.
        """
        try:
            plan = plan_from_document(document)
        except DocumentError as exc:
            raise JobRejected(str(exc)) from exc
        if plan is None:
            return None
        return PreparedPlan(plan, tuple(self._program(action) for action in plan.actions))

    async def run(self, job: Job, prepared: PreparedPlan) -> Outcome:
        """Run the steps in order, stopping at the first failure unless it is ignored.

        The final step runs only when every step succeeded (as in the Device Client).
        """
        plan = prepared.plan
        env = {**os.environ, **job.environment, **plan.variables}
        programs = dict(zip(plan.actions, prepared.programs, strict=True))
        last: tuple[Action, ProcessResult | None, str | None] | None = None
        for index, action in enumerate(plan.actions):
            if len(plan.actions) > 1:
                job.progress({"step": action.name, "progress": f"{index + 1}/{len(plan.actions)}"})
            result, failure = await self._run_action(job, action, programs[action], env)
            last = (action, result, failure)
            if failure is not None and not action.ignore_failure:
                break
            if failure is not None:
                last = (action, result, None)  # ignored: the job goes on as if it had worked
        assert last is not None
        action, result, failure = last
        details: dict[str, str] = {}
        if failure is not None:
            details["reason"] = failure
        if len(plan.actions) > 1:
            details["step"] = action.name
        if result is not None:
            details["exitCode"] = str(result.exit_code)
            if plan.include_stdout and result.stdout:
                details["stdout"] = result.stdout
            if result.stderr:
                details["stderr"] = result.stderr
        return Outcome("FAILED" if failure is not None else "SUCCEEDED", details)

    async def _run_action(
        self, job: Job, action: Action, program: str, env: dict[str, str]
    ) -> tuple[ProcessResult | None, str | None]:
        try:
            result = await job.run([program, *action.args], env=env)
        except OSError as exc:
            return None, f"cannot run {action.program}: {exc.strerror or exc}"
        if result.exit_code < 0:
            return result, f"{action.name} was killed by {signal.Signals(-result.exit_code).name}"
        if result.exit_code != 0:
            return result, f"{action.name} exited with code {result.exit_code}"
        if action.allow_stderr is not None and result.stderr_lines > action.allow_stderr:
            lines = result.stderr_lines
            return (
                result,
                f"{action.name} wrote {lines} lines to stderr; allowStdErr is {action.allow_stderr}",
            )
        return result, None

    def _program(self, action: Action) -> str:
        if action.run_as_user is not None and action.run_as_user != getpass.getuser():
            raise JobRejected(
                f"{action.name}: runAsUser {action.run_as_user!r} is not supported; "
                f"actions run as the agent's user {getpass.getuser()!r}"
            )
        if action.type == "runCommand":
            return self._command(action.program)
        return self._handler(action.program)

    def _command(self, program: str) -> str:
        if not self.allow_run_command:
            raise JobRejected("runCommand is switched off on this device")
        found = shutil.which(program)
        if found is None:
            raise JobRejected(f"unknown operation: the command {program!r} is not installed")
        return found

    def _handler(self, name: str) -> str:
        if self.handlers_dir is None:
            raise JobRejected(f"unknown operation {name!r}: this device has no handlers directory")
        if name in (".", "..") or "/" in name or os.sep in name or "\x00" in name:
            raise JobRejected(f"handler {name!r} must be a plain file name in the handlers directory")
        path = (self.handlers_dir / name).resolve()
        if path.parent != self.handlers_dir:
            raise JobRejected(f"handler {name!r} leads outside the handlers directory")
        if not path.is_file() or not os.access(path, os.X_OK):
            raise JobRejected(f"unknown operation {name!r}: no executable {name} in {self.handlers_dir}")
        return str(path)
