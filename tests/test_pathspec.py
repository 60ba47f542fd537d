"""One grammar for every pathspec part, checked where input enters: `..`, `/` in a part, empty
parts, whitespace and control characters are one-line errors (exit 2) from every command and
client constructor, and nothing is read or written outside the datastore root."""

from __future__ import annotations

import shutil

import pytest
from support import assert_no_traceback, describe, flow_path, mfc, run_flow, tree_digest, write_flow

from mfc.client import (
    DataArtifact,
    Flow,
    MissingArtifact,
    Run,
    Step,
    Task,
    default_namespace,
    metadata,
    namespace,
)
from mfc.exceptions import MfcError
from mfc.pathspec import (
    InvalidPathspec,
    check_attempt,
    check_flow,
    check_run_id,
    check_step,
    check_task_id,
    parse_pathspec,
    split_pathspec,
)
from mfc.stores.blob import UnsafeKey
from mfc.stores.local import LocalBlobStore
from mfc.stores.metadata import BlobMetadata

FAILING = """
    import os
    from mfc import FlowSpec, step

    class EscapeFlow(FlowSpec):
        @step
        def start(self):
            self.x = 1
            self.next(self.b)

        @step
        def b(self):
            if os.environ.get("FAIL_B") == "1":
                raise ValueError("b is broken")
            self.next(self.end)

        @step
        def end(self):
            pass
"""

BAD_IDS = ["..", ".", "", "a/b", "../x", " 1", "1 ", "1\n2", "1\t2", "1\x00", "1\x1b[31m", "1\x7f", "-1", "_1",
           "1" * 256, "a\\b"]


# -- the grammar ----------------------------------------------------------------------------------

@pytest.mark.parametrize("good", ["1733100000000", "train-3", "cell-1-2", "a.b", "sfn-9f2c_x", "R"])
def test_run_and_task_ids_that_are_valid(good):
    assert check_run_id(good) == good and check_task_id(good) == good


@pytest.mark.parametrize("bad", BAD_IDS)
def test_run_and_task_ids_that_are_not(bad):
    for check, kind in ((check_run_id, "run id"), (check_task_id, "task id")):
        with pytest.raises(InvalidPathspec) as info:
            check(bad)
        message = str(info.value)
        assert message.startswith(f"{kind} '{repr(bad[:20])[1:-1]}") and "\n" not in message
        assert info.value.exit_code == 2 and isinstance(info.value, MfcError)


@pytest.mark.parametrize("bad", [*(b for b in BAD_IDS if b != "_1"), "1Flow", "my-flow", "a.b", "x y", 7, None])
def test_flow_and_step_names_are_identifiers(bad):
    for check in (check_flow, check_step):
        with pytest.raises(InvalidPathspec):
            check(bad)
    assert check_flow("HelloFlow") == "HelloFlow" and check_step("_parameters") == "_parameters"


def test_attempts_are_non_negative_integers():
    assert check_attempt(0) == 0 and check_attempt("3") == 3
    for bad in (-1, "-1", "x", "", "1.5", 1.5, True, None, "٣"):
        with pytest.raises(InvalidPathspec, match="attempt .* non-negative integer"):
            check_attempt(bad)


@pytest.mark.parametrize("text, part", [
    ("F/../x", "run id '..'"), ("../outside", "flow '..'"), ("F//1", "run id ''"), ("F/1/", "step ''"),
    ("/F/1", "flow ''"), ("F/1\n2", r"run id '1\n2'"), ("F/1/st ep", "step 'st ep'"), ("F/1/s/..", "task id '..'"),
])
def test_parse_pathspec_names_the_bad_part(text, part):
    with pytest.raises(InvalidPathspec) as info:
        parse_pathspec(text)
    assert str(info.value).startswith(f"pathspec {text!r}: {part}")


