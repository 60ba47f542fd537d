"""Running flows on Step Functions in the sandbox from tests: the ``deploy`` fixture (in
conftest.py) copies a flow into its own project and deploys it; :func:`trigger` starts a run and
follows it; :func:`sfn_root` is the sandbox's datastore."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from support import FLOWS, describe, mfc

SFN_FLOWS = Path(__file__).parent / "flows_sfn"


def sfn_root() -> str:
    return "s3://mfc-sandbox/mfc"


def deployer(sandbox: Any, image: str, tmp_path_factory: Any) -> Any:
    """``deploy(flow, *create_args)``: the flow (from tests/flows, else tests/flows_sfn, or a path
    ending in .py) copied into its own project and deployed with ``image``; returns a handle to
    trigger it."""
    env = {"MFC_CONFIG": str(sandbox.config), "MFC_PROFILE": "sandbox"}

    def _deploy(flow: str, *args: str, image: str | None = image) -> SimpleNamespace:
        if flow.endswith(".py"):  # a path
            source = Path(flow)
            flow = source.stem
        else:
            source = FLOWS / f"{flow}.py" if (FLOWS / f"{flow}.py").exists() else SFN_FLOWS / f"{flow}.py"
        where = tmp_path_factory.mktemp(flow)
        path = where / source.name
        shutil.copy(source, path)
        extra = ["--image", image] if image else []
        proc = mfc(None, "sfn", "create", str(path), *extra, *args, env=env, cwd=where, timeout=300)
        assert proc.returncode == 0, describe(proc)
        return SimpleNamespace(path=path, where=where, env=env, create=proc, image=image)

    return _deploy


def trigger(deployed: SimpleNamespace, *params: str, expect: int = 0, timeout: float = 300) -> tuple[Any, str]:
    """``mfc sfn trigger FLOW --wait PARAMS``; returns (process, run id)."""
    id_file = deployed.where / f"run-id-{time.monotonic_ns()}"
    proc = mfc(None, "sfn", "trigger", str(deployed.path), "--wait", "--run-id-file", str(id_file), *params,
               env=deployed.env, cwd=deployed.where, timeout=timeout)
    assert proc.returncode == expect, describe(proc)
    return proc, id_file.read_text().strip()


