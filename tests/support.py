"""Helpers for tests that run flows for real: start the ``mfc`` CLI (or ``python flow.py``) in a
subprocess against a datastore root, then read what the run left behind through the stores."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

from mfc.stores.artifacts import ArtifactStore
from mfc.stores.blob import open_blob_store
from mfc.stores.metadata import BlobMetadata
from mfc.stores.records import TaskRecords

FLOWS = Path(__file__).parent / "flows"


def flow_path(name: str) -> str:
    """Path of a flow file under ``tests/flows`` (``"branch"`` or ``"branch.py"``)."""
    return str(FLOWS / (name if name.endswith(".py") else name + ".py"))


def mfc_executable() -> str:
    """The ``mfc`` console script of the interpreter running the tests."""
    beside = Path(sys.executable).parent / "mfc"
    if beside.exists():
        return str(beside)
    found = shutil.which("mfc")
    assert found, "the mfc console script is not installed (pip install -e .)"
    return found


def clean_env(root: str | os.PathLike | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess: no stray ``MFC_*`` settings, no user config file,
    the datastore at ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFC_")}
    env["MFC_CONFIG"] = os.path.join(os.sep, "nonexistent", "mfc-config.toml")
    env["PYTHONUNBUFFERED"] = "1"
    if root is not None:
        env["MFC_DATASTORE_ROOT"] = str(root)
    env.update(extra or {})
    return env


def mfc(root: str | os.PathLike | None, *args: str, env: dict[str, str] | None = None,
        cwd: str | os.PathLike | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``mfc ARGS...`` to completion; text output captured."""
    return subprocess.run([mfc_executable(), *args], env=clean_env(root, env), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def script(root: str | os.PathLike | None, flow_file: str, *args: str, env: dict[str, str] | None = None,
           cwd: str | os.PathLike | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python flow.py ARGS...`` to completion."""
    return subprocess.run([sys.executable, flow_file, *args], env=clean_env(root, env), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def run_flow(root: str | os.PathLike, flow_file: str, *params: str, extra: tuple[str, ...] = (),
             env: dict[str, str] | None = None, timeout: float = 60,
             expect: int | None = 0) -> tuple[subprocess.CompletedProcess, str | None]:
    """``mfc run FLOW --run-id-file F EXTRA... PARAMS...``; returns (process, run id or None).

    ``expect`` is the exit code to assert (None: don't check)."""
    id_file = Path(root).parent / f"run-id-{uuid.uuid4().hex}"
    proc = mfc(root, "run", flow_file, "--run-id-file", str(id_file), *extra, *params, env=env, timeout=timeout)
    if expect is not None:
        assert proc.returncode == expect, describe(proc)
    run_id = id_file.read_text().strip() if id_file.exists() else None
    return proc, run_id


def describe(proc: subprocess.CompletedProcess) -> str:
    """Exit code and output of a finished process, for assertion messages."""
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def write_flow(directory: str | os.PathLike, source: str, name: str = "flow.py") -> str:
    """Write a dedented flow source to ``directory/name``; returns its path."""
    path = Path(directory) / name
    path.write_text(textwrap.dedent(source).lstrip())
    return str(path)


def line_of(file: str, marker: str) -> int:
    """1-based number of the first line of ``file`` containing ``marker``."""
    for number, text in enumerate(Path(file).read_text().splitlines(), 1):
        if marker in text:
            return number
    raise AssertionError(f"{marker!r} not in {file}")


# -- reading a run back --------------------------------------------------------------------------

def _blobs(root: str | os.PathLike):
    return open_blob_store(str(root))


def metadata(root: str | os.PathLike) -> BlobMetadata:
    return BlobMetadata(_blobs(root))


def records(root: str | os.PathLike, flow: str) -> TaskRecords:
    return TaskRecords(_blobs(root), flow)


def last_run_id(root: str | os.PathLike, flow: str) -> str:
    """The newest run id of ``flow``."""
    ids = metadata(root).run_ids(flow)
    assert ids, f"no runs of {flow} in {root}"
    return ids[0]


def run_info(root: str | os.PathLike, flow: str, run_id: str) -> dict[str, Any]:
    """The merged run record (status, tags, parameters, ...)."""
    info = metadata(root).run(flow, run_id)
    assert info is not None, f"no run {flow}/{run_id} in {root}"
    return info


def run_status(root: str | os.PathLike, flow: str, run_id: str) -> str:
    """``running``, ``succeeded``, ``failed`` or ``interrupted``."""
    return run_info(root, flow, run_id)["status"]


def _by_task_id(record: dict[str, Any]) -> tuple:
    return (len(record["task_id"]), record["task_id"])


def _by_foreach_index(record: dict[str, Any]) -> tuple:
    return (tuple(frame["index"] for frame in record["foreach_stack"]), *_by_task_id(record))


def task_records(root: str | os.PathLike, flow: str, run_id: str, step: str) -> list[dict[str, Any]]:
    """The latest attempt record of each task of ``step`` (with ``task_id`` added), by foreach index."""
    recs = records(root, flow)
    found = []
    for task_id in recs.tasks(run_id, step):
        record = recs.latest(run_id, step, task_id)
        if record is not None:
            found.append({**record, "task_id": task_id})
    depths = {len(r.get("foreach_stack") or []) for r in found}
    if len(depths) == 1:
        return sorted(found, key=_by_foreach_index)
    # A record the orchestrator wrote for a task that died has no foreach stack; task ids
    # follow launch order, which is index order within one foreach.
    return sorted(found, key=_by_task_id)


def attempt_records(root: str | os.PathLike, flow: str, run_id: str, step: str, task_id: str) -> list[dict[str, Any]]:
    """Every attempt record of one task, in attempt order."""
    recs = records(root, flow)
    out = []
    for attempt in recs.attempts(run_id, step, task_id):
        record = recs.read(run_id, step, task_id, attempt)
        if record is not None:
            out.append(record)
    return out


def load_artifacts(root: str | os.PathLike, flow: str, record: dict[str, Any]) -> dict[str, Any]:
    """Every non-internal artifact of one task record, loaded."""
    store = ArtifactStore(_blobs(root), flow)
    return {name: store.load(ref[0]) for name, ref in record["artifacts"].items() if not name.startswith("_")}


def artifacts(root: str | os.PathLike, flow: str, run_id: str, step: str) -> list[dict[str, Any]]:
    """One dict of loaded artifacts per task of ``step``, sorted by foreach index."""
    return [load_artifacts(root, flow, record) for record in task_records(root, flow, run_id, step)]


def only(root: str | os.PathLike, flow: str, run_id: str, step: str) -> dict[str, Any]:
    """The artifacts of a step that has exactly one task."""
    found = artifacts(root, flow, run_id, step)
    assert len(found) == 1, f"{step} has {len(found)} tasks"
    return found[0]


def tree_digest(root: str | os.PathLike) -> str:
    """A hash of every file's path and content under ``root`` (to prove nothing changed)."""
    digest = hashlib.sha256()
    base = Path(root)
    if not base.exists():
        return "missing"
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(base)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def process_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (reads /proc, no psutil)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def assert_no_traceback(text: str) -> None:
    """The CLI's own stderr must hold no Python traceback."""
    assert "Traceback (most recent call last)" not in text, text
