"""``mfc verify``, malformed records and missing task records: a run's damage is reported one line
each (exit 1), a malformed record is named and skipped by listings, and a succeeded run whose
task or step lost its record says so instead of showing "running"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from integrity_helpers import FLOW, INTEGRITY_FLOW, Damage, artifact_key, read_json, record_key, task_id_of
from support import assert_no_traceback, describe, mfc, run_flow, write_flow

from mfc.client import Flow, metadata, namespace
from mfc.stores.artifacts import data_key


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Two IntegrityFlow runs; each test damages a copy of the datastore."""
    base = tmp_path_factory.mktemp("verify")
    flow = write_flow(base, INTEGRITY_FLOW)
    root = base / "ds"
    root.mkdir()
    _, first = run_flow(root, flow)
    _, second = run_flow(root, flow)
    return {"flow": flow, "root": root, "first": first, "run_id": second}


@pytest.fixture
def copy(made, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(made["root"], root)
    return {**made, "root": root}


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("mfc: warning:")]


# -- mfc verify -----------------------------------------------------------------------------------

def test_verify_of_a_clean_run(copy):
    root, run_id = copy["root"], copy["run_id"]
    for target in (FLOW, f"{FLOW}/{run_id}", copy["flow"]):
        proc = mfc(root, "verify", target)
        assert proc.returncode == 0, describe(proc)
        [line] = proc.stdout.splitlines()
        assert line.startswith(f"{FLOW}/{run_id}: ok (succeeded): 6 records, 6 objects (") and " 6 logs checked in " in line, line
    every = mfc(root, "verify", FLOW, "--all")
    assert every.returncode == 0 and every.stdout.splitlines()[-1] == f"2 runs of {FLOW}: all ok", describe(every)
    as_json = mfc(root, "verify", f"{FLOW}/{run_id}", "--json")
    [report] = json.loads(as_json.stdout)
    assert report["ok"] is True and report["problems"] == [] and report["checked"]["objects"] == 6


def test_verify_names_each_damaged_or_missing_part(copy):
    root, run_id = copy["root"], copy["run_id"]
    damage = Damage(str(root))
    value = artifact_key(str(root), run_id, "start", "value")
    blob = artifact_key(str(root), run_id, "start", "blob")
    doubled = artifact_key(str(root), run_id, "middle", "doubled")
    code = data_key(FLOW, read_json(str(root), f"{FLOW}/{run_id}/_run.json")["code_package"]["sha256"])
    damage.damage(value, "flip")
    damage.damage(blob, "truncate")
    damage.delete(doubled)
    damage.damage(code, "empty")
    end = record_key(run_id, "end", task_id_of(str(root), run_id, "end"))
    (root / end).write_text("{not json")
    start = task_id_of(str(root), run_id, "start")
    (root / FLOW / run_id / "start" / start / "0.stdout").unlink()
    proc = mfc(root, "verify", f"{FLOW}/{run_id}")
    assert proc.returncode == 1, describe(proc)
    assert_no_traceback(proc.stderr)
    lines = proc.stdout.splitlines()
    expected = [
        f"{FLOW}/{run_id}/start/{start}: artifact 'value': data {value.rsplit('/', 1)[1][:12]} at {root / value} is corrupt",
        f"artifact 'blob': data {blob.rsplit('/', 1)[1][:12]} at {root / blob} is corrupt",
        f"artifact 'doubled': data {doubled.rsplit('/', 1)[1][:12]} at {root / doubled} is missing",
        f"code package: data {code.rsplit('/', 1)[1][:12]} at {root / code} is corrupt: the stored object is empty",
        f"malformed record {root / end}: it is not JSON",
        f"the stdout log of attempt 0 is missing ({root / FLOW / run_id / 'start' / start / '0.stdout'})",
    ]
    for text in expected:
        assert sum(text in line for line in lines) == 1, (text, lines)
    assert len(lines) == len(expected), lines
    assert _errors(proc.stderr) == [f"error: {FLOW}/{run_id}: 6 damaged or missing parts"]
    report = json.loads(mfc(root, "verify", f"{FLOW}/{run_id}", "--json").stdout)[0]
    assert sorted(p["kind"] for p in report["problems"]) == ["corrupt", "corrupt", "corrupt", "malformed", "missing",
                                                             "missing"]
    other = mfc(root, "verify", f"{FLOW}/{copy['first']}")
    assert other.returncode == 1 and "code package" in other.stdout  # the runs share the package


def test_verify_of_nothing_is_a_usage_error(copy):
    proc = mfc(copy["root"], "verify", "NoSuchFlow")
    assert proc.returncode == 2 and _errors(proc.stderr) == [f"error: no runs of NoSuchFlow in {copy['root']}"]
    proc = mfc(copy["root"], "verify", f"{FLOW}/999")
    assert proc.returncode == 2 and "no run IntegrityFlow/999" in proc.stderr, describe(proc)


