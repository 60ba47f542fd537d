"""@exit_hook locally: which hooks run after a successful and a failed run, with the run passed
in; a failing hook is one line and leaves the run's status alone. Compared with real Metaflow
where it is installed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from compat_support import flow_file, metaflow_available, metaflow_env, mfc_run


def _hooks(output: str) -> list[str]:
    return re.findall(r"^HOOK .*$|^\[exit_hook\] Hook '\w+' failed", output, re.M)


def test_success_hooks_run_in_order_and_a_failing_one_is_reported(root):
    proc, run_id = mfc_run(root, flow_file("exit_hook_flow"))
    assert _hooks(proc.stdout) == ["HOOK success True", "[exit_hook] Hook 'broken_hook' failed", "HOOK plain"]
    assert "[exit_hook] Hook 'broken_hook' failed: RuntimeError: hook broke" in proc.stdout
    assert "Traceback" not in proc.stdout


def test_error_hooks_run_after_a_failed_run(root):
    proc, _ = mfc_run(root, flow_file("exit_hook_flow"), expect=1, COMPAT_FAIL="1")
    assert _hooks(proc.stdout) == ["HOOK error False", "HOOK plain"]


@pytest.mark.skipif(not metaflow_available(), reason="metaflow is not installed")
@pytest.mark.parametrize("fail", ["0", "1"])
def test_same_hook_calls_as_metaflow(root, tmp_path: Path, fail: str):
    source = Path(flow_file("exit_hook_flow")).read_text().replace("from mfc import", "from metaflow import")
    (tmp_path / "flow.py").write_text(source)
    env = {**metaflow_env(tmp_path / "home"), "COMPAT_FAIL": fail}
    ran = subprocess.run([sys.executable, "flow.py", "run"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    proc, _ = mfc_run(root, flow_file("exit_hook_flow"), expect=None, COMPAT_FAIL=fail)
    assert proc.returncode == ran.returncode
    assert _hooks(proc.stdout) == _hooks(ran.stdout), ran.stdout + ran.stderr


@pytest.mark.parametrize("fail, expected", [("0", ["HOOK inner", "HOOK outer", "HOOK outer"]),
                                            ("1", ["HOOK inner error", "HOOK outer"])])
def test_exit_hook_applied_twice_runs_the_inner_decorators_hooks_first(root, fail: str, expected: list[str]):
    proc, _ = mfc_run(root, flow_file("exit_hook_twice_flow"), expect=None, COMPAT_FAIL=fail)
    assert proc.returncode == int(fail)
    assert re.findall(r"^HOOK .*$", proc.stdout, re.M) == expected


@pytest.mark.skipif(not metaflow_available(), reason="metaflow is not installed")
@pytest.mark.parametrize("fail", ["0", "1"])
def test_exit_hook_applied_twice_calls_the_hooks_metaflow_calls(root, tmp_path: Path, fail: str):
    source = Path(flow_file("exit_hook_twice_flow")).read_text().replace("from mfc import", "from metaflow import")
    (tmp_path / "flow.py").write_text(source)
    env = {**metaflow_env(tmp_path / "home"), "COMPAT_FAIL": fail}
    ran = subprocess.run([sys.executable, "flow.py", "run"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    proc, _ = mfc_run(root, flow_file("exit_hook_twice_flow"), expect=None, COMPAT_FAIL=fail)
    assert proc.returncode == ran.returncode
    assert _hooks(proc.stdout) == _hooks(ran.stdout), ran.stdout + ran.stderr
