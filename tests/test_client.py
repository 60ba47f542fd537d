"""The client API (Flow, Run, Step, Task, namespaces) over runs made by the real ``mfc run``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from flows_client.helpers import run_flow, start_flow

import mfc
from mfc.client import (
    DataArtifact,
    Flow,
    Metaflow,
    MetaflowNotFound,
    MfcNamespaceMismatch,
    MfcNotFound,
    Run,
    Step,
    Task,
    default_namespace,
    get_metadata,
    get_namespace,
    metadata,
    namespace,
)
from mfc.config import Config
from mfc.exceptions import MfcError


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two ClientFlow runs by us (tagged), one by another user, one failed FailingFlow run."""
    root = tmp_path_factory.mktemp("client") / "ds"
    from flows_client.helpers import flow_env

    return {
        "root": str(root),
        "first": run_flow(root, "client_flow.py", "--tag", "first", "--count", "2"),
        "second": run_flow(root, "client_flow.py", "--tag", "second", "--tag", "<script>x</script>",
                           "--greeting", "hey"),
        "other": run_flow(root, "client_flow.py", env=flow_env(root, MFC_USER="someone-else")),
        "failed": run_flow(root, "failing_flow.py", expect_rc=1),
    }


@pytest.fixture(autouse=True)
def client_state(runs: dict[str, str]):
    metadata(runs["root"])
    default_namespace()
    yield
    metadata(None)
    default_namespace()


def me() -> str:
    return f"user:{Config()['user']}"


# --- flows and runs -------------------------------------------------------------------------------


def test_flow_lists_runs_in_namespace_newest_first(runs: dict[str, str]) -> None:
    flow = Flow("ClientFlow")
    assert [r.id for r in flow.runs()] == [runs["second"], runs["first"]]
    assert [r.id for r in flow] == [runs["second"], runs["first"]]
    assert [r.id for r in flow.runs("first")] == [runs["first"]]
    assert [r.id for r in flow.runs("first", "second")] == []
    assert flow.latest_run.id == runs["second"]
    assert flow.latest_successful_run.id == runs["second"]
    assert flow[runs["first"]].id == runs["first"]
    assert runs["first"] in flow and "123" not in flow
    assert flow.id == flow.pathspec == "ClientFlow"
    assert repr(flow) == "Flow('ClientFlow')"
    assert [f.id for f in Metaflow().flows] == ["ClientFlow", "FailingFlow"]


def test_run_status_times_tags_and_parameters(runs: dict[str, str]) -> None:
    run = Run(f"ClientFlow/{runs['second']}")
    assert repr(run) == f"Run('ClientFlow/{runs['second']}')"
    assert run.id == runs["second"] and run.pathspec == f"ClientFlow/{runs['second']}"
    assert run.successful and run.finished and run.status == "succeeded"
    assert isinstance(run.created_at, datetime) and run.finished_at >= run.created_at
    assert run.user == Config()["user"]
    assert run.user_tags == {"second", "<script>x</script>"}
    assert me() in run.system_tags and run.tags == run.user_tags | run.system_tags
    assert run.parameters == {"count": 3, "greeting": "hey"}
    assert run.origin_run_id is None
    recorded = run._record.get("code_package")
    if recorded is None:
        assert run.code is None
    else:
        assert run.code.sha256 == recorded["sha256"] == hashlib.sha256(run.code.tarball).hexdigest()
    assert run.parent == Flow("ClientFlow")


def test_run_iterates_steps_in_execution_order(runs: dict[str, str]) -> None:
    run = Run(f"ClientFlow/{runs['first']}")
    assert [s.id for s in run] == ["start", "flaky", "fan", "join", "end"]
    assert "fan" in run and "_parameters" not in run and "nope" not in run
    assert run.end_task.pathspec.startswith(f"ClientFlow/{runs['first']}/end/")
    assert run.data.message == "hello: ITEM0, ITEM1"
    assert run["join"].task.data.shouts == ["ITEM0", "ITEM1"]


def test_foreach_step_iterates_all_tasks_in_order(runs: dict[str, str]) -> None:
    step = Run(f"ClientFlow/{runs['second']}")["fan"]
    tasks = list(step)
    assert len(tasks) == len(step) == 3
    assert [t.id for t in tasks] == ["fan-0", "fan-1", "fan-2"]  # derived ids, in foreach-index order
    assert [t.index for t in tasks] == [0, 1, 2]
    assert sorted(t.data.item for t in tasks) == ["item0", "item1", "item2"]
    assert all(t.data.shout == t.data.item.upper() for t in tasks)
    assert step.task in tasks
    assert step[tasks[1].id] == tasks[1] and tasks[1].id in step
    assert step.finished_at == max(t.finished_at for t in tasks)
    assert Step(step.pathspec) == step
    assert Run(f"ClientFlow/{runs['second']}")["start"].task.index is None


