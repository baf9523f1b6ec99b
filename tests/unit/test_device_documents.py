import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_jobs_bridge.device_sdk.documents import (
    Action,
    DocumentError,
    Plan,
    plan_from_document,
    split_command,
)


def _step(action):
    return {"action": action}


def _handler_step(handler="install", **extra):
    return _step({"name": "s", "type": "runHandler", "input": {"handler": handler}, **extra})


def _document(*steps, **extra):
    return {"version": "1.0", "steps": list(steps), **extra}


def _error(document):
    with pytest.raises(DocumentError) as caught:
        plan_from_document(document)
    return str(caught.value)


# --- the handler ("operation") format ---------------------------------------------------------


def test_operation_format_gives_one_run_handler_step():
    plan = plan_from_document(
        {"operation": "install", "args": ["a", "b c"], "allowStdErr": 2, "includeStdOut": False}
    )
    assert plan == Plan(
        steps=(
            Action(name="install", type="runHandler", program="install", args=("a", "b c"), allow_stderr=2),
        ),
        include_stdout=False,
    )


def test_operation_format_defaults():
    plan = plan_from_document({"operation": "reboot"})
    assert plan is not None
    (action,) = plan.steps
    assert action.args == ()
    assert action.allow_stderr is None
    assert action.ignore_failure is False
    assert action.run_as_user is None
    assert plan.final_step is None
    assert plan.include_stdout is True
    assert plan.variables == {}


@pytest.mark.parametrize("path", [None, "", "default"])
def test_operation_format_accepts_default_path(path):
    document = {"operation": "install"} if path is None else {"operation": "install", "path": path}
    plan = plan_from_document(document)
    assert plan is not None
    assert plan.steps[0].program == "install"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/usr/bin", "path '/usr/bin' is not allowed: handlers run only from the handlers directory"),
        ("custom", "path 'custom' is not allowed: handlers run only from the handlers directory"),
        (5, "path 5 is not allowed: handlers run only from the handlers directory"),
    ],
)
def test_operation_format_rejects_any_other_path(path, message):
    assert _error({"operation": "install", "path": path}) == message


@pytest.mark.parametrize("operation", ["", 3, None, ["install"]])
def test_operation_must_be_non_empty_string(operation):
    assert _error({"operation": operation}) == "operation must be a non-empty string"


@pytest.mark.parametrize("args", ["a,b", ["a", 1], [None], {"a": "b"}, None])
def test_operation_args_must_be_list_of_strings(args):
    assert _error({"operation": "install", "args": args}) == "args must be a list of strings"


@pytest.mark.parametrize(("given", "expected"), [(0, 0), (7, 7), ("3", 3), ("0", 0), (None, None)])
def test_allow_stderr_accepts_whole_numbers_and_digit_strings(given, expected):
    plan = plan_from_document({"operation": "install", "allowStdErr": given})
    assert plan is not None
    assert plan.steps[0].allow_stderr == expected


@pytest.mark.parametrize("value", [-1, "-1", 1.5, "1.5", "two", "", True, False, [1]])
def test_allow_stderr_rejects_what_is_not_a_whole_number(value):
    assert (
        _error({"operation": "install", "allowStdErr": value})
        == "allowStdErr must be a whole number of lines"
    )


@pytest.mark.parametrize("value", ["\u00b2", "\u2460"], ids=["superscript-two", "circled-one"])
def test_allow_stderr_unicode_digit_that_int_refuses_is_a_document_error(value):
    # str.isdigit() is true for these, but int() cannot read them: the document must still be
    # rejected with DocumentError (which the handler turns into REJECTED), not a bare ValueError.
    assert (
        _error({"operation": "install", "allowStdErr": value})
        == "allowStdErr must be a whole number of lines"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("false", False), ("TRUE", True), ("False", False)],
)
def test_include_stdout_accepts_booleans_and_their_strings(value, expected):
    plan = plan_from_document({"operation": "install", "includeStdOut": value})
    assert plan is not None
    assert plan.include_stdout is expected


@pytest.mark.parametrize("value", ["yes", "no", "1", 1, 0, None, ""])
def test_include_stdout_rejects_other_values(value):
    assert _error({"operation": "install", "includeStdOut": value}) == "includeStdOut must be true or false"


