"""The command line around runs: show, check, bad input, the script form, runs, logs, options."""

from __future__ import annotations

import json

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
    script,
    task_records,
    tree_digest,
    write_flow,
)

TWO_STEPS = '''
    from mfc import FlowSpec, step


    class {name}(FlowSpec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
'''

FLAKY = '''
    from mfc import FlowSpec, current, step


    class FlakyFlow(FlowSpec):
        @step
        def start(self):
            if current.retry_count == 0:
                raise RuntimeError("flaky on the first attempt")
            self.attempt = current.retry_count
            self.next(self.end)

        @step
        def end(self):
            pass
'''

DECO_FLOW = TWO_STEPS.format(name="DecoFlow").replace(
    "        @step\n        def end", "        @retry(tims=2)\n        @step\n        def end").replace(
    "import FlowSpec, step", "import FlowSpec, retry, step")


# -- show and check --------------------------------------------------------------------------------

def test_show_text_lists_steps_transitions_and_docstrings(root):
    proc = mfc(root, "show", flow_path("linear"))
    assert proc.returncode == 0, describe(proc)
    out = proc.stdout
    assert out.splitlines()[0] == "LinearFlow"
    assert "Three steps in a row." in out
    for step, doc in (("start", "Set the first artifacts."), ("middle", "Modify some of them."),
                      ("end", "Derive one more.")):
        assert f"Step {step} [" in out and doc in out
    assert out.index("Step start") < out.index("=> middle") < out.index("Step middle") < out.index("=> end")


def test_show_dot_and_mermaid(root):
    dot = mfc(root, "show", "--format", "dot", flow_path("foreach"))
    assert dot.returncode == 0, describe(dot)
    assert dot.stdout.startswith('digraph "ForeachFlow" {')
    assert '"start" -> "body" [label="foreach letters"];' in dot.stdout
    assert '"body" -> "join";' in dot.stdout and '"join" -> "end";' in dot.stdout
    mermaid = mfc(root, "show", "--format", "mermaid", flow_path("foreach"))
    assert mermaid.returncode == 0, describe(mermaid)
    assert mermaid.stdout.startswith("flowchart TD")
    assert 'step_start -->|"foreach letters"| step_body' in mermaid.stdout
    assert "step_join --> step_end" in mermaid.stdout


def test_check_valid_flow(root):
    proc = mfc(root, "check", flow_path("branch"))
    assert proc.returncode == 0, describe(proc)
    assert "BranchFlow: 8 steps, graph is valid." in proc.stdout


@pytest.mark.parametrize("body, marker, fragment", [
    ("""
    from mfc import FlowSpec, step


    class NoNextFlow(FlowSpec):
        @step
        def start(self):
            self.x = 1  # LAST

        @step
        def end(self):
            pass
    """, "# LAST", "step start does not end with self.next"),
    ("""
    from mfc import FlowSpec, step


    class JoinFlow(FlowSpec):
        @step
        def start(self):
            self.next(self.a, self.b)

        @step
        def a(self):
            self.next(self.end)

        @step
        def b(self):
            self.next(self.end)

        @step
        def end(self):
            pass
    """, "self.next(self.a, self.b)", "split start has no matching join"),
])
def test_check_invalid_flows(root, tmp_path, body, marker, fragment):
    file = write_flow(tmp_path, body)
    proc = mfc(root, "check", file)
    assert proc.returncode == 2, describe(proc)
    assert_no_traceback(proc.stderr)
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: ") and fragment in first
    assert f"flow.py:{line_of(file, marker)}: " in first


def test_check_rejects_unknown_decorator_argument(root, tmp_path):
    file = write_flow(tmp_path, DECO_FLOW)
    proc = mfc(root, "check", file)
    assert proc.returncode == 2, describe(proc)
    assert f"flow.py:{line_of(file, 'tims=2')}" in proc.stderr


# -- bad input: one line, exit 2, the datastore untouched ------------------------------------------

