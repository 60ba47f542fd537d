"""Run the test flows through the real ``mfc run`` command and hand back their run ids."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

FLOWS = Path(__file__).parent
MFC = str(Path(sys.executable).parent / "mfc")


def flow_env(root: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, MFC_DATASTORE_ROOT=str(root), **extra)
    env.pop("MFC_PROFILE", None)
    return env


def run_flow(root: Path, flow: str, *args: str, expect_rc: int = 0, env: dict[str, str] | None = None) -> str:
    """Run ``tests/flows_client/<flow>`` into ``root`` and return the run id."""
    id_file = root.parent / f"{flow}.{uuid.uuid4().hex}.runid"
    cmd = [MFC, "run", str(FLOWS / flow), "-q", "--run-id-file", str(id_file), *args]
    proc = subprocess.run(cmd, env=env or flow_env(root), capture_output=True, text=True, timeout=120)
    assert proc.returncode == expect_rc, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return id_file.read_text().strip()


def start_flow(root: Path, flow: str, *args: str) -> tuple[subprocess.Popen, Path]:
    """Start a flow in the background; returns the process and the file its run id will be written to."""
    id_file = root.parent / f"{flow}.{uuid.uuid4().hex}.runid"
    cmd = [MFC, "run", str(FLOWS / flow), "-q", "--run-id-file", str(id_file), *args]
    proc = subprocess.Popen(cmd, env=flow_env(root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, id_file
