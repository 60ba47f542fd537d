"""The client API as Metaflow users call it from notebooks, over runs made by the real ``mfc run``:
``Flow(name).latest_run``, ``latest_successful_run``, ``runs()``, ``Run('Flow/id')``, ``run.data``,
``run['step'].task.data``, foreach tasks, ``task.stdout``, ``task.exception``, tags, namespaces and
where the client finds the datastore."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from compat_support import flow_file, metaflow_available, mfc_run

from mfc import (
    Flow,
    Metaflow,
    Run,
    Step,
    Task,
    default_namespace,
    get_metadata,
    get_namespace,
    metadata,
    namespace,
)
from mfc.client import MetaflowNamespaceMismatch, MetaflowNotFound

ME, OTHER = "compat-user", "someone-else"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("compat-client") / "ds"
    found = {"root": str(root)}
    _, found["ok"] = mfc_run(root, flow_file("merging"), "-q", MFC_USER=ME)
    _, found["failed"] = mfc_run(root, flow_file("merging"), "-q", "--conflict", "yes", expect=1, MFC_USER=ME)
    _, found["first"] = mfc_run(root, flow_file("joins"), "-q", "--tag", "first", "--alpha", "5", MFC_USER=ME)
    _, found["other"] = mfc_run(root, flow_file("joins"), "-q", "--tag", "first", MFC_USER=OTHER)
    return found


@pytest.fixture(autouse=True)
def notebook(runs: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    """A notebook of user ME that pinned the datastore with metadata()."""
    monkeypatch.setenv("MFC_USER", ME)
    metadata(runs["root"])
    default_namespace()
    yield
    metadata(None)
    default_namespace()


def test_latest_run_and_latest_successful_run(runs):
    flow = Flow("MergeCompatFlow")
    assert flow.latest_run.id == runs["failed"]
    assert flow.latest_run.finished and not flow.latest_run.successful
    assert flow.latest_successful_run.id == runs["ok"]
    assert flow.latest_successful_run.successful


def test_runs_newest_first(runs):
    assert [r.id for r in Flow("MergeCompatFlow").runs()] == [runs["failed"], runs["ok"]]
    assert [r.id for r in Flow("MergeCompatFlow")] == [runs["failed"], runs["ok"]]


def test_run_by_pathspec_data_and_steps(runs):
    run = Run(f"JoinFlow/{runs['first']}")
    assert run == Flow("JoinFlow")[runs["first"]]
    assert run.successful and run.finished
    assert run.data.alpha_in_end == 5  # run.data: the end step's artifacts
    assert run["join_items"].task.data.items_seen == ["i0", "i1", "i2", "i3", "i4", "i5"]
    assert run.end_task == run["end"].task
    assert run.created_at <= run.finished_at
    assert Step(f"JoinFlow/{runs['first']}/start").task.data.shared == "from start"
    task = Task(run["start"].task.pathspec)
    assert task.data.alpha == 5 and task["shared"].data == "from start"
    assert "start" in run and "nonexistent" not in run
    assert "name" not in run.end_task  # Metaflow also stores the flow's name as artifact `name`


def test_steps_iterate_in_execution_order(runs):
    """A documented difference: mfc iterates a run's steps first to last (Metaflow: last first)."""
    steps = [s.id for s in Run(f"JoinFlow/{runs['first']}")]
    assert steps == ["start", "c", "a", "b", "join_branches", "work", "join_items", "end"]


def test_iterating_a_foreach_step(runs):
    """Sorting by ``task.index`` gives item order on both frameworks; mfc itself iterates in
    foreach-index order (Metaflow: newest task first)."""
    step = Run(f"JoinFlow/{runs['first']}")["work"]
    tasks = list(step)
    assert len(tasks) == 6
    assert [t.id for t in tasks] == [f"work-{i}" for i in range(6)]
    by_index = sorted(tasks, key=lambda t: t.index)
    assert [t.data.item for t in by_index] == ["i0", "i1", "i2", "i3", "i4", "i5"]
    assert all(t.successful for t in tasks)
    assert "work on i3" in by_index[3].stdout


def test_task_exception_of_a_failed_task(runs):
    run = Flow("MergeCompatFlow").latest_run
    assert run.data is None  # no successful end step
    task = run["join_all"].task
    assert not task.successful
    assert task.exception is not None
    assert task.exception.type == "MfcError"
    assert "diff" in task.exception.message
    assert "merge_artifacts" in task.exception.traceback
    assert run["a"].task.exception is None


def test_task_exception_has_metaflow_attribute_names(runs):
    exc = Flow("MergeCompatFlow").latest_run["join_all"].task.exception
    assert "diff" in exc.exception
    assert "Traceback" in exc.stacktrace


def test_tags(runs):
    run = Run(f"JoinFlow/{runs['first']}")
    assert "first" in run.tags and f"user:{ME}" in run.tags
    assert "first" in run.user_tags and f"user:{ME}" in run.system_tags
    assert [r.id for r in Flow("JoinFlow").runs("first")] == [runs["first"]]
    assert list(Flow("JoinFlow").runs("no-such-tag")) == []