def test_task_data_is_lazy_and_artifacts_list_without_loading(runs: dict[str, str], monkeypatch) -> None:
    task = Run(f"ClientFlow/{runs['first']}")["start"].task
    store = task._ds.artifacts("ClientFlow")
    loaded: list[str] = []
    real_load = store.load
    monkeypatch.setattr(store, "load", lambda sha: loaded.append(sha) or real_load(sha))

    listing = {(a.name, a.type) for a in task.artifacts}
    assert {("big", "bytes"), ("items", "list"), ("markup", "str"), ("greeting", "str")} <= listing
    assert [a.name for a in task] == task.artifacts.names() and loaded == []
    assert task.artifacts.big.size > 200 * 1024 and loaded == []
    assert task.data.markup == "<b>bold</b> & \"quoted\""
    assert loaded == [task["markup"].sha]
    assert task.data.markup is task.data.markup and len(loaded) == 1


def test_data_artifact_fields(runs: dict[str, str]) -> None:
    task = Task(Run(f"ClientFlow/{runs['first']}")["start"].task.pathspec)
    artifact = task["items"]
    assert isinstance(artifact, DataArtifact)
    assert artifact.data == ["item0", "item1"]
    assert artifact.type == "list" and artifact.size > 0 and artifact.sha.startswith("b3-") and len(artifact.sha) == 67
    assert artifact.created_at == task.finished_at and isinstance(artifact.created_at, datetime)
    assert artifact.pathspec == f"{task.pathspec}/items"
    assert repr(artifact) == f"DataArtifact('{task.pathspec}/items')"
    assert "items" in task and "nope" not in task and "items" in task.data


def test_task_logs_attempts_and_metadata(runs: dict[str, str]) -> None:
    run = Run(f"ClientFlow/{runs['first']}")
    start = run["start"].task
    assert start.stdout == "start says hi\n"
    assert "start warns" in start.stderr
    assert start.successful and start.finished and start.exception is None and start.current_attempt == 0
    flaky = run["flaky"].task
    assert flaky.current_attempt == 1
    assert flaky.stdout == "attempt 1 worked\n"
    assert flaky.data.attempts_needed == 2
    meta = flaky.metadata_dict
    assert meta["attempt"] == 1 and meta["status"] == "ok" and meta["finished_at"] >= meta["started_at"]
    assert flaky.created_at <= flaky.finished_at
    assert repr(flaky) == f"Task('{flaky.pathspec}')"


def test_failed_run_exposes_the_exception(runs: dict[str, str]) -> None:
    run = Flow("FailingFlow").latest_run
    assert run.id == runs["failed"]
    assert run.finished and not run.successful and run.status == "failed"
    assert "cannot use 41" in run.error
    assert run.data is None and run.end_task is None
    assert Flow("FailingFlow").latest_successful_run is None
    assert [s.id for s in run] == ["start", "boom"]
    task = run["boom"].task
    assert task.finished and not task.successful
    exc = task.exception
    assert exc.type == "ValueError" and exc.message == "cannot use 41"
    assert exc.where == "failing_flow.py:17" and "raise ValueError" in exc.source
    assert exc["type"] == "ValueError" and "Traceback" in exc.traceback
    assert str(exc) == "ValueError: cannot use 41 (failing_flow.py:17)"
    assert "about to fail" in task.stdout and "ValueError: cannot use 41" in task.stderr
    with pytest.raises(MfcNotFound, match="failed .*ValueError.*no artifact 'before'"):
        task["before"]
    assert run["start"].task.data.before == 41


