"""What a Metaflow user meets on mfc's command line: the graph rules (``self.next`` last,
no conditional ``self.next`` outside a switch, no ``num_parallel``), Metaflow names mfc does not provide,
``python flow.py ...`` options, and exit codes."""

from __future__ import annotations

import pytest
from compat_support import (
    describe,
    flow_file,
    metaflow_available,
    metaflow_env,
    metaflow_run,
    mfc_cli,
    mfc_env,
    mfc_run,
    write_flow,
)

import mfc
from mfc import Flow, default_namespace, metadata, namespace

LINEAR = '''
from mfc import FlowSpec, step


class TinyFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.end)

    @step
    def end(self):
        print("x is", self.x)


if __name__ == "__main__":
    TinyFlow()
'''

NEXT_NOT_LAST = '''
from mfc import FlowSpec, step


class NextNotLastFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)
        self.x = 1

    @step
    def end(self):
        pass
'''

CONDITIONAL_NEXT = '''
from mfc import FlowSpec, Parameter, step


class ConditionalFlow(FlowSpec):
    fast = Parameter("fast", default=True)

    @step
    def start(self):
        if self.fast:
            self.next(self.end)
        else:
            self.next(self.slow)

    @step
    def slow(self):
        self.next(self.end)

    @step
    def end(self):
        pass
'''

NUM_PARALLEL = '''
from mfc import FlowSpec, step


class ParallelFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train, num_parallel=2)

    @step
    def train(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
'''

KUBERNETES = '''
from mfc import FlowSpec, kubernetes, step


class KubeFlow(FlowSpec):
    @kubernetes(cpu=2)
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
'''

FLAKY_ON_ENV = '''
import os

from mfc import FlowSpec, step


class FlakyOnEnvFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.middle)

    @step
    def middle(self):
        if os.environ.get("COMPAT_FAIL"):
            raise RuntimeError("failing while COMPAT_FAIL is set")
        self.y = self.x + 1
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FlakyOnEnvFlow()
'''

CATCH_ON_FOREACH = '''
from mfc import FlowSpec, catch, step


class CatchForeachFlow(FlowSpec):
    @catch(var="error")
    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
'''


def _errors(proc) -> list[str]:
    """The ``error:`` lines of a refused command (one per problem, never a traceback)."""
    assert "Traceback" not in proc.stderr, describe(proc)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert lines, describe(proc)
    return lines


def _line_of(source: str, marker: str) -> int:
    lines = source.strip("\n").splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text)


@pytest.mark.parametrize("source, marker, words", [
    (NEXT_NOT_LAST, "self.next(self.end)", "self.next must be the last statement"),
    (CONDITIONAL_NEXT, "self.next(self.end)", "self.next must be the last statement"),
    (NUM_PARALLEL, "num_parallel", "num_parallel"),
], ids=["next-not-last", "conditional-next", "num-parallel"])
def test_unsupported_transitions_are_rejected_before_running(tmp_path, source, marker, words):
    """Metaflow rejects the first two as well (exit 1; a switch is the way to choose at run time:
    tests/compat/test_compat_switch.py); num_parallel needs Metaflow's @parallel. mfc refuses all
    three before running anything: exit 2, each problem on one line naming file:line."""
    path = write_flow(tmp_path, source)
    where = f"flow.py:{_line_of(source, marker)}:"
    for args in (("check", path), ("run", path)):
        proc = mfc_cli(tmp_path / "ds", *args)
        assert proc.returncode == 2, describe(proc)
        assert any(where in line and words in line for line in _errors(proc)), describe(proc)
    assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").iterdir())  # nothing ran


@pytest.mark.parametrize("name", ["kubernetes", "parallel",
                                  "Config", "profile"])
def test_metaflow_names_mfc_does_not_provide(name):
    assert not hasattr(mfc, name)
    with pytest.raises(ImportError):
        exec(f"from mfc import {name}", {})


def test_flow_using_kubernetes_fails_with_the_import_line(tmp_path):
    path = write_flow(tmp_path, KUBERNETES)
    proc = mfc_cli(tmp_path / "ds", "run", path)
    assert proc.returncode == 2
    (error,) = _errors(proc)
    assert "flow.py:1:" in error and "kubernetes" in error


