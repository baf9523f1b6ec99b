import asyncio
import getpass
import shutil

import pytest

from iot_jobs_bridge.device_sdk.document_handler import DocumentHandler, PreparedPlan
from iot_jobs_bridge.device_sdk.documents import DocumentError
from iot_jobs_bridge.device_sdk.job import Job, JobRejected, Outcome


@pytest.fixture
def handlers(tmp_path):
    directory = tmp_path / "handlers"
    directory.mkdir()
    return directory


def _script(directory, name, body, mode=0o755):
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(mode)
    return path


def _rejected(handler, document):
    with pytest.raises(JobRejected) as caught:
        handler.prepare(document)
    return str(caught.value)


def _steps(*actions, **extra):
    return {"version": "1.0", "steps": [{"action": a} for a in actions], **extra}


def _handler_action(name, handler=None, **extra):
    return {"name": name, "type": "runHandler", "input": {"handler": handler or name}, **extra}


def _command_action(name, command, **extra):
    return {"name": name, "type": "runCommand", "input": {"command": command}, **extra}


def _run(handler, document, *, job_id="job-1", thing_name="dev-1"):
    """Prepare and run ``document``; the outcome and the last progress the job reported."""

    async def main():
        job = Job(
            thing_name=thing_name,
            job_id=job_id,
            execution_number=3,
            version_number=1,
            document=document,
            loop=asyncio.get_running_loop(),
        )
        prepared = handler.prepare(document)
        assert prepared is not None
        outcome = await handler.run(job, prepared)
        return outcome, job._take_progress()

    return asyncio.run(main())


# --- prepare ----------------------------------------------------------------------------------


def test_prepare_resolves_handler_paths(handlers):
    script = _script(handlers, "install", "true")
    prepared = DocumentHandler(handlers).prepare({"operation": "install"})
    assert isinstance(prepared, PreparedPlan)
    assert prepared.programs == (str(script.resolve()),)
    assert prepared.plan.steps[0].name == "install"


def test_prepare_resolves_commands_on_path_and_final_step(handlers):
    _script(handlers, "a", "true")
    document = _steps(_handler_action("a"), finalStep={"action": _command_action("f", "sh,-c,true")})
    prepared = DocumentHandler(handlers).prepare(document)
    assert prepared is not None
    assert prepared.programs == (str((handlers / "a").resolve()), shutil.which("sh"))


def test_prepare_gives_none_for_other_documents(handlers):
    assert DocumentHandler(handlers).prepare({"firmware": "v2"}) is None


def test_prepare_turns_document_errors_into_rejections(handlers):
    with pytest.raises(JobRejected) as caught:
        DocumentHandler(handlers).prepare({"version": "2.0", "steps": []})
    assert str(caught.value) == "job document version '2.0' is not supported; use \"1.0\""
    assert isinstance(caught.value.__cause__, DocumentError)


def test_handler_not_in_directory_is_rejected(handlers):
    message = _rejected(DocumentHandler(handlers), {"operation": "missing"})
    assert message == f"unknown operation 'missing': no executable missing in {handlers.resolve()}"


def test_missing_final_step_handler_is_rejected(handlers):
    _script(handlers, "a", "true")
    document = _steps(_handler_action("a"), finalStep={"action": _handler_action("gone")})
    message = _rejected(DocumentHandler(handlers), document)
    assert message == f"unknown operation 'gone': no executable gone in {handlers.resolve()}"


@pytest.mark.parametrize("name", ["sub/run", "../run", "/bin/sh", "..", "."])
def test_handler_name_must_be_a_plain_file_name(handlers, name):
    (handlers / "sub").mkdir()
    _script(handlers / "sub", "run", "true")
    _script(handlers.parent, "run", "true")
    message = _rejected(DocumentHandler(handlers), {"operation": name})
    assert message == f"handler {name!r} must be a plain file name in the handlers directory"


def test_handler_name_in_action_format_must_be_a_plain_file_name(handlers):
    message = _rejected(DocumentHandler(handlers), _steps(_handler_action("s", "../x")))
    assert message == "handler '../x' must be a plain file name in the handlers directory"


def test_symlink_leading_outside_the_directory_is_rejected(handlers, tmp_path):
    outside = _script(tmp_path, "outside.sh", "echo escaped")
    (handlers / "link").symlink_to(outside)
    message = _rejected(DocumentHandler(handlers), {"operation": "link"})
    assert message == "handler 'link' leads outside the handlers directory"


def test_symlink_to_a_system_program_is_rejected(handlers):
    (handlers / "shell").symlink_to(shutil.which("sh"))
    message = _rejected(DocumentHandler(handlers), {"operation": "shell"})
    assert message == "handler 'shell' leads outside the handlers directory"


