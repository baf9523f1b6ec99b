import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from iot_jobs_bridge.device_sdk.process import ProcessResult, run_process


def _run(argv, **kwargs):
    return asyncio.run(run_process(argv, **kwargs))


def _python(code):
    return [sys.executable, "-c", code]


def _gone(pid):
    """True once ``pid`` no longer runs.

    A killed process whose parent died stays a zombie until PID 1 reaps it, and the
    init of some sandboxes never does: a zombie runs no code, so it counts as gone.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait_gone(pid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.02)
    return _gone(pid)


async def _read_pids(path, count, within=5.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists():
            words = path.read_text().split()
            if len(words) == count:
                return [int(w) for w in words]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} did not get {count} pids")


async def _let_pipes_close():
    # run_process may re-raise the cancellation before the loop has read EOF on the dead
    # process's pipes; give it a moment so asyncio.run does not close the loop under them.
    await asyncio.sleep(0.2)


def test_exit_code_zero_and_stdout():
    result = _run(["sh", "-c", "echo hello"])
    assert result == ProcessResult(exit_code=0, stdout="hello\n", stderr="", stderr_lines=0)


@pytest.mark.parametrize("code", [1, 3, 255])
def test_non_zero_exit_code_is_returned(code):
    assert _run(["sh", "-c", f"exit {code}"]).exit_code == code


def test_killed_by_signal_gives_negative_exit_code():
    assert _run(["sh", "-c", "kill -9 $$"]).exit_code == -9


def test_stdout_and_stderr_are_kept_apart():
    result = _run(["sh", "-c", "echo out; echo err >&2"])
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_stdout_keeps_only_the_last_1024_characters():
    text = "".join(f"{i:05d}" for i in range(2000))  # 10,000 characters, each position distinct
    result = _run(_python(f"import sys; sys.stdout.write({text!r}); sys.stdout.write('END')"))
    assert len(result.stdout) == 1024
    assert result.stdout == (text + "END")[-1024:]
    assert result.stdout.endswith("END")


def test_stderr_keeps_only_the_last_1024_characters():
    text = "".join(f"{i:05d}" for i in range(2000))
    result = _run(_python(f"import sys; sys.stderr.write({text!r} + 'LAST')"))
    assert len(result.stderr) == 1024
    assert result.stderr == (text + "LAST")[-1024:]


def test_tail_of_large_output_written_in_many_chunks():
    # 200 kB written in pieces, so the tail is kept across many reads.
    code = "import sys\nfor i in range(20000):\n    sys.stdout.write(f'{i:09d}\\n'); sys.stdout.flush()\n"
    result = _run(_python(code))
    assert len(result.stdout) == 1024
    assert result.stdout.endswith("000019999\n")
    assert result.stdout == "".join(f"{i:09d}\n" for i in range(20000))[-1024:]


def test_multibyte_output_tail_is_whole_characters():
    result = _run(_python("import sys; sys.stdout.write('\u00e9\u20ac' * 3000 + 'Z')"))
    assert len(result.stdout) == 1024
    assert result.stdout.endswith("\u20acZ")
    assert "\ufffd" not in result.stdout


@pytest.mark.parametrize(
    ("script", "lines"),
    [
        ("", 0),
        ("printf 'one\\n' >&2", 1),
        ("printf 'one' >&2", 1),
        ("printf 'one\\ntwo\\n' >&2", 2),
        ("printf 'one\\ntwo' >&2", 2),
        ("printf '\\n\\n\\n' >&2", 3),
        ("printf 'a\\nb\\nc' >&2; echo out; echo out", 3),
    ],
)
def test_stderr_lines_are_counted(script, lines):
    assert _run(["sh", "-c", script]).stderr_lines == lines


def test_stderr_lines_count_everything_not_only_the_tail():
    result = _run(_python("import sys\nfor i in range(3000): sys.stderr.write(f'line {i}\\n')"))
    assert result.stderr_lines == 3000
    assert len(result.stderr) == 1024


def test_missing_program_raises_file_not_found():
    with pytest.raises(FileNotFoundError):
        _run(["/nonexistent/definitely-not-a-program"])


def test_non_executable_program_raises_os_error(tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    with pytest.raises(PermissionError):
        _run([str(script)])


def test_arguments_with_shell_metacharacters_are_passed_literally():
    text = "$HOME; rm -rf x && `id` | cat > y * 'q' \"d\""
    result = _run(["echo", text])
    assert result.stdout == text + "\n"


def test_env_and_cwd_are_used(tmp_path):
    result = _run(
        ["sh", "-c", 'echo "$ONLY_VAR"; pwd'], env={"ONLY_VAR": "v1", "PATH": "/usr/bin:/bin"}, cwd=tmp_path
    )
    assert result.stdout == f"v1\n{tmp_path.resolve()}\n"


def test_env_replaces_the_parent_environment(monkeypatch):
    monkeypatch.setenv("PARENT_ONLY", "leaked")
    result = _run(["/bin/sh", "-c", 'echo "[$PARENT_ONLY]"'], env={})
    assert result.stdout == "[]\n"


def test_stdin_is_empty():
    assert _run(["cat"]).stdout == ""


def test_process_gets_its_own_session():
    result = _run(_python("import os; print(os.getsid(0) == os.getpid())"))
    assert result.stdout == "True\n"


def test_cancel_kills_the_process_group_with_sigterm(tmp_path):
    pid_file = tmp_path / "pids"

    async def main():
        task = asyncio.ensure_future(
            run_process(["sh", "-c", f"sleep 60 & echo $$ $! > {pid_file}; wait"], kill_grace=5.0)
        )
        pids = await _read_pids(pid_file, 2)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        elapsed = time.monotonic() - started
        await _let_pipes_close()
        return pids, elapsed

    (shell, sleeper), elapsed = asyncio.run(main())
    assert _wait_gone(shell), f"sh {shell} still runs"
    assert _wait_gone(sleeper), f"sleep {sleeper} still runs"
    # Both obeyed SIGTERM: the 5 s grace before SIGKILL was not needed.
    assert elapsed < 3.0


def test_a_cancel_while_the_process_is_being_created_still_ends_its_whole_group(tmp_path):
    # Regression: a cancel landing between the fork and the end of process creation let
    # asyncio kill the leader alone and then wait for the pipes its child held: the
    # caller hung for as long as the child lived (seen under load, 60 s of `sleep 60`).
    pid_file = tmp_path / "pid"

    async def main():
        task = asyncio.ensure_future(
            run_process(["sh", "-c", f"sleep 30 & echo $! > {pid_file}; wait"], kill_grace=0.3)
        )
        await asyncio.sleep(0)  # the task forks and is suspended inside process creation
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        return time.monotonic() - started

    elapsed = asyncio.run(main())
    assert elapsed < 5.0
    if pid_file.exists() and pid_file.read_text().strip():  # the shell may have died before forking
        assert _wait_gone(int(pid_file.read_text())), "the child outlived the cancel"


def test_cancel_sigkills_a_group_that_ignores_sigterm_after_the_grace(tmp_path):
    pid_file = tmp_path / "pids"

    async def main():
        task = asyncio.ensure_future(
            run_process(
                ["sh", "-c", f"trap '' TERM; sleep 60 & echo $$ $! > {pid_file}; wait"],
                kill_grace=0.3,
            )
        )
        pids = await _read_pids(pid_file, 2)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        elapsed = time.monotonic() - started
        await _let_pipes_close()
        return pids, elapsed

    (shell, sleeper), elapsed = asyncio.run(main())
    assert _wait_gone(shell), f"sh {shell} still runs"
    assert _wait_gone(sleeper), f"sleep {sleeper} still runs"
    assert 0.25 <= elapsed < 3.0


def test_cancel_sigkills_children_that_outlive_a_leader_which_obeyed_sigterm(tmp_path):
    pid_file = tmp_path / "pids"

    async def main():
        task = asyncio.ensure_future(
            run_process(
                ["sh", "-c", f"(trap '' TERM; exec sleep 60) & echo $$ $! > {pid_file}; wait"],
                kill_grace=0.3,
            )
        )
        pids = await _read_pids(pid_file, 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await _let_pipes_close()
        return pids

    shell, sleeper = asyncio.run(main())
    assert _wait_gone(shell), f"sh {shell} still runs"
    assert _wait_gone(sleeper), f"sleep {sleeper} (ignoring SIGTERM) still runs"


def test_cancel_finishes_when_a_process_ignoring_sigterm_floods_stdout():
    # Run in a separate interpreter so that a hang cannot take the test session with it.
    script = textwrap.dedent(
        """
        import asyncio
        from iot_jobs_bridge.device_sdk.process import run_process

        async def main():
            task = asyncio.ensure_future(
                run_process(["sh", "-c", "trap '' TERM; exec yes"], kill_grace=0.3)
            )
            await asyncio.sleep(0.3)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                print("cancelled")

        asyncio.run(main())
        """
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=8,
            cwd=Path(__file__).resolve().parents[2],
        )
    except subprocess.TimeoutExpired:
        pytest.fail("cancelling run_process did not finish within 8 s (kill_grace was 0.3 s)")
    assert result.stdout == "cancelled\n", result.stderr