def test_operation_format_reads_variables():
    plan = plan_from_document({"operation": "install", "variables": {"A": "1", "_b2": ""}})
    assert plan is not None
    assert plan.variables == {"A": "1", "_b2": ""}


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"1A": "x"}, "variable '1A' must be a shell-style name with a string value"),
        ({"A-B": "x"}, "variable 'A-B' must be a shell-style name with a string value"),
        ({"": "x"}, "variable '' must be a shell-style name with a string value"),
        ({"A B": "x"}, "variable 'A B' must be a shell-style name with a string value"),
        ({"A": 1}, "variable 'A' must be a shell-style name with a string value"),
        ({"A": None}, "variable 'A' must be a shell-style name with a string value"),
        (["A"], "variables must be an object of strings"),
        ("A=1", "variables must be an object of strings"),
    ],
)
def test_bad_variables_are_rejected(variables, message):
    assert _error({"operation": "install", "variables": variables}) == message
    assert _error(_document(_handler_step(), variables=variables)) == message


# --- the action ("steps") format --------------------------------------------------------------


def test_action_format_reads_handler_and_command_steps_and_final_step():
    plan = plan_from_document(
        _document(
            _step(
                {
                    "name": "download",
                    "type": "runHandler",
                    "input": {"handler": "download.sh", "args": ["http://x", "/tmp"], "path": "default"},
                    "runAsUser": "root",
                    "allowStdErr": 1,
                    "ignoreStepFailure": True,
                }
            ),
            _step({"name": "list", "type": "runCommand", "input": {"command": "ls,-l,a\\,b"}}),
            finalStep=_step({"name": "cleanup", "type": "runCommand", "input": {"command": "rm,-f,x"}}),
            includeStdOut="false",
            variables={"TARGET": "/opt"},
        )
    )
    assert plan == Plan(
        steps=(
            Action(
                name="download",
                type="runHandler",
                program="download.sh",
                args=("http://x", "/tmp"),
                allow_stderr=1,
                ignore_failure=True,
                run_as_user="root",
            ),
            Action(name="list", type="runCommand", program="ls", args=("-l", "a,b")),
        ),
        final_step=Action(name="cleanup", type="runCommand", program="rm", args=("-f", "x")),
        include_stdout=False,
        variables={"TARGET": "/opt"},
    )
    assert plan.actions == (*plan.steps, plan.final_step)


def test_actions_without_final_step_are_the_steps():
    plan = plan_from_document(_document(_handler_step(), finalStep=None))
    assert plan is not None
    assert plan.final_step is None
    assert plan.actions == plan.steps


def test_action_name_defaults_to_its_place():
    plan = plan_from_document(
        _document(
            _step({"type": "runHandler", "input": {"handler": "a"}}),
            _step({"type": "runHandler", "input": {"handler": "b"}}),
            finalStep=_step({"type": "runCommand", "input": {"command": "true"}}),
        )
    )
    assert plan is not None
    assert [a.name for a in plan.actions] == ["steps[0]", "steps[1]", "finalStep"]