BAD_FILES = {
    "noflow": ("x = 1\n", None, "defines no FlowSpec subclass"),
    "two": (TWO_STEPS.format(name="OneFlow") + "\n\n" + TWO_STEPS.format(name="TwoFlow").split("\n\n\n", 1)[1],
            None, "two.py:OneFlow"),
    "syntax": ("""
        from mfc import FlowSpec, step


        class SyntaxFlow(FlowSpec):
            @step
            def start(self)  # SYNTAX
                self.next(self.end)
        """, "SYNTAX", "syntax error"),
    "deco": (DECO_FLOW, "tims=2", "'tims'"),
}


@pytest.fixture
def populated(root):
    """A datastore holding one finished run, and its digest."""
    run_flow(root, flow_path("linear"), extra=("-q",))
    return root, tree_digest(root)


def _assert_one_line_error(proc, fragment: str) -> str:
    assert proc.returncode == 2, describe(proc)
    assert_no_traceback(proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_flow_files(populated, tmp_path, kind):
    root, before = populated
    source, marker, fragment = BAD_FILES[kind]
    file = write_flow(tmp_path, source, f"{kind}.py")
    line = _assert_one_line_error(mfc(root, "run", file), fragment)
    if marker is not None:
        assert f"{kind}.py:{line_of(file, marker)}:" in line
    assert tree_digest(root) == before


def test_missing_flow_file(populated, tmp_path):
    root, before = populated
    _assert_one_line_error(mfc(root, "run", str(tmp_path / "nope.py")), "nope.py")
    assert tree_digest(root) == before


def test_two_flows_pick_one_by_name(root, tmp_path):
    source, _, _ = BAD_FILES["two"]
    file = write_flow(tmp_path, source, "two.py")
    _, run_id = run_flow(root, f"{file}:TwoFlow", extra=("-q",))
    assert run_info(root, "TwoFlow", run_id)["status"] == "succeeded"


@pytest.mark.parametrize("args, fragment", [
    (["--bogus", "1"], "unknown parameter --bogus"),
    (["--count", "abc"], "--count: expected an int, got 'abc'"),
    (["--count"], "--count needs a value"),
    (["stray"], "unexpected argument 'stray'"),
])
def test_bad_parameters(populated, args, fragment):
    root, before = populated
    _assert_one_line_error(mfc(root, "run", flow_path("params"), *args), fragment)
    assert tree_digest(root) == before


def test_missing_required_parameter(populated):
    root, before = populated
    line = _assert_one_line_error(mfc(root, "run", flow_path("required_param")), "--needed")
    assert "required" in line and "A number you must give." in line
    assert tree_digest(root) == before


# -- the script form -------------------------------------------------------------------------------

def test_script_run_show_and_logs(root, tmp_path):
    flow = flow_path("failing")
    id_file = tmp_path / "rid"
    proc = script(root, flow, "run", "--run-id-file", str(id_file))
    assert proc.returncode == 1, describe(proc)
    run_id = id_file.read_text().strip()
    [record] = task_records(root, "FailingFlow", run_id, "boom")
    logs = script(root, flow, "logs", f"{run_id}/boom/{record['task_id']}")
    assert logs.returncode == 0, describe(logs)
    assert logs.stdout == "about to fail\n"
    assert "ValueError: bad value 42" in logs.stderr
    show = script(root, flow, "show")
    assert show.returncode == 0, describe(show)
    assert "Step boom [linear]" in show.stdout


def test_script_run_with_parameters(root, tmp_path):
    id_file = tmp_path / "rid"
    proc = script(root, flow_path("branch"), "run", "--run-id-file", str(id_file), "--greeting", "yo")
    assert proc.returncode == 0, describe(proc)
    run_id = id_file.read_text().strip()
    assert f"Run BranchFlow/{run_id} succeeded." in proc.stdout
    assert only(root, "BranchFlow", run_id, "end")["p_end"] == "yo"


# -- runs, logs, tags and other run options --------------------------------------------------------

def test_runs_table_json_status_and_tag(root):
    _, ok_id = run_flow(root, flow_path("merge"), "--mode", "exclude", extra=("--tag", "nightly", "--tag", "v2", "-q"))
    _, bad_id = run_flow(root, flow_path("merge"), "--mode", "conflict", extra=("-q",), expect=1)
    table = mfc(root, "runs", flow_path("merge"))
    assert table.returncode == 0, describe(table)
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["run", "id"]
    assert lines[1].split()[:2] == [bad_id, "failed"]
    assert lines[2].split()[:2] == [ok_id, "succeeded"]
    assert "nightly, v2" in lines[2]
    data = json.loads(mfc(root, "runs", "MergeFlow", "--json").stdout)
    assert [(r["run_id"], r["status"]) for r in data] == [(bad_id, "failed"), (ok_id, "succeeded")]
    assert data[1]["tags"] == ["nightly", "v2"] and data[1]["parameters"] == {"mode": "exclude"}
    failed = json.loads(mfc(root, "runs", "MergeFlow", "--json", "--status", "failed").stdout)
    assert [r["run_id"] for r in failed] == [bad_id]
    tagged = json.loads(mfc(root, "runs", "MergeFlow", "--json", "--tag", "nightly").stdout)
    assert [r["run_id"] for r in tagged] == [ok_id]
    none = mfc(root, "runs", "MergeFlow", "--tag", "nightly", "--status", "failed")
    assert none.returncode == 0 and "no runs of MergeFlow match" in none.stdout
    assert run_info(root, "MergeFlow", ok_id)["tags"] == ["nightly", "v2"]


def test_logs_of_a_task_and_of_a_run(root):
    _, run_id = run_flow(root, flow_path("catching"), extra=("-q",))
    [caught] = task_records(root, "CatchFlow", run_id, "caught")
    task = mfc(root, "logs", f"CatchFlow/{run_id}/caught/{caught['task_id']}")
    assert task.returncode == 0, describe(task)
    assert "@catch caught ValueError: caught me" in task.stderr
    assert not task.stderr.startswith("[")
    whole = mfc(root, "logs", f"CatchFlow/{run_id}")
    assert whole.returncode == 0, describe(whole)
    prefix = f"[{run_id}/caught/{caught['task_id']}] "
    assert f"{prefix}@catch caught ValueError: caught me" in whole.stderr
    [retried] = task_records(root, "CatchFlow", run_id, "caught_retry")
    assert f"[{run_id}/caught_retry/{retried['task_id']}] @catch caught KeyError" in whole.stderr
    assert all(line.startswith(f"[{run_id}/") for line in whole.stderr.splitlines())
    first_attempt = mfc(root, "logs", f"CatchFlow/{run_id}/caught_retry/{retried['task_id']}", "--attempt", "0")
    assert "KeyError: 'attempt 0'" in first_attempt.stderr and "@catch caught" not in first_attempt.stderr


def test_logs_of_unknown_run(root):
    _assert_one_line_error(mfc(root, "logs", "LinearFlow/12345"), "no run LinearFlow/12345")


def test_run_output_normal_and_quiet(root):
    proc, run_id = run_flow(root, flow_path("failing"), expect=1)
    assert f"[{run_id}/boom/" in proc.stdout and "] about to fail" in proc.stdout
    quiet, quiet_id = run_flow(root, flow_path("linear"), extra=("--quiet",))
    assert quiet.stdout.strip() == f"Run LinearFlow/{quiet_id} succeeded."
    assert quiet.stderr == ""


def test_with_retry_makes_a_flaky_step_succeed(root, tmp_path):
    file = write_flow(tmp_path, FLAKY)
    proc, failed_id = run_flow(root, file, extra=("-q",), expect=1)
    assert "flaky on the first attempt" in proc.stderr
    _, run_id = run_flow(root, file, extra=("-q", "--with", "retry:times=1,minutes_between_retries=0"))
    assert only(root, "FlakyFlow", run_id, "start")["attempt"] == 1
    assert run_info(root, "FlakyFlow", run_id)["status"] == "succeeded"
    assert run_info(root, "FlakyFlow", failed_id)["status"] == "failed"


def test_run_id_file_matches_the_run(root):
    proc, run_id = run_flow(root, flow_path("linear"))
    assert run_id and run_id.isdigit()
    assert f"Run LinearFlow/{run_id} started" in proc.stdout
    assert f"Run LinearFlow/{run_id} succeeded." in proc.stdout
    assert run_info(root, "LinearFlow", run_id)["run_id"] == run_id


def test_datastore_root_flag_beats_env(root, tmp_path):
    other = tmp_path / "other"
    proc = mfc(root, "run", flow_path("linear"), "-q", "--datastore-root", str(other))
    assert proc.returncode == 0, describe(proc)
    assert (other / "LinearFlow").is_dir()
    assert not (root / "LinearFlow").exists()


def test_config_show_lists_settings_and_sources(root, tmp_path):
    proc = mfc(root, "config", "show", env={"MFC_MAX_WORKERS": "3"})
    assert proc.returncode == 0, describe(proc)
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:] if line.strip()}
    assert str(root) in rows["datastore_root"] and "env MFC_DATASTORE_ROOT" in rows["datastore_root"]
    assert rows["max_workers"].split()[1] == "3" and "env MFC_MAX_WORKERS" in rows["max_workers"]
    assert rows["max_num_splits"].split()[1:] == ["100", "default"]
    flag = mfc(root, "config", "show", "--datastore-root", str(tmp_path / "x"))
    line = next(x for x in flag.stdout.splitlines() if x.startswith("datastore_root"))
    assert str(tmp_path / "x") in line and "command line" in line