def test_symlink_within_the_directory_is_allowed(handlers):
    real = _script(handlers, "real", "true")
    (handlers / "alias").symlink_to(real)
    prepared = DocumentHandler(handlers).prepare({"operation": "alias"})
    assert prepared is not None
    assert prepared.programs == (str(real.resolve()),)


def test_handlers_dir_given_through_a_symlink_works(handlers, tmp_path):
    script = _script(handlers, "install", "true")
    (tmp_path / "via").symlink_to(handlers)
    prepared = DocumentHandler(tmp_path / "via").prepare({"operation": "install"})
    assert prepared is not None
    assert prepared.programs == (str(script.resolve()),)


def test_non_executable_handler_is_rejected(handlers):
    _script(handlers, "plain", "true", mode=0o644)
    message = _rejected(DocumentHandler(handlers), {"operation": "plain"})
    assert message == f"unknown operation 'plain': no executable plain in {handlers.resolve()}"


def test_directory_is_not_a_handler(handlers):
    (handlers / "dir").mkdir()
    message = _rejected(DocumentHandler(handlers), {"operation": "dir"})
    assert message == f"unknown operation 'dir': no executable dir in {handlers.resolve()}"


def test_without_handlers_directory_handlers_are_rejected():
    message = _rejected(DocumentHandler(None), {"operation": "install"})
    assert message == "unknown operation 'install': this device has no handlers directory"


def test_without_handlers_directory_commands_still_run():
    outcome, _ = _run(DocumentHandler(None), _steps(_command_action("c", "echo,hi")))
    assert outcome == Outcome("SUCCEEDED", {"exitCode": "0", "stdout": "hi\n"})


def test_run_command_can_be_switched_off(handlers):
    handler = DocumentHandler(handlers, allow_run_command=False)
    assert (
        _rejected(handler, _steps(_command_action("c", "echo,hi")))
        == "runCommand is switched off on this device"
    )


def test_command_not_on_path_is_rejected(handlers):
    message = _rejected(
        DocumentHandler(handlers), _steps(_command_action("c", "definitely-not-installed-xyz,a"))
    )
    assert message == "unknown operation: the command 'definitely-not-installed-xyz' is not installed"


def test_other_run_as_user_is_rejected(handlers):
    _script(handlers, "a", "true")
    user = getpass.getuser()
    other = "nobody" if user != "nobody" else "root"
    message = _rejected(DocumentHandler(handlers), _steps(_handler_action("a", runAsUser=other)))
    assert message == (
        f"a: runAsUser {other!r} is not supported; actions run as the agent's user {getpass.getuser()!r}"
    )


def test_run_as_user_checked_before_run_command_switch(handlers):
    handler = DocumentHandler(handlers, allow_run_command=False)
    message = _rejected(handler, _steps(_command_action("c", "echo", runAsUser="someone-else-xyz")))
    assert message.startswith("c: runAsUser 'someone-else-xyz' is not supported")


def test_run_as_current_user_is_allowed(handlers):
    _script(handlers, "a", "true")
    prepared = DocumentHandler(handlers).prepare(_steps(_handler_action("a", runAsUser=getpass.getuser())))
    assert prepared is not None


# --- run --------------------------------------------------------------------------------------


def test_success_reports_exit_code_and_stdout(handlers):
    _script(handlers, "hello", "echo hello")
    outcome, progress = _run(DocumentHandler(handlers), {"operation": "hello"})
    assert outcome == Outcome("SUCCEEDED", {"exitCode": "0", "stdout": "hello\n"})
    assert progress is None  # a single step reports no progress


def test_arguments_reach_the_handler_literally(handlers):
    _script(handlers, "args", 'for a in "$@"; do echo "[$a]"; done')
    outcome, _ = _run(DocumentHandler(handlers), {"operation": "args", "args": ["a b", "$HOME", "*", ""]})
    assert outcome.details["stdout"] == "[a b]\n[$HOME]\n[*]\n[]\n"


def test_run_command_arguments_with_escaped_commas(handlers):
    outcome, _ = _run(DocumentHandler(handlers), _steps(_command_action("c", "printf,%s|%s,a\\,b,$x")))
    assert outcome.details["stdout"] == "a,b|$x"


def test_failure_reports_exit_code_output_and_reason(handlers):
    _script(handlers, "broken", "echo partial; echo oops >&2; exit 3")
    outcome, _ = _run(DocumentHandler(handlers), {"operation": "broken"})
    assert outcome == Outcome(
        "FAILED",
        {"reason": "broken exited with code 3", "exitCode": "3", "stdout": "partial\n", "stderr": "oops\n"},
    )


