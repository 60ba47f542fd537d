"""Metaflow's data semantics on mfc: artifacts through linear steps, what joins see, the order of
``inputs``, foreach state (``self.input``, ``self.index``, ``foreach_stack()``), nested foreach and
``merge_artifacts``. Flows run through the real ``mfc run``; results are read with mfc's client,
in-process, the way a notebook reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
from compat_support import flow_file, mfc_run

from mfc import Run, metadata, namespace


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One run of each data flow (plus a merge conflict) in a shared datastore root."""
    base = tmp_path_factory.mktemp("compat-data")
    root = base / "ds"
    load_log = base / "loads.log"
    found: dict[str, str] = {"root": str(root), "load_log": str(load_log)}
    _, found["linear"] = mfc_run(root, flow_file("linear_data"), "-q", COMPAT_LOAD_LOG=str(load_log))
    _, found["joins"] = mfc_run(root, flow_file("joins"), "-q")
    _, found["nested"] = mfc_run(root, flow_file("nested"), "-q")
    _, found["merge"] = mfc_run(root, flow_file("merging"), "-q")
    proc, found["conflict"] = mfc_run(root, flow_file("merging"), "-q", "--conflict", "yes", expect=1)
    found["conflict_stderr"] = proc.stderr
    return found


@pytest.fixture(autouse=True)
def notebook(runs: dict[str, str]):
    """Point the client at the runs' datastore, as a notebook would with metadata()."""
    metadata(runs["root"])
    namespace(None)
    yield
    metadata(None)
    from mfc import default_namespace

    default_namespace()


def _run(runs: dict[str, str], flow: str, key: str) -> Run:
    return Run(f"{flow}/{runs[key]}")


# -- linear steps -----------------------------------------------------------------------------------

def test_artifacts_propagate_through_linear_steps(runs):
    run = _run(runs, "LinearDataFlow", "linear")
    assert run.successful
    start, middle, end = (run[s].task.data for s in ("start", "middle", "end"))
    assert start.numbers == [1, 2, 3]  # the parent's value is not changed by a child's mutation
    assert middle.numbers == [1, 2, 3, 4]
    assert middle.text == "hello world" and start.text == "hello"
    assert end.total == 10 and end.tracked_value == 42
    assert end.added == {"by": "middle"} and run.data.text == "hello world"
    assert "middle saw [1, 2, 3, 4]" in run["middle"].task.stdout


def test_untouched_artifact_is_passed_by_reference(runs):
    """``middle`` never reads ``tracked``: its task refers to the very same stored object (same
    sha), and the object is unpickled exactly once, by ``end``, the step that reads it."""
    run = _run(runs, "LinearDataFlow", "linear")
    assert run["start"].task["tracked"].sha == run["middle"].task["tracked"].sha
    assert len(Path(runs["load_log"]).read_text().splitlines()) == 1


def test_unpickled_object_sees_the_live_current(runs):
    # Only `end` unpickles it, and it sees `end`'s current. (Its sha in `end` may differ from
    # start's: cloudpickle's by-value pickling of a flow-file class is not byte-stable across
    # processes, so a read-only object of such a class is stored once more. Values of importable
    # classes keep their key: see test_untouched_artifacts_are_passed_by_reference.)
    assert Path(runs["load_log"]).read_text().splitlines() == ["end"]


# -- joins --------------------------------------------------------------------------------------------

def test_join_sees_parameters_but_not_parent_artifacts_until_merged(runs):
    data = _run(runs, "JoinFlow", "joins")["join_branches"].task.data
    assert data.sees_shared_before_merge is False
    assert data.sees_common_before_merge is False
    assert data.alpha_in_join == 2
    assert data.shared == "from start" and data.common == 7  # merged afterwards
    assert "branch" not in data  # excluded from the merge


def test_branch_inputs_follow_self_next_order_and_name_lookup(runs):
    """mfc orders a branch join's inputs like ``self.next(self.c, self.a, self.b)``; (Metaflow
    gives no order: it walks a set of step names) and ``inputs.b`` names a branch."""
    data = _run(runs, "JoinFlow", "joins")["join_branches"].task.data
    assert data.branch_order == ["c", "a", "b"]
    assert data.from_b == "b"


def test_join_input_artifacts_named_like_internal_attributes(runs):
    data = _run(runs, "JoinFlow", "joins")["join_branches"].task.data
    assert data.a_label == "label of a"
    assert data.a_frames == [1, 2]


def test_foreach_inputs_in_index_order(runs):
    """Items finish in reverse order (later ones sleep less); the join still sees index order."""
    run = _run(runs, "JoinFlow", "joins")
    data = run["join_items"].task.data
    items = ["i0", "i1", "i2", "i3", "i4", "i5"]
    assert data.items_seen == items
    assert data.positions == data.input_indexes == list(range(6))
    assert data.inputs_input == items
    assert data.common_after == 7
    finished = sorted(run["work"], key=lambda t: t.finished_at)
    assert [t.data.item for t in finished] != items  # they really finished out of order


def test_foreach_tasks_know_their_item(runs):
    run = _run(runs, "JoinFlow", "joins")
    tasks = list(run["work"])
    assert len(tasks) == 6
    for task in tasks:
        assert task.data.item == f"i{task.index}"
        assert task.data.stack == [(task.index, 6, task.data.item)]
        assert f"work on {task.data.item}" in task.stdout
    assert run.data.alpha_in_end == 2


def test_nested_foreach(runs):
    run = _run(runs, "NestedForeachCompatFlow", "nested")
    assert run.data.grid == [["x1", "x2", "x3"], ["y1", "y2", "y3"]]
    assert run.data.letters_seen == ["x", "y"]
    assert run.data.after == [(0, "x"), (1, "y")]  # after the inner join: the outer foreach's state
    inner = sorted(run["inner"], key=lambda t: (t.data.stack[0][0], t.index))
    assert len(inner) == 6
    for task in inner:
        outer_index, inner_index = task.data.stack[0][0], task.data.stack[1][0]
        letter, number = "xy"[outer_index], inner_index + 1
        assert task.data.stack == [(outer_index, 2, letter), (inner_index, 3, number)]
        assert task.data.cell == f"{letter}{number}" and task.index == inner_index


# -- merge_artifacts ----------------------------------------------------------------------------------

def test_merge_artifacts_values_set_before_the_call_win(runs):
    data = _run(runs, "MergeCompatFlow", "merge")["join_all"].task.data
    assert data.diff == "chosen in join"
    assert data.same == {"k": 1} and data.only_a == "A" and data.base == "same everywhere"


def test_merge_artifacts_include_and_exclude(runs):
    run = _run(runs, "MergeCompatFlow", "merge")
    data = run["join_selected"].task.data
    assert data.has_z_after_include is False  # include=["y"] merged y only
    assert data.y == 1 and data.z == 2  # the second call, exclude=["x"], merged z
    assert "x" not in data
    assert run.successful


def test_merge_artifacts_conflict_fails_the_task(runs):
    run = _run(runs, "MergeCompatFlow", "conflict")
    assert not run.successful
    task = run["join_all"].task
    assert not task.successful
    assert "diff" in task.exception.message and "merge_artifacts" in task.exception.message
    assert "join_all" in runs["conflict_stderr"]