def test_namespaces(runs):
    assert get_namespace() == f"user:{ME}"
    assert [r.id for r in Flow("JoinFlow").runs()] == [runs["first"]]
    with pytest.raises(MetaflowNamespaceMismatch):
        Run(f"JoinFlow/{runs['other']}")
    namespace(None)
    assert {r.id for r in Flow("JoinFlow").runs()} == {runs["first"], runs["other"]}
    assert Run(f"JoinFlow/{runs['other']}").successful
    namespace(f"user:{OTHER}")
    assert [r.id for r in Flow("JoinFlow").runs()] == [runs["other"]]
    assert Flow("JoinFlow").latest_run.id == runs["other"]
    namespace("first")  # a user tag is a namespace too
    assert {r.id for r in Flow("JoinFlow").runs()} == {runs["first"], runs["other"]}


def test_not_found(runs):
    with pytest.raises(MetaflowNotFound):
        Flow("NoSuchFlow")
    with pytest.raises(MetaflowNotFound):
        Run("JoinFlow/123")
    with pytest.raises(MetaflowNotFound):
        Run(f"JoinFlow/{runs['first']}")["no_such_step"]


def test_not_found_by_subscript_is_a_key_error_as_in_metaflow(runs):
    """Metaflow's ``obj[id]`` raises KeyError, and tutorials catch it (``except KeyError``)."""
    run = Run(f"JoinFlow/{runs['first']}")
    task = run["start"].task
    for lookup, fragment in (
        (lambda: run["nope"], "no step 'nope' in run JoinFlow/"),
        (lambda: run["start"]["999"], f"no task JoinFlow/{runs['first']}/start/999"),
        (lambda: task["nope"], f"task {task.pathspec} has no artifact 'nope'"),
        (lambda: Flow("JoinFlow")["bad-id"], "no run JoinFlow/bad-id"),
    ):
        try:
            lookup()
        except KeyError as exc:  # what Metaflow code writes
            assert isinstance(exc, MetaflowNotFound)
            text = str(exc)
            assert fragment in text and "\n" not in text and not text.startswith(("'", '"')), text
        else:
            pytest.fail(f"no KeyError for {fragment}")
    assert getattr(task.data, "nope", "default") == "default"  # still an AttributeError on .data


def test_mfc_exception_module_has_metaflows_names(runs):
    """``from metaflow.exception import MetaflowNotFound`` becomes ``from mfc.exception import ...``."""
    import mfc.exception
    from mfc.exception import MetaflowException, MetaflowTaggingError
    from mfc.exception import MetaflowNamespaceMismatch as NamespaceMismatch
    from mfc.exception import MetaflowNotFound as NotFound
    from mfc.exceptions import MfcError

    assert NotFound is MetaflowNotFound and issubclass(NotFound, KeyError)
    assert NamespaceMismatch is MetaflowNamespaceMismatch
    assert MetaflowException is MfcError
    for name in mfc.exception.__all__:
        assert issubclass(getattr(mfc.exception, name), MetaflowException)
    with pytest.raises(MetaflowTaggingError):
        Run(f"JoinFlow/{runs['first']}").add_tag("two\nlines")
    with pytest.raises(MetaflowException):
        Run("JoinFlow/123")
    if metaflow_available():  # every name is one Metaflow's module has (in a subprocess: see compat_support)
        code = f"import metaflow.exception as e; print([n for n in {mfc.exception.__all__!r} if not hasattr(e, n)])"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert proc.stdout.strip() == "[]", proc.stderr


def test_metaflow_listing_and_get_metadata(runs):
    assert {"JoinFlow", "MergeCompatFlow"} <= {f.id for f in Metaflow().flows}
    assert get_metadata() == f"local@{runs['root']}"


def test_run_and_task_id_format(runs):
    """A documented difference: mfc run ids are milliseconds since the epoch (13 digits; Metaflow's
    local runs use microseconds, 16 digits). Another: task ids are derived from the step and the
    foreach indices (``start``, ``work-3``; Metaflow numbers its tasks 1, 2, ... as they launch)."""
    assert re.fullmatch(r"\d{13}", runs["first"])
    run = Run(f"JoinFlow/{runs['first']}")
    ids = {step.id: [t.id for t in step] for step in run}
    assert ids["start"] == ["start"] and ids["join_items"] == ["join_items"]
    assert ids["work"] == [f"work-{i}" for i in range(6)]


def test_default_datastore_is_dot_mfc_in_the_project(tmp_path, monkeypatch):
    """Without settings, runs go to ./.mfc (Metaflow: ./.metaflow) and a notebook started in the
    project, or any directory below it, finds them."""
    stray = [str(p / ".mfc") for p in tmp_path.parents if (p / ".mfc").is_dir()]
    if stray:
        pytest.skip(f"a .mfc directory above the test's directory would take the runs: {stray[0]}")
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    _, run_id = mfc_run(None, flow_file("nested"), "-q", cwd=project, MFC_USER=ME)
    assert (project / ".mfc" / "NestedForeachCompatFlow" / run_id).is_dir()
    assert not (project / ".metaflow").exists()
    for name in ("MFC_DATASTORE_ROOT", "MFC_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MFC_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.chdir(project / "notebooks")
    metadata(None)
    assert Flow("NestedForeachCompatFlow").latest_run.id == run_id


def test_metadata_accepts_the_project_directory_like_metaflow(tmp_path):
    project = tmp_path / "project"
    (project / ".mfc").mkdir(parents=True)
    _, run_id = mfc_run(None, flow_file("nested"), "-q", cwd=project, MFC_USER=ME)
    metadata(f"local@{project}")
    assert Flow("NestedForeachCompatFlow").latest_run.id == run_id
