"""Helpers of the Metaflow compatibility suite: run flows through mfc's real command line (and,
when it is installed, through real Metaflow) in subprocesses, and turn artifacts into plain JSON
so that the two frameworks' results can be compared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
FLOWS = HERE / "flows"
METAFLOW_SRC = HERE / "metaflow_src"
PYTHON = sys.executable
MFC = str(Path(sys.executable).parent / "mfc")


def flow_file(name: str) -> str:
    """Path of a compat flow (``tests/compat/flows/<name>.py``)."""
    return str(FLOWS / f"{name}.py")


def mfc_env(root: str | os.PathLike | None, **extra: str) -> dict[str, str]:
    """A clean environment for mfc subprocesses: no stray MFC_* settings or user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MFC_", "METAFLOW_"))}
    env["MFC_CONFIG"] = os.path.join(os.sep, "nonexistent", "mfc-config.toml")
    env["PYTHONUNBUFFERED"] = "1"
    env["MFC_ENV_SERVER_IDLE"] = "60"  # the env daemons of @pypi runs do not linger after the tests
    if root is not None:
        env["MFC_DATASTORE_ROOT"] = str(root)
    env.update(extra)
    return env


def describe(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def mfc_run(root: str | os.PathLike | None, flow: str, *args: str, expect: int | None = 0,
            cwd: str | os.PathLike | None = None, script: bool = False, timeout: float = 120,
            **env: str) -> tuple[subprocess.CompletedProcess, str | None]:
    """``mfc run FLOW ARGS`` (or ``python FLOW run ARGS`` with ``script=True``) with a run id file.

    Returns (process, run id or None); asserts the exit code unless ``expect`` is None."""
    id_file = Path(tempfile.gettempdir()) / f"mfc-compat-{uuid.uuid4().hex}.runid"
    tail = ["--run-id-file", str(id_file), *args]
    cmd = [PYTHON, flow, "run", *tail] if script else [MFC, "run", flow, *tail]
    proc = subprocess.run(cmd, env=mfc_env(root, **env), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if expect is not None:
        assert proc.returncode == expect, describe(proc)
    run_id = id_file.read_text().strip() if id_file.exists() else None
    id_file.unlink(missing_ok=True)
    return proc, run_id


def mfc_cli(root: str | os.PathLike | None, *args: str, cwd: str | os.PathLike | None = None,
            python_file: str | None = None, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """``mfc ARGS`` (or ``python FILE ARGS``) to completion, output captured."""
    cmd = [PYTHON, python_file, *args] if python_file else [MFC, *args]
    return subprocess.run(cmd, env=mfc_env(root, **env), cwd=cwd, capture_output=True, text=True, timeout=timeout)


# -- plain data, for comparing frameworks ---------------------------------------------------------

def plain(value: Any) -> Any:
    """``value`` as JSON-compatible data (tuples -> lists, sets -> sorted lists, bytes -> text)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return {"repr-of": type(value).__name__}


def task_artifacts(task: Any, skip: frozenset[str] = frozenset({"name"})) -> dict[str, Any]:
    """Every user artifact of a client Task (Metaflow's or mfc's) as plain data."""
    return {a.id: plain(a.data) for a in task if not a.id.startswith("_") and a.id not in skip}


def run_summary(run: Any) -> dict[str, Any]:
    """What two frameworks' runs of one flow must agree on: the end step's artifacts, each step's
    number of tasks, and success."""
    return {
        "successful": bool(run.successful),
        "tasks_per_step": {step.id: len(list(step)) for step in run},
        "end": task_artifacts(run["end"].task),
    }


def metaflow_available() -> bool:
    """True if real Metaflow is installed (found without importing it: it is slow to import)."""
    import importlib.util

    return importlib.util.find_spec("metaflow") is not None


def metaflow_env(home: str | os.PathLike) -> dict[str, str]:
    """Environment for real Metaflow: local datastore and metadata, a private home, a fixed user."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "MFC_"))}
    env.update(USERNAME="test", METAFLOW_USER="test", METAFLOW_DEFAULT_DATASTORE="local",
               METAFLOW_DEFAULT_METADATA="local", METAFLOW_HOME=str(home), PYTHONUNBUFFERED="1")
    return env


def metaflow_run(workdir: Path, flow: str, *args: str, timeout: float = 300) -> str:
    """``python FLOW --no-pylint run ARGS`` under real Metaflow in ``workdir``; returns the run id."""
    id_file = workdir / "metaflow.runid"
    cmd = [PYTHON, flow, "--no-pylint", "run", "--run-id-file", str(id_file), *args]
    proc = subprocess.run(cmd, cwd=workdir, env=metaflow_env(workdir / "mf-home"), capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, describe(proc)
    return id_file.read_text().strip()


def metaflow_summary(workdir: Path, flow_name: str, run_id: str) -> dict[str, Any]:
    """:func:`run_summary` of a Metaflow run, read by Metaflow's own client in a subprocess (both
    clients are called ``Flow``, ``Run``...: they must not meet in one interpreter)."""
    pathspec = f"{flow_name}/{run_id}"
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from compat_support import run_summary\n"
        "from metaflow import Run, namespace\n"
        "namespace(None)\n"
        f"print(json.dumps(run_summary(Run({pathspec!r}))))\n"
    )
    proc = subprocess.run([PYTHON, "-c", code], cwd=workdir, env=metaflow_env(workdir / "mf-home"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, describe(proc)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_flow(directory: str | os.PathLike, source: str, name: str = "flow.py") -> str:
    """Write a dedented flow source to ``directory/name``; returns its path."""
    path = Path(directory) / name
    path.write_text(textwrap.dedent(source).lstrip())
    return str(path)
