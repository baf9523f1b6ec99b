"""The ``iotjobs`` command line: version, usage on errors, defaults in help, lazy subcommands."""

import argparse
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from iot_jobs_bridge.jobs_service.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
# What a device install leaves out (docs/device-sdk.md); `iotjobs device` must not need any of it.
SERVER_STACK = {
    "amqtt",
    "boto3",
    "botocore",
    "croniter",
    "cryptography",
    "pydantic",
    "regex",
    "sqlite3",
    "starlette",
    "transitions",
    "uvicorn",
}


def nested_parsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.values()


def subcommand_parsers():
    """Every subcommand's parser and its actions' (``schedule create``), each built as ``main`` builds it."""
    found = []
    for name in COMMANDS:
        top, _ = build_parser(name)
        pending = [next(sub for sub in nested_parsers(top) if sub.prog == f"iotjobs {name}")]
        while pending:
            current = pending.pop()
            found.append(current)
            pending.extend(nested_parsers(current))
    return found


def help_text(parser, action):
    return " ".join((action.help % {**vars(action), "prog": parser.prog}).split())


def names_default(text, default):
    if "default" not in text:
        return False
    if default is None or isinstance(default, list):
        return True  # the text says what happens without the option
    return (f"{default:g}" if isinstance(default, float) else str(default)) in text


def test_version_is_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"iotjobs {metadata.version('iot-jobs-bridge')}\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--bogus"],
        ["device", "--thing", "t", "--endpoint", "mqtt://127.0.0.1:1883", "--bogus"],
        ["run", "--thing", "t", "--bogus"],
        ["schedule", "list", "--bogus"],
        ["schedule", "create", "s", "--cron", "* * * * *", "--targets", "a", "--document", "{}", "--bogus"],
        ["simulate", "--things", "1", "--bogus"],
    ],
)
def test_a_wrong_option_prints_the_usage_of_its_subcommand(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    words = [w for w in argv if not w.startswith("-")][:2] if argv[0] == "schedule" else argv[:1]
    prog = " ".join(["iotjobs", *words])
    assert err.startswith(f"usage: {prog} ")
    assert f"{prog}: error: unrecognized arguments: --bogus" in err


def test_every_subcommand_and_action_is_walked():
    progs = {parser.prog for parser in subcommand_parsers()}
    assert {"iotjobs serve", "iotjobs device", "iotjobs run", "iotjobs simulate"} <= progs
    assert {"iotjobs schedule create", "iotjobs schedule history"} <= progs


def test_every_option_names_its_default():
    """Each option's help names its default, or what happens without it.

    Required options have none (nor have alternatives of which one is required),
    and a flag's default is its absence.
    """
    checked, missing = 0, []
    for parser in subcommand_parsers():
        alternatives = {a for g in parser._mutually_exclusive_groups if g.required for a in g._group_actions}
        for action in parser._actions:
            skipped = (argparse._HelpAction, argparse._StoreTrueAction, argparse._SubParsersAction)
            required = action.required or action in alternatives
            if not action.option_strings or required or isinstance(action, skipped):
                continue
            checked += 1
            text = help_text(parser, action) if action.help else ""
            if not names_default(text, action.default):
                missing.append(f"{parser.prog} {action.option_strings[0]}: {text!r}")
    assert checked > 60
    assert missing == []


def environment_variables(*folders):
    pattern = re.compile(r"\bIOTJOBS_[A-Z][A-Z_]*\b")
    return {
        name for folder in folders for path in (ROOT / folder).rglob("*.py")
        for name in pattern.findall(path.read_text(encoding="utf-8"))
    }  # fmt: skip


@pytest.mark.parametrize(
    ("command", "folders"), [("serve", ("jobs_service", "broker")), ("device", ("device_sdk",))]
)
def test_help_names_every_environment_variable_the_code_uses(command, folders, capsys):
    names = environment_variables(*folders)
    assert names, "the scan found nothing"
    with pytest.raises(SystemExit):
        main([command, "--help"])
    shown = capsys.readouterr().out
    assert sorted(name for name in names if name not in shown) == []


def test_serve_help_names_the_three_documented_variables(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    shown = capsys.readouterr().out
    for name in ("IOTJOBS_ACCESS_KEY_ID", "IOTJOBS_SECRET_ACCESS_KEY", "IOTJOBS_TIME_SCALE"):
        assert name in shown


@pytest.mark.parametrize("command", ["run", "schedule", "simulate"])
def test_client_commands_state_one_credentials_rule(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    # Rejoin what the help formatter wrapped, at spaces or after hyphens.
    shown = " ".join(re.sub(r"-\n\s*", "-", capsys.readouterr().out).split())
    assert (
        "The admin key comes from IOTJOBS_ACCESS_KEY_ID and IOTJOBS_SECRET_ACCESS_KEY, "
        "else from admin-credentials.json in --data-dir." in shown
    )


def modules_loaded_by(*argv):
    """Top-level module names a fresh interpreter holds after ``iotjobs ARGV``."""
    script = (
        "import json, sys\n"
        "from iot_jobs_bridge.jobs_service.cli import main\n"
        "try:\n"
        f"    main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    return set(json.loads(result.stderr.splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["device", "--help"]])
def test_help_version_and_the_device_agent_load_nothing_of_the_server(argv):
    loaded = modules_loaded_by(*argv)
    assert "iot_jobs_bridge" in loaded  # the probe ran
    assert sorted(loaded & SERVER_STACK) == []


def test_the_device_agent_loads_only_the_device_sdk_and_schemas():
    script = (
        "import sys\n"
        "from iot_jobs_bridge.jobs_service.cli import main\n"
        "try:\n"
        "    main(['device', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write(' '.join(m for m in sys.modules if m.startswith('iot_jobs_bridge.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    loaded = set(result.stderr.split())
    assert "iot_jobs_bridge.device_sdk.cli" in loaded
    outside = {m for m in loaded if m.split(".")[1] not in ("device_sdk", "schemas")}
    assert outside == {"iot_jobs_bridge.jobs_service", "iot_jobs_bridge.jobs_service.cli"}