BATCH_DECORATED = '''
    from mfc import FlowSpec, batch, step


    class BatchLaptopFlow(FlowSpec):
        @batch(cpu=2, memory=2048)
        @step
        def start(self):
            self.value = 41
            self.next(self.end)

        @step
        def end(self):
            self.value += 1
'''


def test_batch_decorated_steps_run_here_on_a_local_datastore(root, tmp_path):
    flow = write_flow(tmp_path, BATCH_DECORATED)
    proc, run_id = run_flow(root, flow)
    assert "warning: @batch steps start run as local processes: the datastore is local" in proc.stderr
    assert only(root, "BatchLaptopFlow", run_id, "end")["value"] == 42


@pytest.mark.parametrize("extra", [("--batch",), ("--batch", "end"), ("--with", "batch")])
def test_asking_for_batch_on_a_local_datastore_is_a_clear_error(root, tmp_path, extra):
    flow = write_flow(tmp_path, BATCH_DECORATED)
    before = tree_digest(root)
    proc, _ = run_flow(root, flow, extra=extra, expect=2)
    assert "Batch jobs cannot reach the local datastore" in proc.stderr and "s3://" in proc.stderr
    assert_no_traceback(proc.stderr)
    assert tree_digest(root) == before


def test_datastore_flag_selects_and_checks_the_kind_of_root(root, tmp_path):
    flow = write_flow(tmp_path, TWO_STEPS.format(name="KindFlow") + "\n\n    if __name__ == '__main__':\n        KindFlow()\n")
    before = tree_digest(root)
    proc, _ = run_flow(root, flow, extra=("--datastore", "s3"), expect=2)
    assert "datastore s3 (command line) needs an s3:// datastore root" in proc.stderr
    assert "--datastore-root s3://BUCKET/PREFIX" in proc.stderr
    proc, _ = run_flow(root, flow, extra=("--datastore", "local", "--datastore-root", "s3://bucket/ds"), expect=2)
    assert "datastore local (command line) contradicts datastore_root s3://bucket/ds" in proc.stderr
    assert_no_traceback(proc.stderr)
    assert tree_digest(root) == before
    # an s3:// root from the environment (a profile, say) gives way to --datastore local
    work = tmp_path / "work"
    work.mkdir()
    (work / ".mfc").mkdir()
    done = mfc(None, "run", flow, "--datastore", "local", cwd=work, env={"MFC_DATASTORE_ROOT": "s3://bucket/ds"})
    assert done.returncode == 0, describe(done)
    assert (work / ".mfc" / "KindFlow").is_dir()
    # Metaflow's top-level form
    done = script(None, flow, "--datastore=local", "run", cwd=work, env={"MFC_DATASTORE_ROOT": "s3://bucket/ds"})
    assert done.returncode == 0 and "succeeded" in done.stdout, describe(done)
    assert len(list((work / ".mfc" / "KindFlow").iterdir())) >= 2  # both runs stored there
    # commands that store nothing take Metaflow's top-level datastore options and ignore them
    for command in ("show", "check"):
        done = script(None, flow, "--datastore=s3", "--datastore-root", "s3://bucket/ds", command, cwd=work)
        assert done.returncode == 0 and "KindFlow" in done.stdout, describe(done)