# -- missing task records -------------------------------------------------------------------------

def test_a_deleted_task_record_is_reported_not_running(copy):
    root, run_id = copy["root"], copy["run_id"]
    middle = task_id_of(str(root), run_id, "middle")
    (root / record_key(run_id, "middle", middle)).unlink()
    message = f"task {FLOW}/{run_id}/middle/{middle} has no record (missing or deleted)"
    for target in (f"{FLOW}/{run_id}", f"{FLOW}/{run_id}/middle", f"{FLOW}/{run_id}/middle/{middle}"):
        proc = mfc(root, "dump", target)
        assert proc.returncode == 1, describe(proc)
        assert _errors(proc.stderr) == [f"error: {message}"] and "running" not in proc.stdout
    verify = mfc(root, "verify", f"{FLOW}/{run_id}")
    assert verify.returncode == 1 and message in verify.stdout, describe(verify)


def test_a_deleted_step_is_reported(copy):
    root, run_id = copy["root"], copy["run_id"]
    shutil.rmtree(root / FLOW / run_id / "middle")
    message = f"step middle of {FLOW}/{run_id} has no tasks (records missing or deleted)"
    for target in (f"{FLOW}/{run_id}", f"{FLOW}/{run_id}/middle"):
        proc = mfc(root, "dump", target)
        assert proc.returncode == 1 and _errors(proc.stderr) == [f"error: {message}"], describe(proc)
    verify = mfc(root, "verify", f"{FLOW}/{run_id}")
    assert verify.returncode == 1 and message in verify.stdout, describe(verify)


# -- malformed records ----------------------------------------------------------------------------

@pytest.mark.parametrize("name,content", [
    ("_run.json", "{truncated"), ("_run.json", "[1, 2]"), ("_status.json", ""), ("_status.json", '{"finished_at": 1}'),
    ("_tags.json", '{"tags": "not a list"}'),
])
def test_a_malformed_run_record_is_named_and_skipped(copy, name, content, capsys):
    root, run_id, first = copy["root"], copy["run_id"], copy["first"]
    path = root / FLOW / run_id / name
    path.write_text(content)
    listing = mfc(root, "runs", FLOW)
    assert listing.returncode == 0, describe(listing)
    assert_no_traceback(listing.stderr)
    [warning] = _warnings(listing.stderr)
    assert f"malformed record {path}: " in warning and f"run {FLOW}/{run_id} is left out" in warning
    assert first in listing.stdout and run_id not in listing.stdout
    for target in (f"{FLOW}/{run_id}", f"{FLOW}/{run_id}/start"):
        dumped = mfc(root, "dump", target)
        assert dumped.returncode == 1, describe(dumped)
        [line] = _errors(dumped.stderr)
        assert line.startswith(f"error: malformed record {path}: "), line
    verify = mfc(root, "verify", f"{FLOW}/{run_id}")
    assert verify.returncode == 1 and f"malformed record {path}" in verify.stdout, describe(verify)
    metadata(str(root))
    namespace(None)
    try:
        assert [run.id for run in Flow(FLOW).runs()] == [first]
    finally:
        metadata(None)
        from mfc.client import default_namespace

        default_namespace()
    assert f"malformed record {path}" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["", "{", '["a"]', '{"status": 1, "artifacts": {}}', '{"status": "ok"}'])
def test_a_malformed_task_record_is_one_line(copy, content):
    root, run_id = copy["root"], copy["run_id"]
    start = task_id_of(str(root), run_id, "start")
    path = root / record_key(run_id, "start", start)
    path.write_text(content)
    for target in (f"{FLOW}/{run_id}/start/{start}", f"{FLOW}/{run_id}"):
        proc = mfc(root, "dump", target)
        assert proc.returncode == 1, describe(proc)
        assert_no_traceback(proc.stderr)
        [line] = _errors(proc.stderr)
        assert line.startswith(f"error: malformed record {path}: "), line
    listing = mfc(root, "runs", FLOW)
    assert listing.returncode == 0 and run_id in listing.stdout, describe(listing)


def test_resume_reruns_a_task_whose_record_is_malformed(copy):
    root, run_id = copy["root"], copy["run_id"]
    middle = task_id_of(str(root), run_id, "middle")
    path = root / record_key(run_id, "middle", middle)
    path.write_text("{")
    proc = mfc(root, "resume", copy["flow"], "--origin-run-id", run_id, "--run-id-file", str(root.parent / "rid"), "-q")
    assert proc.returncode == 0, describe(proc)
    assert f"malformed record {path}" in proc.stderr
    new_id = (root.parent / "rid").read_text().strip()
    assert mfc(root, "verify", f"{FLOW}/{new_id}").returncode == 0
    assert Path(root / FLOW / new_id / "middle").is_dir()