def test_failure_reason_uses_the_action_name(handlers):
    _script(handlers, "broken", "exit 2")
    outcome, _ = _run(DocumentHandler(handlers), _steps(_handler_action("Install firmware", "broken")))
    assert outcome.status == "FAILED"
    assert outcome.details["reason"] == "Install firmware exited with code 2"


def test_killed_handler_reports_the_signal(handlers):
    _script(handlers, "suicide", "kill -9 $$")
    outcome, _ = _run(DocumentHandler(handlers), {"operation": "suicide"})
    assert outcome == Outcome("FAILED", {"reason": "suicide was killed by SIGKILL", "exitCode": "-9"})


def test_handler_removed_after_prepare_fails_to_run(handlers):
    script = _script(handlers, "vanishing", "true")
    handler = DocumentHandler(handlers)

    async def main():
        job = Job(
            thing_name="t",
            job_id="j",
            execution_number=1,
            version_number=1,
            document={},
            loop=asyncio.get_running_loop(),
        )
        prepared = handler.prepare({"operation": "vanishing"})
        script.unlink()
        return await handler.run(job, prepared)

    outcome = asyncio.run(main())
    assert outcome == Outcome("FAILED", {"reason": "cannot run vanishing: No such file or directory"})


@pytest.mark.parametrize("flag", [False, "false"])
def test_include_stdout_false_omits_stdout(handlers, flag):
    _script(handlers, "talk", "echo secret; echo warn >&2")
    outcome, _ = _run(DocumentHandler(handlers), {"operation": "talk", "includeStdOut": flag})
    assert outcome == Outcome("SUCCEEDED", {"exitCode": "0", "stderr": "warn\n"})


def test_include_stdout_false_in_action_format(handlers):
    outcome, _ = _run(DocumentHandler(handlers), _steps(_command_action("c", "echo,x"), includeStdOut=False))
    assert outcome == Outcome("SUCCEEDED", {"exitCode": "0"})


def test_stderr_beyond_allow_std_err_fails(handlers):
    _script(handlers, "noisy", "echo one >&2; echo two >&2; printf three >&2")
    outcome, _ = _run(DocumentHandler(handlers), {"operation": "noisy", "allowStdErr": 2})
    assert outcome.status == "FAILED"
    assert outcome.details["reason"] == "noisy wrote 3 lines to stderr; allowStdErr is 2"
    assert outcome.details["exitCode"] == "0"
    assert outcome.details["stderr"] == "one\ntwo\nthree"


def test_stderr_within_allow_std_err_succeeds(handlers):
    _script(handlers, "noisy", "echo one >&2; echo two >&2")
    outcome, _ = _run(DocumentHandler(handlers), {"operation": "noisy", "allowStdErr": "2"})
    assert outcome == Outcome("SUCCEEDED", {"exitCode": "0", "stderr": "one\ntwo\n"})


def test_allow_std_err_zero_fails_on_any_stderr(handlers):
    _script(handlers, "noisy", "echo one >&2")
    outcome, _ = _run(DocumentHandler(handlers), _steps(_handler_action("n", "noisy", allowStdErr=0)))
    assert outcome.details["reason"] == "n wrote 1 lines to stderr; allowStdErr is 0"


def test_without_allow_std_err_stderr_is_not_a_failure(handlers):
    _script(handlers, "noisy", "echo one >&2; echo two >&2")
    outcome, _ = _run(DocumentHandler(handlers), {"operation": "noisy"})
    assert outcome.status == "SUCCEEDED"


def test_failed_step_stops_the_job(handlers, tmp_path):
    marker = tmp_path / "second-ran"
    _script(handlers, "first", "exit 1")
    _script(handlers, "second", f"touch {marker}")
    outcome, _ = _run(DocumentHandler(handlers), _steps(_handler_action("first"), _handler_action("second")))
    assert outcome == Outcome(
        "FAILED", {"reason": "first exited with code 1", "step": "first", "exitCode": "1"}
    )
    assert not marker.exists()


def test_ignored_step_failure_goes_on(handlers, tmp_path):
    marker = tmp_path / "second-ran"
    _script(handlers, "first", "exit 1")
    _script(handlers, "second", f"touch {marker}; echo done")
    document = _steps(_handler_action("first", ignoreStepFailure=True), _handler_action("second"))
    outcome, _ = _run(DocumentHandler(handlers), document)
    assert marker.exists()
    assert outcome == Outcome("SUCCEEDED", {"step": "second", "exitCode": "0", "stdout": "done\n"})


