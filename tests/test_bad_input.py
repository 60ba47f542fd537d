"""Bad input is one line naming what is wrong and where, exit 2, no traceback, nothing written:
unusable datastore roots, flow paths that are not flow files, parameters named like run options,
missing log attempts, invalid tags, ``--debug`` after the subcommand, unknown options of resume."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support import (
    assert_no_traceback,
    describe,
    line_of,
    mfc,
    run_flow,
    tree_digest,
    write_flow,
)

from mfc.graph_check import RUN_OPTION_NAMES

HELLO = """
    from mfc import FlowSpec, step

    class HelloFlow(FlowSpec):
        @step
        def start(self):
            print("hello")
            self.x = 1
            self.next(self.end)

        @step
        def end(self):
            pass
"""

RETRIED = """
    from mfc import FlowSpec, retry, step

    class RetriedFlow(FlowSpec):
        @retry(times=1, minutes_between_retries=0)
        @step
        def start(self):
            from mfc import current
            print(f"attempt {current.retry_count}")
            if current.retry_count == 0:
                raise RuntimeError("first attempt fails")
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def one_line_error(proc, *fragments: str, code: int = 2) -> str:
    """Assert ``proc`` failed with one ``error:`` line holding every fragment; return that line."""
    assert proc.returncode == code, describe(proc)
    assert_no_traceback(proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), describe(proc)
    for fragment in fragments:
        assert fragment in lines[0], describe(proc)
    return lines[0]


# -- the datastore root ---------------------------------------------------------------------------

def test_a_datastore_root_that_is_a_file_is_named_with_where_it_came_from(tmp_path):
    flow = write_flow(tmp_path, HELLO)
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.default]\ndatastore_root = "{afile}"\n')
    for args, env, source in (
        (("--datastore-root", str(afile)), None, "(from --datastore-root)"),
        ((), {"MFC_DATASTORE_ROOT": str(afile)}, "(from MFC_DATASTORE_ROOT)"),
        ((), {"MFC_CONFIG": str(config)}, f"(from profile default ({config}))"),
    ):
        proc = mfc(None, "run", flow, *args, env=env, cwd=tmp_path)
        one_line_error(proc, f"datastore root {afile} {source} is a file, not a directory")
    assert afile.read_text() == "not a directory"
    under = afile / "ds"
    proc = mfc(under, "run", flow)
    one_line_error(proc, f"datastore root {under} (from MFC_DATASTORE_ROOT) lies under {afile}, which is a file")
    for args in (("runs", flow), ("logs", "HelloFlow/1"), ("dump", "HelloFlow/1"), ("tag", "add", "HelloFlow/1", "x")):
        one_line_error(mfc(afile, *args), f"datastore root {afile}", "is a file")


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.path.isdir("/sys/kernel"),
                    reason="needs /sys, where no one may create a directory")
def test_a_datastore_root_that_cannot_be_created_is_refused_before_anything_runs(tmp_path):
    flow = write_flow(tmp_path, HELLO.replace('print("hello")', 'open("ran", "w").close()'))
    for command in (("run", flow), ("tag", "add", "HelloFlow/1", "x")):
        proc = mfc("/sys/mfc-datastore", *command, cwd=tmp_path)
        one_line_error(proc, "datastore root /sys/mfc-datastore (from MFC_DATASTORE_ROOT) cannot be written")
    assert not (tmp_path / "ran").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write a read-only directory")
def test_a_read_only_datastore_root_is_refused(tmp_path):
    flow = write_flow(tmp_path, HELLO)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for root in (locked, locked / "ds"):
            one_line_error(mfc(root, "run", flow), f"datastore root {root}", "cannot be written")
    finally:
        locked.chmod(0o755)


def test_a_writable_root_that_does_not_exist_yet_is_created_by_the_run(tmp_path):
    flow = write_flow(tmp_path, HELLO)
    root = tmp_path / "new" / "ds"
    run_flow(root, flow)
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]  # the write probe is gone


# -- the flow file --------------------------------------------------------------------------------