def test_catch_on_a_foreach_split_step_is_rejected(tmp_path):
    proc = mfc_cli(tmp_path / "ds", "check", write_flow(tmp_path, CATCH_ON_FOREACH))
    assert proc.returncode == 2 and "@catch" in proc.stderr


def test_python_flow_py_commands(tmp_path):
    """``python flow.py run|show|check|logs|dump`` with the options Metaflow users pass."""
    path = write_flow(tmp_path, LINEAR)
    root = tmp_path / "ds"
    proc, run_id = mfc_run(root, path, "--tag", "t1", "--max-workers", "2", "--max-num-splits", "10",
                           "--with", "retry:times=2,minutes_between_retries=0", script=True)
    assert run_id and "x is 1" in proc.stdout
    assert mfc_cli(root, "show", python_file=path).returncode == 0
    checked = mfc_cli(root, "check", python_file=path)
    assert checked.returncode == 0 and "valid" in checked.stdout
    logs = mfc_cli(root, "logs", f"{run_id}/end", python_file=path)
    assert logs.returncode == 0 and "x is 1" in logs.stdout, describe(logs)
    dumped = mfc_cli(root, "dump", f"{run_id}/end", python_file=path)
    assert dumped.returncode == 0 and "x = 1" in dumped.stdout, describe(dumped)


def test_resume_like_metaflow(tmp_path):
    """``python flow.py resume`` reruns the failed step of the latest run, cloning what succeeded."""
    path = write_flow(tmp_path, FLAKY_ON_ENV)
    root = tmp_path / "ds"
    _, failed = mfc_run(root, path, "-q", script=True, expect=1, COMPAT_FAIL="1")
    proc = mfc_cli(root, "resume", "-q", python_file=path)
    assert proc.returncode == 0, describe(proc)
    metadata(str(root))
    namespace(None)
    try:
        run = Flow("FlakyOnEnvFlow").latest_run
        assert run.successful and run.origin_run_id == failed and run.id != failed
        assert run["start"].task.origin_pathspec == f"FlakyOnEnvFlow/{failed}/start/start"
        assert run.data.y == 2
    finally:
        metadata(None)
        default_namespace()


@pytest.mark.parametrize("option", [["--namespace", "x"], ["--max-log-size", "10"],
                                    ["--runner-attribute-file", "f"]])
def test_metaflow_run_options_mfc_lacks(tmp_path, option):
    """Documented differences: these `run` options of Metaflow are unknown to mfc (exit 2)."""
    proc = mfc_cli(tmp_path / "ds", "run", write_flow(tmp_path, LINEAR), *option)
    assert proc.returncode == 2 and option[0] in proc.stderr, describe(proc)


@pytest.mark.parametrize("options", [["--no-pylint"], ["--with", "retry"], ["--quiet"],
                                     ["--datastore=local", "--metadata=local"]],
                         ids=["no-pylint", "with", "quiet", "datastore-metadata"])
def test_metaflow_top_level_options(tmp_path, options):
    path = write_flow(tmp_path, LINEAR)
    proc = mfc_cli(tmp_path / "ds", *options, "run", python_file=path)
    assert proc.returncode == 0, describe(proc)


def test_exit_codes(tmp_path):
    """0 success; 1 a task failed; 2 an invalid flow or bad usage (Metaflow: 1 for an invalid flow)."""
    root = tmp_path / "ds"
    path = write_flow(tmp_path, LINEAR)
    assert mfc_run(root, path, "-q")[0].returncode == 0
    assert mfc_run(root, flow_file("merging"), "-q", "--conflict", "yes", expect=None)[0].returncode == 1
    assert mfc_run(root, path, "--no-such-parameter", "1", expect=None)[0].returncode == 2
    assert mfc_cli(root, "run", write_flow(tmp_path, NEXT_NOT_LAST, "bad.py")).returncode == 2