def test_missing_things_are_clear_errors(runs: dict[str, str]) -> None:
    root = runs["root"]
    with pytest.raises(MfcNotFound, match=f"^no run ClientFlow/123 in {root}$"):
        Run("ClientFlow/123")
    with pytest.raises(MetaflowNotFound, match="no flow 'Nope' .*flows: ClientFlow, FailingFlow"):
        Flow("Nope")
    run = Run(f"ClientFlow/{runs['first']}")
    with pytest.raises(MfcNotFound, match=r"no step 'nope' in run .*\(steps: start, flaky, fan, join, end\)"):
        run["nope"]
    with pytest.raises(MfcNotFound, match="no step '_parameters'"):
        run["_parameters"]
    with pytest.raises(MfcNotFound, match="no task .*/start/999"):
        run["start"]["999"]
    task = run["end"].task
    with pytest.raises(MfcNotFound, match=r"has no artifact 'nope' \(artifacts: .*message.*\)"):
        task["nope"]
    with pytest.raises(AttributeError):
        _ = task.data.nope
    assert getattr(task.data, "nope", "default") == "default" and not hasattr(task.data, "nope")
    for bad, kind in (("ClientFlow", Run), ("a/b/c", Run), ("ClientFlow/1", Step), ("", Flow), ("A/B", Flow)):
        with pytest.raises(MfcError, match="pathspec|takes a pathspec"):
            kind(bad)
    assert issubclass(MfcNotFound, MfcError)


def test_tags_are_added_removed_and_persisted(runs: dict[str, str]) -> None:
    run = Run(f"ClientFlow/{runs['first']}")
    run.add_tag("keep")
    run.add_tags(["a", "b"])
    run.remove_tag("a")
    run.remove_tag("never-there")
    run.replace_tag("b", "c")
    assert run.user_tags == {"first", "keep", "c"}
    assert Run(run.pathspec).user_tags == {"first", "keep", "c"}
    assert [r.id for r in Flow("ClientFlow").runs("keep", "c")] == [runs["first"]]
    with pytest.raises(MfcError, match="system tag"):
        run.remove_tag(me())
    with pytest.raises(MfcError, match="non-empty"):
        run.add_tag("")
    assert me() in Run(run.pathspec).tags
    run.remove_tags(["keep", "c"])
    assert Run(run.pathspec).user_tags == {"first"}


def test_namespaces(runs: dict[str, str]) -> None:
    assert get_namespace() == me() == default_namespace()
    other = f"ClientFlow/{runs['other']}"
    with pytest.raises(MfcNamespaceMismatch, match="not in namespace .*namespace\\(None\\)"):
        Run(other)
    with pytest.raises(MfcNamespaceMismatch):
        Task(f"{other}/start/start")
    assert runs["other"] not in [r.id for r in Flow("ClientFlow")]
    assert Run(other, _namespace_check=False).user == "someone-else"

    namespace(None)
    assert get_namespace() is None
    assert [r.id for r in Flow("ClientFlow")][0] == runs["other"]
    assert Run(other).successful and Task(f"{other}/start/start").data.greeting == "hello"

    namespace("user:someone-else")
    assert [r.id for r in Flow("ClientFlow")] == [runs["other"]]
    assert Flow("FailingFlow").latest_run is None

    namespace("second")  # a user tag works as a namespace too
    assert [r.id for r in Flow("ClientFlow")] == [runs["second"]]
    with pytest.raises(TypeError):
        namespace("")


def test_metadata_and_env_root(runs: dict[str, str], tmp_path: Path, monkeypatch) -> None:
    assert get_metadata() == f"local@{runs['root']}"
    assert metadata(f"local@{tmp_path}") == f"local@{tmp_path}"
    with pytest.raises(MfcNotFound, match=str(tmp_path)):
        Flow("ClientFlow")
    metadata(None)
    monkeypatch.setenv("MFC_DATASTORE_ROOT", runs["root"])
    assert get_metadata() == f"local@{runs['root']}"
    assert Flow("ClientFlow").latest_run.id == runs["second"]
    assert mfc.Flow is Flow and mfc.get_metadata() == get_metadata()


def test_html_repr_escapes_and_lists(runs: dict[str, str]) -> None:
    run = Run(f"ClientFlow/{runs['second']}")
    flow_html = Flow("ClientFlow")._repr_html_()
    assert runs["second"] in flow_html and runs["first"] in flow_html and "<table>" in flow_html
    assert "&lt;script&gt;x&lt;/script&gt;" in flow_html and "<script>" not in flow_html
    run_html = run._repr_html_()
    for step in ("start", "flaky", "fan", "join", "end"):
        assert f"<td style='text-align:left'>{step}</td>" in run_html
    assert "<script>" not in run_html and "greeting=&#x27;hey&#x27;" in run_html
    step_html = run["fan"]._repr_html_()
    assert all(t.id in step_html for t in run["fan"])
    task_html = run["start"].task._repr_html_()
    assert "markup" in task_html and "200.0 KB" in task_html
    value_html = run["start"].task["markup"]._repr_html_()
    assert "&lt;b&gt;bold&lt;/b&gt; &amp;" in value_html and "<b>bold" not in value_html
    assert "&lt;bytes, 200.0 KB&gt;" in run["start"].task["big"]._repr_html_()
    failed_html = Flow("FailingFlow").latest_run["boom"].task._repr_html_()
    assert "failed" in failed_html and "ValueError: cannot use 41" in failed_html