def test_empty_run_as_user_means_none():
    plan = plan_from_document(_document(_handler_step(runAsUser="")))
    assert plan is not None
    assert plan.steps[0].run_as_user is None


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("true", True), ("FALSE", False), (False, False)]
)
def test_ignore_step_failure_accepts_booleans_and_their_strings(value, expected):
    plan = plan_from_document(_document(_handler_step(ignoreStepFailure=value)))
    assert plan is not None
    assert plan.steps[0].ignore_failure is expected


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            _document(_handler_step(), version="2.0"),
            "job document version '2.0' is not supported; use \"1.0\"",
        ),
        (_document(_handler_step(), version=1.0), 'job document version 1.0 is not supported; use "1.0"'),
        ({"steps": [_handler_step()]}, 'job document version None is not supported; use "1.0"'),
        ({"version": "1.0"}, "steps must be a non-empty list of actions"),
        (_document(), "steps must be a non-empty list of actions"),
        ({"version": "1.0", "steps": {"action": {}}}, "steps must be a non-empty list of actions"),
        (_document("run"), "steps[0] must be an object with an action"),
        (_document({"name": "x"}), "steps[0] must be an object with an action"),
        (_document(_handler_step(), {"action": "x"}), "steps[1] must be an object with an action"),
        (_document(_handler_step(), finalStep="cleanup"), "finalStep must be an object with an action"),
        (
            _document(_step({"name": 1, "type": "runHandler", "input": {"handler": "a"}})),
            "steps[0].action.name must be a string",
        ),
        (_document(_step({"type": "runHandler"})), "steps[0].action.input must be an object"),
        (
            _document(_step({"type": "runHandler", "input": ["a"]})),
            "steps[0].action.input must be an object",
        ),
        (
            _document(_step({"type": "runScript", "input": {}})),
            "steps[0].action.type 'runScript' is not runHandler or runCommand",
        ),
        (
            _document(_step({"input": {"handler": "a"}})),
            "steps[0].action.type None is not runHandler or runCommand",
        ),
        (
            _document(_step({"type": "runHandler", "input": {}})),
            "steps[0].action.input.handler must be a non-empty string",
        ),
        (
            _document(_step({"type": "runHandler", "input": {"handler": ""}})),
            "steps[0].action.input.handler must be a non-empty string",
        ),
        (
            _document(_step({"type": "runHandler", "input": {"handler": "a", "args": "x y"}})),
            "steps[0].action.input.args must be a list of strings",
        ),
        (
            _document(_step({"type": "runHandler", "input": {"handler": "a", "args": [1]}})),
            "steps[0].action.input.args must be a list of strings",
        ),
        (
            _document(_step({"type": "runHandler", "input": {"handler": "a", "path": "/opt/handlers"}})),
            "path '/opt/handlers' is not allowed: handlers run only from the handlers directory",
        ),
        (
            _document(_step({"type": "runCommand", "input": {}})),
            "steps[0].action.input.command must be a non-empty string",
        ),
        (
            _document(_step({"type": "runCommand", "input": {"command": ""}})),
            "steps[0].action.input.command must be a non-empty string",
        ),
        (
            _document(_step({"type": "runCommand", "input": {"command": ["ls"]}})),
            "steps[0].action.input.command must be a non-empty string",
        ),
        (
            _document(_step({"type": "runCommand", "input": {"command": ",-l"}})),
            "runCommand needs a command before the first comma",
        ),
        (
            _document(_handler_step(allowStdErr=-1)),
            "steps[0].action.allowStdErr must be a whole number of lines",
        ),
        (
            _document(_handler_step(allowStdErr="x")),
            "steps[0].action.allowStdErr must be a whole number of lines",
        ),
        (
            _document(_handler_step(ignoreStepFailure="yes")),
            "steps[0].action.ignoreStepFailure must be true or false",
        ),
        (
            _document(_handler_step(ignoreStepFailure=1)),
            "steps[0].action.ignoreStepFailure must be true or false",
        ),
        (_document(_handler_step(runAsUser=0)), "steps[0].action.runAsUser must be a string"),
        (
            _document(_handler_step(), finalStep=_handler_step(allowStdErr=-2)),
            "finalStep.action.allowStdErr must be a whole number of lines",
        ),
        (_document(_handler_step(), includeStdOut="yes"), "includeStdOut must be true or false"),
    ],
)
def test_malformed_action_documents_raise_document_error(document, message):
    assert _error(document) == message


def test_document_error_is_a_value_error():
    assert issubclass(DocumentError, ValueError)


@pytest.mark.parametrize(
    "document", [{}, {"command": "ls"}, {"action": {"type": "runCommand"}}, {"args": []}]
)
def test_document_in_neither_format_gives_none(document):
    assert plan_from_document(document) is None


def test_steps_format_wins_over_operation_when_both_present():
    plan = plan_from_document({"operation": "ignored", **_document(_handler_step("used"))})
    assert plan is not None
    assert [a.program for a in plan.actions] == ["used"]


# --- split_command ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("ls", ("ls",)),
        ("echo,a,b", ("echo", "a", "b")),
        ("echo,a\\,b", ("echo", "a,b")),
        ("echo,\\,,x", ("echo", ",", "x")),
        ("echo,a b,c", ("echo", "a b", "c")),
        ("echo,", ("echo", "")),
        ("echo,,x", ("echo", "", "x")),
        ("echo,$HOME;rm", ("echo", "$HOME;rm")),
    ],
)
def test_split_command(command, expected):
    assert split_command(command) == expected


@pytest.mark.parametrize("command", ["", " ", ",echo", " ,echo", "\t,a"])
def test_split_command_needs_a_program(command):
    with pytest.raises(DocumentError) as caught:
        split_command(command)
    assert str(caught.value) == "runCommand needs a command before the first comma"


_parts = st.text(st.characters(exclude_characters="\\"), min_size=1)
_programs = _parts.filter(lambda s: s.strip() != "")


@given(st.tuples(_programs, st.lists(_parts, max_size=6)).map(lambda t: [t[0], *t[1]]))
def test_split_command_round_trips_escaped_join(parts):
    # The program (first part) must not be blank: that is refused by design (see above).
    command = ",".join(p.replace(",", "\\,") for p in parts)
    assert split_command(command) == tuple(parts)