def test_parse_pathspec_shape():
    assert parse_pathspec("F/1/start/2").parts == ["F", "1", "start", "2"]
    assert str(parse_pathspec("F/train-3")) == "F/train-3"
    for text in ("F", "F/1/s/t/extra"):
        with pytest.raises(InvalidPathspec, match=r"expected Flow/run_id\[/step\[/task_id\]\]"):
            parse_pathspec(text)
    assert split_pathspec("F/1/s/2/x", "DataArtifact") == ["F", "1", "s", "2", "x"]
    with pytest.raises(InvalidPathspec, match="Run pathspec 'F/1/s': expected FlowName/run_id"):
        split_pathspec("F/1/s", "Run")


# -- the local store refuses keys that escape its root -------------------------------------------

def test_local_store_refuses_keys_outside_its_root(tmp_path):
    store = LocalBlobStore(str(tmp_path / "ds"))
    for key in ("../x", "a/../../x", "/etc/passwd", "a/../.."):
        for call in (lambda k: store.put_bytes(k, b"x"), store.get_bytes, store.exists, store.list,
                     store.delete, lambda k: store.put_new(k, b"x"), lambda k: store.put_if(k, b"x", None)):
            with pytest.raises(UnsafeKey, match="outside the datastore root"):
                call(key)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    store.put_bytes("a/../b", b"inside")  # a '..' that stays inside is only a path
    assert store.get_bytes("b") == b"inside"