SCRIPT_HELP = '''
from mfc import FlowSpec, Parameter, step


class HelpedFlow(FlowSpec):
    """Trains the model of the week."""

    alpha = Parameter("alpha", default=0.5, help="Learning rate")
    who = Parameter("user-name", required=True, help="Whose run")

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HelpedFlow()
'''


def test_python_flow_py_help_is_the_flows_own(tmp_path):
    """``python flow.py --help`` (and plain ``python flow.py``), as in Metaflow: usage as the file,
    the flow's commands, and here its parameters too; not the generic ``mfc`` help."""
    path = write_flow(tmp_path, SCRIPT_HELP, "train.py")
    for args in (["--help"], ["-h"], []):
        proc = mfc_cli(tmp_path / "ds", *args, python_file=path)
        assert proc.returncode == 0, describe(proc)
        out = proc.stdout
        assert out.startswith("Usage: train.py [OPTIONS] COMMAND [ARGS]..."), out
        assert "Trains the model of the week." in out
        commands = out.split("Commands:")[1].split("Parameters")[0]
        for command in ("run", "resume", "show", "check", "logs", "dump", "tag"):
            assert f"\n  {command} " in commands, out
        assert "sandbox" not in out and "Usage: mfc" not in out and "task " not in commands
        assert "--alpha FLOAT" in out and "Learning rate (default: 0.5)" in out
        assert "--user-name STR" in out and "[required]" in out
    run_help = mfc_cli(tmp_path / "ds", "--help", "run", python_file=path)
    assert run_help.returncode == 0 and "Usage: train.py run" in run_help.stdout, describe(run_help)
    assert "Parameters of HelpedFlow" in run_help.stdout and "--alpha FLOAT" in run_help.stdout
    assert mfc_cli(tmp_path / "ds", "--version", python_file=path).stdout.startswith("mfc, version")


RESUMABLE = '''
from {module} import FlowSpec, step


class ResumeCompatFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.y = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.ys = sorted(i.y for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ResumeCompatFlow()
'''

# What a resume made, read by the framework's own client: which tasks were cloned, and the result.
RESUME_SUMMARY = '''
import json
from {module} import Flow, namespace
namespace(None)
runs = list(Flow("ResumeCompatFlow"))
latest = max(runs, key=lambda r: r.created_at)
print(json.dumps({{
    "runs": len(runs),
    "successful": latest.successful,
    "cloned": {{step.id: sorted(t.origin_pathspec is not None for t in step) for step in latest}},
    "ys": latest["join"].task.data.ys,
}}, sort_keys=True))
'''


def _resume_summary(workdir, module: str, env: dict[str, str]) -> dict:
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", RESUME_SUMMARY.format(module=module)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, describe(proc)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not metaflow_available(), reason="metaflow is not installed (pip install 'metaflow>=2.12,<3')")
def test_resume_of_a_successful_run_does_what_metaflow_does(tmp_path):
    """``python flow.py resume`` after a successful run, no step named: Metaflow clones every task,
    reruns none, and the new run succeeds; mfc does the same."""
    import subprocess
    import sys

    ours_dir, theirs_dir = tmp_path / "mfc", tmp_path / "metaflow"
    ours_dir.mkdir()
    theirs_dir.mkdir()
    ours = write_flow(ours_dir, RESUMABLE.format(module="mfc"))
    root = ours_dir / "ds"
    mfc_run(root, ours, "-q", script=True)
    resumed = mfc_cli(root, "resume", "-q", python_file=ours)
    assert resumed.returncode == 0, describe(resumed)
    ours_summary = _resume_summary(ours_dir, "mfc", mfc_env(root))

    theirs = write_flow(theirs_dir, RESUMABLE.format(module="metaflow"))
    metaflow_run(theirs_dir, theirs)
    env = metaflow_env(theirs_dir / "mf-home")
    proc = subprocess.run([sys.executable, theirs, "--no-pylint", "resume"], cwd=theirs_dir, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, describe(proc)
    theirs_summary = _resume_summary(theirs_dir, "metaflow", env)

    assert theirs_summary == {"runs": 2, "successful": True, "ys": [2, 4, 6],
                              "cloned": {"start": [True], "work": [True] * 3, "join": [True], "end": [True]}}
    assert ours_summary == theirs_summary