def test_a_directory_or_a_binary_file_given_as_the_flow_says_what_it_is(tmp_path):
    (tmp_path / "flow.py").mkdir()
    (tmp_path / "x.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "latin.py").write_bytes("# caf\xe9\n".encode("latin-1"))
    for command in ("run", "check", "show"):
        one_line_error(mfc(tmp_path / "ds", command, "flow.py", cwd=tmp_path), "error: flow.py: is a directory")
        one_line_error(mfc(tmp_path / "ds", command, "x.bin", cwd=tmp_path),
                       "error: x.bin: not a Python source file (binary)")
        one_line_error(mfc(tmp_path / "ds", command, "latin.py", cwd=tmp_path), "latin.py: not UTF-8 text")
    assert not (tmp_path / "ds").exists()


def test_a_flow_file_without_the_py_suffix_runs_as_python_runs_it(tmp_path):
    flow = write_flow(tmp_path, HELLO, name="hello.flow")
    proc, run_id = run_flow(tmp_path / "ds", flow)
    assert run_id and "hello" in proc.stdout


# -- parameters named like run options --------------------------------------------------------------

@pytest.mark.parametrize("name, option", [
    ("max_workers", "max-workers"), ("max-workers", "max-workers"), ("tag", "tag"), ("quiet", "quiet"),
    ("run_id_file", "run-id-file"), ("with", "with"), ("batch", "batch"), ("gpu", "gpu"),
    ("datastore-root", "datastore-root"), ("help", "help"), ("debug", "debug"),
])
def test_a_parameter_named_like_a_run_option_is_refused_by_run_and_check(tmp_path, name, option):
    flow = write_flow(tmp_path, f"""
        from mfc import FlowSpec, Parameter, step

        class ClashFlow(FlowSpec):
            clash = Parameter("{name}", default="1")  # CLASH

            @step
            def start(self):
                open("ran", "w").close()
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    expected = f"flow.py:{line_of(flow, '# CLASH')}: parameter {name} clashes with the run option --{option}"
    for command in ("run", "check"):
        one_line_error(mfc(tmp_path / "ds", command, flow, cwd=tmp_path), expected)
    assert not (tmp_path / "ran").exists()


def test_run_option_names_are_every_option_of_mfc_run():
    from mfc.cli.main import cli

    options = {opt.lstrip("-") for param in cli.commands["run"].params for opt in param.opts if opt.startswith("--")}
    assert RUN_OPTION_NAMES == options | {"help", "debug"}


# -- logs --attempt -------------------------------------------------------------------------------

def test_logs_of_an_attempt_that_does_not_exist_lists_the_attempts(root, tmp_path):
    _, run_id = run_flow(root, write_flow(tmp_path, RETRIED))
    task = mfc(root, "logs", f"RetriedFlow/{run_id}/start")
    assert task.returncode == 0 and "attempt 1" in task.stdout, describe(task)
    first = mfc(root, "logs", f"RetriedFlow/{run_id}/start", "--attempt", "0")
    assert first.returncode == 0 and "attempt 0" in first.stdout and "attempt 1" not in first.stdout
    one_line_error(mfc(root, "logs", f"RetriedFlow/{run_id}/start/start", "--attempt", "99"),
                   f"task RetriedFlow/{run_id}/start/start has no attempt 99 (attempts: 0, 1)")
    one_line_error(mfc(root, "logs", f"RetriedFlow/{run_id}", "--attempt", "99"),
                   f"no task of RetriedFlow/{run_id} has attempt 99 (attempts: 0, 1)")
    whole = mfc(root, "logs", f"RetriedFlow/{run_id}", "--attempt", "1")  # tasks without attempt 1 are skipped
    assert whole.returncode == 0 and "/start/start] attempt 1" in whole.stdout and "/end/" not in whole.stdout
    one_line_error(mfc(root, "logs", f"RetriedFlow/{run_id}/start", "--attempt", "-1"), "--attempt", "-1")


# -- tags -----------------------------------------------------------------------------------------

BAD_TAGS = [
    ("", "must be non-empty"),
    ("   ", "must be non-empty"),
    ("two\nlines", "newlines or other control characters"),
    ("carriage\rreturn", "control characters"),
    ("tab\there", "control characters"),
    ("bell\x07", "control characters"),
    ("x" * 501, "at most 500 characters"),
]


@pytest.mark.parametrize("tag, reason", BAD_TAGS, ids=["empty", "blank", "newline", "cr", "tab", "bell", "long"])
def test_invalid_tags_are_refused_alike_by_run_and_tag_add(root, tmp_path, tag, reason):
    flow = write_flow(tmp_path, HELLO)
    _, run_id = run_flow(root, flow)
    before = tree_digest(root)
    by_run = one_line_error(mfc(root, "run", flow, "--tag", "ok", "--tag", tag), reason)
    by_tag = one_line_error(mfc(root, "tag", "add", f"HelloFlow/{run_id}", "ok", tag), reason)
    assert by_run == by_tag  # one validator
    assert tree_digest(root) == before


def test_tag_rules_in_the_client_and_at_the_limits(root, tmp_path):
    from mfc import Run, default_namespace, metadata, namespace
    from mfc.tags import InvalidTag

    flow = write_flow(tmp_path, HELLO)
    _, run_id = run_flow(root, flow, extra=("--tag", "x" * 500))  # Metaflow's longest tag
    metadata(str(root))
    namespace(None)
    try:
        run = Run(f"HelloFlow/{run_id}")
        assert run.user_tags == {"x" * 500}
        for tag in [t for t, _ in BAD_TAGS] + ["nul\x00byte", None, 7]:
            with pytest.raises(InvalidTag):
                run.add_tag(tag)
        run.add_tags([f"t{i}" for i in range(49)])
        with pytest.raises(InvalidTag, match="at most 50 user tags"):
            run.add_tag("one-too-many")
        run.remove_tag("t0")
        assert len(Run(run.pathspec).user_tags) == 49
    finally:
        metadata(None)
        default_namespace()
    many = [arg for i in range(51) for arg in ("--tag", f"t{i}")]
    one_line_error(mfc(root, "run", flow, *many), "at most 50 user tags")


# -- --debug anywhere ------------------------------------------------------------------------------

def test_debug_after_the_subcommand_shows_the_traceback(root, tmp_path):
    flow = write_flow(tmp_path, HELLO)
    proc, run_id = run_flow(root, flow, extra=("--debug",))
    assert run_id and "Run HelloFlow" in proc.stdout
    one_line_error(mfc(root, "logs", "HelloFlow/123"), "no run HelloFlow/123")
    for args in (("logs", "HelloFlow/123", "--debug"), ("--debug", "logs", "HelloFlow/123")):
        shown = mfc(root, *args)
        assert shown.returncode != 0 and "Traceback (most recent call last)" in shown.stderr, describe(shown)
        assert "no run HelloFlow/123" in shown.stderr
    script = mfc(root, "run", flow, "--no-such-parameter", "1", "--debug")
    assert "Traceback (most recent call last)" in script.stderr and "--no-such-parameter" in script.stderr


# -- resume's options, and click's usage errors ---------------------------------------------------------

def test_resume_answers_an_unknown_option_as_one_not_as_a_step(root, tmp_path):
    flow = write_flow(tmp_path, HELLO.replace('print("hello")', 'raise ValueError("boom")'))
    run_flow(root, flow, expect=1)
    before = tree_digest(root)
    one_line_error(mfc(root, "resume", flow, "--delay", "0.01"), "error: no such option: --delay",
                   "(see 'mfc resume --help')")
    one_line_error(mfc(root, "resume", flow, "start", "--delay"), "no such option: --delay")
    assert tree_digest(root) == before
    helped = mfc(root, "resume", "--help")
    assert helped.returncode == 0 and "--origin-run-id" in helped.stdout


def test_usage_errors_are_one_line(root, tmp_path):
    flow = write_flow(tmp_path, HELLO)
    one_line_error(mfc(root, "run"), "Missing argument 'FLOW'", "(see 'mfc run --help')")
    one_line_error(mfc(root, "run", flow, "--max-workers", "0"), "--max-workers", "0")
    one_line_error(mfc(root, "logs", "HelloFlow/1", "--atempt", "1"), "no such option: --atempt",
                   "did you mean --attempt?")
    one_line_error(mfc(root, "nosuchcommand"), "No such command 'nosuchcommand'")
    assert Path(root).exists()