# -- the command line and the client, against a real run whose files were copied outside ---------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A datastore with a LinearFlow run and a failed EscapeFlow run; copies of both run folders
    lie outside the root, where a followed '..' would find them."""
    base = tmp_path_factory.mktemp("escape")
    root = base / "ds"
    _, linear = run_flow(root, flow_path("linear"))
    flow = write_flow(base, FAILING)
    _, failed = run_flow(root, flow, env={"FAIL_B": "1"}, expect=1)
    shutil.copytree(root / "LinearFlow" / linear, base / "outside")  # ds/../outside
    shutil.copytree(root / "LinearFlow" / linear, base / "x" / linear)  # ds/../x/<run>
    shutil.copytree(root / "EscapeFlow" / failed, base / "esc")  # ds/EscapeFlow/../../esc
    return {"base": base, "root": root, "linear": linear, "flow": flow, "failed": failed}


def _outside(world) -> str:
    return "".join(tree_digest(world["base"] / name) for name in ("outside", "x", "esc"))


def _refused(world, *args: str, names: str) -> str:
    before_root, before_outside = tree_digest(world["root"]), _outside(world)
    proc = mfc(world["root"], *args)
    assert proc.returncode == 2, describe(proc)
    assert_no_traceback(proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], describe(proc)
    assert proc.stdout == "", describe(proc)
    assert tree_digest(world["root"]) == before_root and _outside(world) == before_outside
    return lines[0]


def test_tag_add_outside_the_root_is_refused(world):
    _refused(world, "tag", "add", "../outside", "x", names="flow '..'")
    assert not (world["base"] / "outside" / "_tags.json").exists()
    _refused(world, "tag", "remove", f"LinearFlow/{world['linear']}/..", "x", names="pathspec")
    _refused(world, "tag", "list", "../outside", names="flow '..'")


def test_logs_outside_the_root_is_refused(world):
    _refused(world, "logs", "../outside", names="flow '..'")
    _refused(world, "logs", f"LinearFlow/../x/{world['linear']}", names="run id '..'")
    _refused(world, "logs", f"LinearFlow/{world['linear']}/start/..", names="task id '..'")


def test_resume_origin_outside_the_root_is_refused(world):
    line = _refused(world, "resume", world["flow"], "--origin-run-id", "../../esc", names="--origin-run-id")
    assert "run id '../../esc'" in line
    _refused(world, "resume", world["flow"], "--origin-run-id", "..", names="run id '..'")


def test_dump_runs_and_package_show_with_dotdot_are_refused(world):
    _refused(world, "dump", "F/../x", names="run id '..'")
    _refused(world, "dump", "../outside", names="flow '..'")
    _refused(world, "runs", "../x", names="flow '../x'")
    _refused(world, "runs", "..", names="flow '..'")
    _refused(world, "package", "show", "../outside", names="flow '..'")
    _refused(world, "cleanup", "--run", "../x", names="--run")


def test_control_characters_whitespace_and_empty_parts_are_refused(world):
    run = world["linear"]
    _refused(world, "logs", f"LinearFlow/{run}\n/start", names=r"run id '")
    _refused(world, "dump", f"LinearFlow/{run}/start/1\x1b[2J", names=r"task id '1\x1b[2J'")
    _refused(world, "dump", f"LinearFlow//{run}", names="run id ''")
    _refused(world, "logs", f"LinearFlow/{run}//1", names="step ''")
    _refused(world, "tag", "add", f" LinearFlow/{run}", "x", names="flow ' LinearFlow'")


def test_valid_pathspecs_still_work(world):
    proc = mfc(world["root"], "logs", f"LinearFlow/{world['linear']}/start")
    assert proc.returncode == 0, describe(proc)
    proc = mfc(world["root"], "runs", "LinearFlow")
    assert proc.returncode == 0 and world["linear"] in proc.stdout, describe(proc)


@pytest.fixture
def client(world):
    metadata(str(world["root"]))
    namespace(None)
    yield world
    metadata(None)
    default_namespace()


def test_client_constructors_refuse_traversal(client):
    run = client["linear"]
    cases = [(Run, "../outside"), (Run, "F/../x"), (Run, f"LinearFlow/{run}\n"), (Flow, ".."), (Flow, "../x"),
             (Step, f"LinearFlow/{run}/.."), (Step, f"LinearFlow/../{run}"), (Task, f"LinearFlow/{run}/start/.."),
             (Task, f"LinearFlow/{run}/start/"), (DataArtifact, f"LinearFlow/{run}/start/1/.."),
             (Run, 5)]
    for kind, pathspec in cases:
        with pytest.raises(InvalidPathspec):
            kind(pathspec)


def test_client_lookups_by_id_refuse_traversal(client):
    flow = Flow("LinearFlow")
    run = flow[client["linear"]]
    for lookup in (lambda: flow[".."], lambda: flow["../x"], lambda: run[".."], lambda: run["start"][".."],
                   lambda: run["start"]["1/../.."]):
        with pytest.raises(KeyError, match="is not allowed|must not|expected"):  # a failed lookup, as in Metaflow
            lookup()
    assert ".." not in run and "../x" not in flow and "start" in run  # '..' once listed every run id as a step


def test_data_artifact_by_pathspec(client):
    run = client["linear"]
    task = Run(f"LinearFlow/{run}")["end"].task
    artifact = DataArtifact(f"{task.pathspec}/summary")
    assert artifact.data == task.data.summary and artifact.pathspec == f"{task.pathspec}/summary"
    with pytest.raises(MissingArtifact):
        DataArtifact(f"{task.pathspec}/nope")


def test_listings_skip_names_outside_the_grammar(tmp_path):
    root = tmp_path / "ds"
    store = LocalBlobStore(str(root))
    meta = BlobMetadata(store)
    run_id = meta.create_run("SomeFlow", {"tags": []})
    for odd in ("has space", ".hidden", "-dash"):
        (root / "SomeFlow" / odd).mkdir()
    (root / "not a flow").mkdir()
    assert meta.run_ids("SomeFlow") == [run_id] and meta.flows() == ["SomeFlow"]
    metadata(str(root))
    namespace(None)
    try:
        assert [r.id for r in Flow("SomeFlow").runs()] == [run_id]
    finally:
        metadata(None)
        default_namespace()


def test_task_specs_are_checked_when_read():
    from mfc.runner.taskspec import TaskSpec

    good = {"flow_file": "f.py", "flow_name": "F", "step": "work", "run_id": "17", "task_id": "train-3",
            "datastore_root": "/ds", "inputs": [{"step": "start", "task_id": "1", "attempt": 0}]}
    assert TaskSpec.from_json(TaskSpec.from_dict(good).to_json()).pathspec == "F/17/work/train-3"
    for field, value in (("run_id", "../x"), ("step", "a/b"), ("task_id", ".."), ("flow_name", "F\n"),
                         ("attempt", -1), ("inputs", [{"step": "..", "task_id": "1", "attempt": 0}])):
        with pytest.raises(InvalidPathspec):
            TaskSpec.from_dict({**good, field: value})
