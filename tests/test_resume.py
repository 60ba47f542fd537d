"""`mfc resume`: clone what succeeded, rerun from the failed (or named) step with the current code
and the origin's parameters."""

from __future__ import annotations

import uuid
from pathlib import Path

from support import (
    artifacts,
    assert_no_traceback,
    describe,
    mfc,
    only,
    records,
    run_flow,
    run_info,
    task_records,
    tree_digest,
    write_flow,
)

LINEAR = """
    import os
    from mfc import FlowSpec, Parameter, step

    class ResumeFlow(FlowSpec):
        base = Parameter("base", default=1)

        @step
        def start(self):
            self.x = self.base
            self.next(self.a)

        @step
        def a(self):
            self.x += 10
            self.next(self.b)

        @step
        def b(self):
            if os.environ.get("FAIL_B") == "1":
                raise ValueError("b is broken")
            self.x += 100  # VERSION 1
            self.next(self.end)

        @step
        def end(self):
            self.final = self.x
"""

FOREACH = """
    import os
    from mfc import FlowSpec, step

    class ResumeForeachFlow(FlowSpec):
        @step
        def start(self):
            self.items = [1, 2, 3, 4]
            self.next(self.work, foreach="items")

        @step
        def work(self):
            if self.input == 3 and os.environ.get("FAIL_ITEM") == "1":
                raise RuntimeError("item 3 failed")
            self.y = self.input * 2
            self.next(self.join)

        @step
        def join(self, inputs):
            self.ys = [i.y for i in inputs]
            self.next(self.end)

        @step
        def end(self):
            pass
"""


def _resume(root: Path, flow: str, *args: str, env: dict[str, str] | None = None, expect: int = 0):
    id_file = root.parent / f"resume-{uuid.uuid4().hex}"
    proc = mfc(root, "resume", flow, "--run-id-file", str(id_file), *args, env=env)
    assert proc.returncode == expect, describe(proc)
    return proc, (id_file.read_text().strip() if id_file.exists() else None)


def test_resume_clones_what_succeeded_and_reruns_the_failed_step_with_new_code(root, tmp_path):
    flow = write_flow(tmp_path, LINEAR)
    _, origin = run_flow(root, flow, "--base", "5", env={"FAIL_B": "1"}, expect=1)
    Path(flow).write_text(Path(flow).read_text().replace("self.x += 100  # VERSION 1", "self.x += 1000"))
    _, resumed = _resume(root, flow)
    assert resumed and resumed != origin
    info = run_info(root, "ResumeFlow", resumed)
    assert info["status"] == "succeeded" and info["origin_run_id"] == origin and info["resume_step"] == "b"
    assert only(root, "ResumeFlow", resumed, "end")["final"] == 5 + 10 + 1000  # origin's parameter, new code
    for step in ("start", "a"):
        cloned, original = task_records(root, "ResumeFlow", resumed, step)[0], task_records(root, "ResumeFlow", origin, step)[0]
        assert cloned["origin_pathspec"] == original["pathspec"]
        assert cloned["artifacts"] == original["artifacts"]  # same content-addressed data, nothing copied
    assert "origin_pathspec" not in task_records(root, "ResumeFlow", resumed, "b")[0]


def test_resume_of_a_resumed_run_and_from_a_named_step(root, tmp_path):
    flow = write_flow(tmp_path, LINEAR)
    _, origin = run_flow(root, flow, env={"FAIL_B": "1"}, expect=1)
    _, first = _resume(root, flow)
    _, second = _resume(root, flow, "a", "--origin-run-id", first)
    assert run_info(root, "ResumeFlow", second)["origin_run_id"] == first
    start = task_records(root, "ResumeFlow", second, "start")[0]
    assert start["origin_pathspec"].endswith(f"/{origin}/start/start")  # traced back to the first run
    assert "origin_pathspec" not in task_records(root, "ResumeFlow", second, "a")[0]
    assert only(root, "ResumeFlow", second, "end")["final"] == 111


def test_resume_inside_a_foreach_reruns_the_whole_step(root, tmp_path):
    flow = write_flow(tmp_path, FOREACH)
    _, origin = run_flow(root, flow, env={"FAIL_ITEM": "1"}, expect=1)
    _, resumed = _resume(root, flow)
    work = task_records(root, "ResumeForeachFlow", resumed, "work")
    assert len(work) == 4 and all("origin_pathspec" not in r for r in work)  # every task of the step reran
    assert task_records(root, "ResumeForeachFlow", resumed, "start")[0]["origin_pathspec"]
    assert only(root, "ResumeForeachFlow", resumed, "join")["ys"] == [2, 4, 6, 8]


def test_resume_of_a_successful_origin_without_a_step_clones_every_task_as_metaflow_does(root, tmp_path):
    # Metaflow 2.x (`python flow.py resume` after a successful run) clones every task, reruns
    # none, and the new run succeeds.
    flow = write_flow(tmp_path, FOREACH)
    _, origin = run_flow(root, flow)
    proc, resumed = _resume(root, flow)
    assert "nothing reruns" in proc.stdout and "cloned 7 tasks" in proc.stdout, describe(proc)
    info = run_info(root, "ResumeForeachFlow", resumed)
    assert info["status"] == "succeeded" and info["origin_run_id"] == origin and info["resume_step"] is None
    for step in ("start", "work", "join", "end"):
        cloned = task_records(root, "ResumeForeachFlow", resumed, step)
        original = task_records(root, "ResumeForeachFlow", origin, step)
        assert [r["origin_pathspec"] for r in cloned] == [r["pathspec"] for r in original]
        assert [r["artifacts"] for r in cloned] == [r["artifacts"] for r in original]
    assert only(root, "ResumeForeachFlow", resumed, "join")["ys"] == [2, 4, 6, 8]


def test_resume_refuses_a_changed_graph_naming_the_step(root, tmp_path):
    flow = write_flow(tmp_path, LINEAR)
    run_flow(root, flow, env={"FAIL_B": "1"}, expect=1)
    source = Path(flow).read_text()
    source = source.replace("self.next(self.b)", "self.next(self.c)").replace(
        "    @step\n    def b(self):", "    @step\n    def c(self):\n        self.next(self.b)\n\n    @step\n    def b(self):")
    Path(flow).write_text(source)
    before = tree_digest(root)
    proc, _ = _resume(root, flow, expect=2)
    assert "step 'a' changed" in proc.stderr, proc.stderr
    assert_no_traceback(proc.stderr)
    assert tree_digest(root) == before


def test_resume_errors_for_missing_origins_and_steps(root, tmp_path):
    flow = write_flow(tmp_path, LINEAR)
    proc, _ = _resume(root, flow, expect=2)
    assert "no earlier run" in proc.stderr
    run_flow(root, flow, env={"FAIL_B": "1"}, expect=1)
    proc, _ = _resume(root, flow, "--origin-run-id", "123", expect=2)
    assert "no run ResumeFlow/123" in proc.stderr
    proc, _ = _resume(root, flow, "nosuchstep", expect=2)
    assert "no such step" in proc.stderr
    proc, _ = _resume(root, flow, "--base", "3", expect=2)
    assert "no such option: --base (resume takes no parameters" in proc.stderr


def test_resumed_run_reads_like_any_run_in_the_client(root, tmp_path):
    flow = write_flow(tmp_path, LINEAR)
    run_flow(root, flow, env={"FAIL_B": "1"}, expect=1)
    _, resumed = _resume(root, flow)
    assert [r["x"] for r in artifacts(root, "ResumeFlow", resumed, "a")] == [11]
    assert records(root, "ResumeFlow").steps(resumed)  # the run has its own records