def test_ignored_failure_of_the_last_step_succeeds(handlers):
    _script(handlers, "ok", "true")
    _script(handlers, "bad", "exit 4")
    document = _steps(_handler_action("ok"), _handler_action("bad", ignoreStepFailure="true"))
    outcome, _ = _run(DocumentHandler(handlers), document)
    assert outcome == Outcome("SUCCEEDED", {"step": "bad", "exitCode": "4"})


def test_final_step_runs_when_all_steps_succeed(handlers, tmp_path):
    marker = tmp_path / "final-ran"
    _script(handlers, "a", "true")
    _script(handlers, "b", "true")
    _script(handlers, "cleanup", f"touch {marker}")
    document = _steps(
        _handler_action("a"), _handler_action("b"), finalStep={"action": _handler_action("cleanup")}
    )
    outcome, progress = _run(DocumentHandler(handlers), document)
    assert marker.exists()
    assert outcome == Outcome("SUCCEEDED", {"step": "cleanup", "exitCode": "0"})
    assert progress == {"step": "cleanup", "progress": "3/3"}


def test_final_step_does_not_run_after_a_failure(handlers, tmp_path):
    marker = tmp_path / "final-ran"
    _script(handlers, "a", "true")
    _script(handlers, "b", "exit 5")
    _script(handlers, "cleanup", f"touch {marker}")
    document = _steps(
        _handler_action("a"), _handler_action("b"), finalStep={"action": _handler_action("cleanup")}
    )
    outcome, progress = _run(DocumentHandler(handlers), document)
    assert not marker.exists()
    assert outcome == Outcome("FAILED", {"reason": "b exited with code 5", "step": "b", "exitCode": "5"})
    assert progress == {"step": "b", "progress": "2/3"}


def test_failing_final_step_fails_the_job(handlers):
    _script(handlers, "a", "true")
    _script(handlers, "cleanup", "exit 6")
    document = _steps(_handler_action("a"), finalStep={"action": _handler_action("cleanup")})
    outcome, _ = _run(DocumentHandler(handlers), document)
    assert outcome == Outcome(
        "FAILED", {"reason": "cleanup exited with code 6", "step": "cleanup", "exitCode": "6"}
    )


def test_variables_and_job_identity_reach_the_environment(handlers):
    _script(
        handlers,
        "env",
        'echo "$IOTJOBS_JOB_ID|$IOTJOBS_THING_NAME|$IOTJOBS_EXECUTION_NUMBER|$TARGET|$EMPTY."',
    )
    document = {"operation": "env", "variables": {"TARGET": "/opt/app", "EMPTY": ""}}
    outcome, _ = _run(DocumentHandler(handlers), document, job_id="job-42", thing_name="thing-7")
    assert outcome.details["stdout"] == "job-42|thing-7|3|/opt/app|.\n"


def test_variables_reach_every_step_and_commands(handlers, tmp_path):
    log = tmp_path / "log"
    _script(handlers, "one", f'echo "one:$V" > {log}')
    document = _steps(
        _handler_action("one"), _command_action("two", "sh,-c,echo two:$V"), variables={"V": "x"}
    )
    outcome, _ = _run(DocumentHandler(handlers), document)
    assert log.read_text() == "one:x\n"
    assert outcome.details["stdout"] == "two:x\n"


def test_agent_environment_is_inherited(handlers, monkeypatch):
    monkeypatch.setenv("AGENT_SETTING", "inherited")
    _script(handlers, "env", 'echo "$AGENT_SETTING"')
    outcome, _ = _run(DocumentHandler(handlers), {"operation": "env"})
    assert outcome.details["stdout"] == "inherited\n"


def test_multi_step_job_reports_progress_of_the_last_step(handlers):
    _script(handlers, "a", "true")
    _script(handlers, "b", "true")
    _script(handlers, "c", "echo last")
    document = _steps(_handler_action("A", "a"), _handler_action("B", "b"), _handler_action("C", "c"))
    outcome, progress = _run(DocumentHandler(handlers), document)
    assert progress == {"step": "C", "progress": "3/3"}
    assert outcome == Outcome("SUCCEEDED", {"step": "C", "exitCode": "0", "stdout": "last\n"})


def test_steps_run_in_order(handlers, tmp_path):
    log = tmp_path / "log"
    for name in ("s1", "s2", "s3"):
        _script(handlers, name, f"echo {name} >> {log}")
    document = _steps(*(_handler_action(n) for n in ("s1", "s2", "s3")))
    _run(DocumentHandler(handlers), document)
    assert log.read_text() == "s1\ns2\ns3\n"
