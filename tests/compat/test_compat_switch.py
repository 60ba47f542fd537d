"""Switch transitions (``self.next({...}, condition="attr")``, Metaflow >= 2.15) on mfc: each case
of a switch on a parameter, a switch that repeats its own step, a switch in a foreach body and a
static split inside a case, run through the real ``mfc run`` and, where Metaflow is installed,
under Metaflow with the same results; the mistakes a switch can hold, refused before anything
runs (file:line) or failing the task in one line; and resume of a run that went through a loop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from compat_support import describe, flow_file, metaflow_available, metaflow_env, mfc_cli, mfc_run, write_flow

from mfc import Run, metadata, namespace

FLOW = flow_file("switch_flow")
PATHS = {
    "fast": ["fast", "loop1", "loop2", "loop3"],
    "slow": ["slow", "loop11", "loop12", "loop13"],
    "fanout": ["fanout", "left+right", "loop1", "loop2", "loop3"],
}


@pytest.fixture
def client(root):
    metadata(str(root))
    namespace(None)
    yield
    metadata(None)


def _end(root: Path, run_id: str) -> dict:
    metadata(str(root))
    namespace(None)
    data = Run(f"SwitchFlow/{run_id}")["end"].task.data
    return {"path": data.path, "labels": data.labels}


@pytest.mark.parametrize("mode", ["fast", "slow", "fanout"])
def test_each_case_runs_only_its_steps(root, client, mode):
    _, run_id = mfc_run(root, FLOW, "--mode", mode)
    run = Run(f"SwitchFlow/{run_id}")
    assert run.successful
    ran = {step.id for step in run}
    others = {"fast", "slow", "fanout"} - {mode}
    assert mode in ran and not others & ran
    assert ("left" in ran) == (mode == "fanout")
    assert run["end"].task.data.path == PATHS[mode]
    assert run["gather"].task.data.labels == ["0:even", "1:odd", "2:even"]  # foreach index order
    assert sorted(t.id for t in run["loop"]) == ["loop.0", "loop.1", "loop.2"]  # one task per repetition
    assert sorted(t.id for t in run["even"]) == ["even-0", "even-2"] and [t.id for t in run["odd"]] == ["odd-1"]


@pytest.mark.skipif(not metaflow_available(), reason="metaflow is not installed")
@pytest.mark.parametrize("mode", ["fast", "fanout"])
def test_same_results_as_metaflow(root, tmp_path: Path, mode):
    """Metaflow orders a foreach join's inputs by the case each item took (even before odd), and
    a static join's by arrival; mfc by foreach index and by self.next order, as every other join
    (docs/switch.md): the values are compared as sets there."""
    source = Path(FLOW).read_text().replace("from mfc import", "from metaflow import")
    (tmp_path / "flow.py").write_text(source)
    code = ("import json\nfrom metaflow import Flow, namespace\nnamespace(None)\n"
            "run = Flow('SwitchFlow').latest_run\nd = run['end'].task.data\n"
            "steps = {s.id: len(list(s)) for s in run}\n"
            "print(json.dumps({'path': d.path, 'labels': d.labels, 'steps': steps}))\n")
    env = metaflow_env(tmp_path / "home")
    ran = subprocess.run([sys.executable, "flow.py", "--no-pylint", "run", "--mode", mode], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, describe(ran)
    read = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert read.returncode == 0, describe(read)
    theirs = json.loads(read.stdout.strip().splitlines()[-1])
    _, run_id = mfc_run(root, FLOW, "--mode", mode)
    ours = _end(root, run_id)
    run = Run(f"SwitchFlow/{run_id}")
    assert {s.id: len(list(s)) for s in run} == theirs["steps"]
    assert sorted(ours["labels"]) == sorted(theirs["labels"])
    split = 1 if mode == "fanout" else None
    if split:  # the static join's order
        assert sorted(ours["path"][split].split("+")) == sorted(theirs["path"][split].split("+"))
        ours["path"][split] = theirs["path"][split] = ""
    assert ours["path"] == theirs["path"]


@pytest.mark.parametrize("args, env, words", [
    (("--mode", "bogus"), {}, "self.route is 'bogus', which is not a case of the switch (cases: 'fast', 'slow', 'fanout')"),
], ids=["no-case"])
def test_a_value_with_no_case_fails_the_task_in_one_line(root, args, env, words):
    proc, _ = mfc_run(root, FLOW, *args, expect=1, **env)
    assert "Traceback" not in proc.stderr + proc.stdout, describe(proc)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and words in errors[0] and "switch_flow.py:" in errors[0], describe(proc)


UNSET = '''
from mfc import FlowSpec, step


class UnsetFlow(FlowSpec):
    @step
    def start(self):
        self.next({"a": self.a, "b": self.end}, condition="mode")

    @step
    def a(self):
        self.next(self.end)

    @step
    def end(self):
        pass
'''


def test_an_unset_condition_fails_the_task_in_one_line(root, tmp_path):
    proc, _ = mfc_run(root, write_flow(tmp_path, UNSET), expect=1)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in proc.stderr, describe(proc)
    assert len(errors) == 1 and "condition self.mode is not set" in errors[0], describe(proc)


def test_a_failed_run_after_a_loop_resumes(root, client, tmp_path):
    _, failed = mfc_run(root, FLOW, expect=1, COMPAT_FAIL_GATHER="1")
    id_file = tmp_path / "resumed"
    proc = mfc_cli(root, "resume", FLOW, "--origin-run-id", failed, "--run-id-file", str(id_file), timeout=120)
    assert proc.returncode == 0, describe(proc)
    run = Run(f"SwitchFlow/{id_file.read_text().strip()}")
    assert run.successful and run["end"].task.data.path == PATHS["fast"]
    assert sorted(t.id for t in run["loop"]) == ["loop.0", "loop.1", "loop.2"]
    assert all(t.origin_pathspec for t in run["loop"])  # cloned, not run again
    assert not run["gather"].task.origin_pathspec


def _switch_flow(body: str) -> str:
    return "from mfc import FlowSpec, catch, step\n\n\nclass BadSwitch(FlowSpec):\n" + body + '''
    @step
    def a(self):
        self.next(self.end)

    @step
    def b(self):
        self.next(self.end)

    @step
    def end(self):
        pass
'''


BAD = {
    "no-condition": ('''
    @step
    def start(self):
        self.next({"x": self.a, "y": self.b})  # here
''', "needs condition="),
    "variable-key": ('''
    @step
    def start(self):
        key = "x"
        self.next({key: self.a, "y": self.b}, condition="mode")  # here
''', "is not a literal"),
    "one-case": ('''
    @step
    def start(self):
        self.next({"x": self.a}, condition="mode")  # here
''', "at least 2"),
    "not-a-step": ('''
    @step
    def start(self):
        self.next({"x": self.a, "y": "b"}, condition="mode")  # here
''', "must name a step"),
    "condition-not-a-string": ('''
    @step
    def start(self):
        self.next({"x": self.a, "y": self.b}, condition=self.mode)  # here
''', "must be a string naming an artifact"),
    "with-foreach": ('''
    @step
    def start(self):
        self.next({"x": self.a, "y": self.b}, condition="mode", foreach="items")  # here
''', "cannot also take foreach="),
    "catch": ('''
    @catch(var="err")  # here
    @step
    def start(self):
        self.next({"x": self.a, "y": self.b}, condition="mode")
''', "@catch cannot be used on switch step start"),
    "loop-to-earlier-step": ('''
    @step
    def start(self):
        self.next(self.c)

    @step
    def c(self):
        self.next({"again": self.start, "y": self.a, "z": self.b}, condition="mode")  # here
''', "cycle"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_invalid_switches_are_refused_before_running(tmp_path, name):
    body, words = BAD[name]
    source = _switch_flow(body)
    path = write_flow(tmp_path, source)
    line = next(i for i, text in enumerate(Path(path).read_text().splitlines(), 1) if "# here" in text)
    proc = mfc_cli(tmp_path / "ds", "check", path)
    assert proc.returncode == 2, describe(proc)
    assert "Traceback" not in proc.stderr
    assert any(f"flow.py:{line}:" in e and words in e for e in proc.stderr.splitlines()), describe(proc)


JOIN_AFTER_SWITCH = '''
from mfc import FlowSpec, step


class JoinAfterSwitch(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next({"x": self.j, "y": self.c}, condition="mode")  # here

    @step
    def c(self):
        self.next(self.j)

    @step
    def b(self):
        self.next(self.j)

    @step
    def j(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
'''


def test_a_switch_straight_to_a_join_is_refused(tmp_path):
    path = write_flow(tmp_path, JOIN_AFTER_SWITCH)
    line = next(i for i, text in enumerate(Path(path).read_text().splitlines(), 1) if "# here" in text)
    proc = mfc_cli(tmp_path / "ds", "check", path)
    assert proc.returncode == 2, describe(proc)
    assert any(f"flow.py:{line}:" in e and "goes straight to join j" in e for e in proc.stderr.splitlines()), describe(proc)


def test_show_names_the_cases(tmp_path):
    proc = mfc_cli(tmp_path / "ds", "show", FLOW)
    assert proc.returncode == 0, describe(proc)
    assert "=> one of loop, items (switch on again: True: loop, False: items)" in proc.stdout


@pytest.mark.parametrize("pick", ["x", "y"])
def test_more_shapes_like_metaflow(root, client, tmp_path: Path, pick):
    """A loop in a foreach body, a switch in a branch, a case that skips to end."""
    shapes = flow_file("switch_shapes")
    _, run_id = mfc_run(root, shapes, "--pick", pick)
    run = Run(f"SwitchShapesFlow/{run_id}")
    end = run["end"].task.data
    assert end.counts == ["1:1", "3:3"]
    assert end.vs == sorted(["b2", "c" if pick == "x" else "d"])
    assert end.trail == (["route", "tail"] if pick == "x" else ["route"])
    assert sorted(t.id for t in run["each"]) == ["each-0.0", "each-1.0", "each-1.1", "each-1.2"]
    if not metaflow_available():
        return
    source = Path(shapes).read_text().replace("from mfc import", "from metaflow import")
    (tmp_path / "flow.py").write_text(source)
    env = metaflow_env(tmp_path / "home")
    ran = subprocess.run([sys.executable, "flow.py", "--no-pylint", "run", "--pick", pick], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, describe(ran)
    theirs = next(line for line in ran.stdout.splitlines() if "counts" in line).split("counts", 1)[1]
    ours = f" {end.counts} vs {end.vs} trail {end.trail}"
    assert theirs.strip() == ours.strip()