def test_code_package_of_a_run(tmp_path: Path) -> None:
    from mfc.packager import build_package
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_blob_store
    from mfc.stores.metadata import BlobMetadata

    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (project / "flow.py").write_text("print('flow')\n")
    package = build_package(project / "flow.py")
    blobs = open_blob_store(str(tmp_path / "ds"))
    sha = ArtifactStore(blobs, "CodeFlow").save_bytes(package.data, sha256=True)
    assert sha == package.sha256
    run_id = BlobMetadata(blobs).create_run("CodeFlow", {"system_tags": [me()], "code_package": {"sha256": sha}})
    metadata(str(tmp_path / "ds"))
    code = Run(f"CodeFlow/{run_id}").code
    assert code.sha256 == sha and code.tarball == package.data and code.size == len(package.data)
    assert any(f["path"] == "flow.py" for f in code.manifest["files"])
    out = code.extract(tmp_path / "out")
    assert (out / "flow.py").read_text() == "print('flow')\n"


def test_reading_a_run_in_progress(runs: dict[str, str], tmp_path: Path) -> None:
    root = Path(runs["root"])
    signal = tmp_path / "go"
    proc, id_file = start_flow(root, "waiting_flow.py", "--signal", str(signal))
    try:
        deadline = time.time() + 60
        run_id = None
        while time.time() < deadline:
            if id_file.exists() and id_file.read_text().strip():
                run_id = id_file.read_text().strip()
                if (root / "WaitingFlow" / run_id / "wait").exists():
                    break
            time.sleep(0.05)
        assert run_id, "the waiting flow never started"
        run = Flow("WaitingFlow").latest_run
        assert run.id == run_id
        assert not run.finished and not run.successful and run.status == "running" and run.finished_at is None
        assert run.data is None and run.end_task is None
        assert [s.id for s in run] == ["start", "wait"]
        assert run["start"].task.data.ready is True
        task = run["wait"].task
        assert not task.finished and not task.successful and task.exception is None
        assert list(task) == [] and dir(task.data) == [] and run["wait"].finished_at is None
        with pytest.raises(MfcNotFound, match="has not finished yet"):
            task["waited"]
        while "waiting for the signal file" not in task.stdout and time.time() < deadline:
            time.sleep(0.05)
        assert task.stdout == "waiting for the signal file\n"
        signal.write_text("go")
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        assert run.finished and run.successful and run.finished_at is not None
        assert task.finished and task.data.waited is True
        assert [s.id for s in run] == ["start", "wait", "end"]
    finally:
        signal.write_text("go")
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# --- speed (figures printed, not asserted) -------------------------------------------------------


def test_timing_figures(tmp_path: Path) -> None:
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_blob_store
    from mfc.stores.metadata import BlobMetadata
    from mfc.stores.records import TaskRecords

    root = tmp_path / "ds"
    blobs = open_blob_store(str(root))
    meta, records, store = BlobMetadata(blobs), TaskRecords(blobs, "BigFlow"), ArtifactStore(blobs, "BigFlow")
    for i in range(1000):
        run_id = meta.create_run("BigFlow", {"user": "u", "tags": [f"t{i % 3}"], "system_tags": [me()]})
        ref = store.save({"i": i, "payload": list(range(100))}, "x")
        records.write(run_id, "end", "1", 0, {"status": "ok", "artifacts": {"x": ref.to_json()},
                                              "started_at": time.time(), "finished_at": time.time()})
        meta.finish_run("BigFlow", run_id, "succeeded")
    metadata(str(root))
    best = min(_timed(lambda: list(Flow("BigFlow").runs())) for _ in range(3))
    assert len(list(Flow("BigFlow").runs())) == 1000
    code = "from mfc import Flow; print(Flow('BigFlow').latest_run.data.x['i'])"
    env_cmd = [sys.executable, "-c", code]
    fresh = []
    for _ in range(3):
        start = time.perf_counter()
        out = subprocess.run(env_cmd, capture_output=True, text=True, env={**_env(), "MFC_DATASTORE_ROOT": str(root)})
        fresh.append(time.perf_counter() - start)
        assert out.stdout.strip() == "999", out.stderr
    print(json.dumps({"runs_over_1000_s": round(best, 3), "fresh_process_artifact_load_s": round(min(fresh), 3)}))


def _timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "MFC_PROFILE"}
