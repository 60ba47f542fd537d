"""Run parameters given on the command line, from the environment and by default."""

from __future__ import annotations

import pytest
from support import (
    assert_no_traceback,
    describe,
    flow_path,
    line_of,
    mfc,
    only,
    run_flow,
    run_info,
    task_records,
    write_flow,
)

DEFAULTS = {"text": "hello", "count": 3, "ratio": 1.5, "flag": False, "verbose": True,
            "config": {"a": 1}, "max_size": 10}


def seen(root, run_id):
    start = only(root, "ParamsFlow", run_id, "start")["seen"]
    assert only(root, "ParamsFlow", run_id, "end")["seen_end"] == start
    return start


def test_defaults_and_their_types(root):
    _, run_id = run_flow(root, flow_path("params"), extra=("-q",))
    values = seen(root, run_id)
    assert values == DEFAULTS
    assert [type(values[k]) for k in ("text", "count", "ratio", "flag", "config")] == [str, int, float, bool, dict]
    assert run_info(root, "ParamsFlow", run_id)["parameters"] == DEFAULTS


def test_every_type_from_the_command_line(root):
    _, run_id = run_flow(root, flow_path("params"), "--text", "a b c", "--count=7", "--ratio", "0.25", "--flag",
                         "--no-verbose", "--config", '{"b": [1, 2], "c": null}', "--max-size", "42", extra=("-q",))
    assert seen(root, run_id) == {"text": "a b c", "count": 7, "ratio": 0.25, "flag": True, "verbose": False,
                                  "config": {"b": [1, 2], "c": None}, "max_size": 42}


@pytest.mark.parametrize("args, expected", [
    (["--flag=false", "--verbose=yes"], {"flag": False, "verbose": True}),
    (["--flag=1", "--no-verbose"], {"flag": True, "verbose": False}),
    (["--max_size=5", "--count", "-2"], {"max_size": 5, "count": -2}),
    (["--text="], {"text": ""}),
])
def test_equals_form_flags_and_spellings(root, args, expected):
    _, run_id = run_flow(root, flow_path("params"), *args, extra=("-q",))
    assert seen(root, run_id) == {**DEFAULTS, **expected}


def test_environment_variables_and_precedence(root):
    env = {"MFC_RUN_COUNT": "11", "MFC_RUN_TEXT": "from env", "MFC_RUN_FLAG": "true", "MFC_RUN_MAX_SIZE": "8"}
    _, run_id = run_flow(root, flow_path("params"), "--text", "from flag", extra=("-q",), env=env)
    assert seen(root, run_id) == {**DEFAULTS, "count": 11, "text": "from flag", "flag": True, "max_size": 8}


def test_bad_environment_value_names_the_variable(root):
    proc = mfc(root, "run", flow_path("params"), env={"MFC_RUN_COUNT": "many"})
    assert proc.returncode == 2, describe(proc)
    assert "MFC_RUN_COUNT" in proc.stderr and "'many'" in proc.stderr
    assert_no_traceback(proc.stderr)


@pytest.mark.parametrize("args, fragment", [
    (["--ratio", "fast"], "--ratio: expected a float, got 'fast'"),
    (["--config", "{not json"], "--config: expected a JSON"),
    (["--flag=maybe"], "--flag"),
    (["--no-text"], "unknown parameter --no-text"),
])
def test_wrong_values(root, args, fragment):
    proc = mfc(root, "run", flow_path("params"), *args)
    assert proc.returncode == 2, describe(proc)
    assert fragment in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert_no_traceback(proc.stderr)
    assert not any(root.iterdir())


def test_required_parameter(root):
    missing = mfc(root, "run", flow_path("required_param"))
    assert missing.returncode == 2 and "missing required parameter --needed" in missing.stderr
    assert "A number you must give." in missing.stderr
    _, run_id = run_flow(root, flow_path("required_param"), "--needed", "5", extra=("-q",))
    assert only(root, "RequiredFlow", run_id, "end")["final"] == 5
    _, env_id = run_flow(root, flow_path("required_param"), extra=("-q",), env={"MFC_RUN_NEEDED": "6"})
    assert only(root, "RequiredFlow", env_id, "start")["got"] == 6


def test_parameters_are_read_only_in_steps(root):
    flow = flow_path("required_param")
    proc, run_id = run_flow(root, flow, "--needed", "5", "--assign", extra=("-q",), expect=1)
    assert "parameter 'needed' is read-only" in proc.stderr, describe(proc)
    assert f"required_param.py:{line_of(flow, 'ASSIGN-PARAM')}" in proc.stderr
    [record] = task_records(root, "RequiredFlow", run_id, "end")
    assert record["status"] == "failed" and "read-only" in record["exception"]["message"]
    assert only(root, "RequiredFlow", run_id, "start")["needed"] == 5


def test_run_help_lists_parameters_with_their_help(root):
    proc = mfc(root, "run", flow_path("params"), "--help")
    assert proc.returncode == 0, describe(proc)
    assert "--count" in proc.stdout and "How many." in proc.stdout
    assert "--flag" in proc.stdout and "A switch." in proc.stdout


DASHED = """
    from mfc import FlowSpec, Parameter, step


    class DashFlow(FlowSpec):
        max_size = Parameter("max-size", default=1)
        who = Parameter("who", default=lambda ctx: f"{ctx.user_name}@{ctx.flow_name}")

        @step
        def start(self):
            self.seen = (self.max_size, self.who)
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def test_dashed_name_and_callable_default(root, tmp_path):
    file = write_flow(tmp_path, DASHED)
    _, run_id = run_flow(root, file, "--max-size", "4", extra=("-q",), env={"MFC_USER": "ann"})
    assert only(root, "DashFlow", run_id, "start")["seen"] == (4, "ann@DashFlow")


def test_dashed_name_from_environment(root, tmp_path):
    file = write_flow(tmp_path, DASHED)
    _, run_id = run_flow(root, file, extra=("-q",), env={"MFC_RUN_MAX_SIZE": "6"})
    assert only(root, "DashFlow", run_id, "start")["seen"][0] == 6
