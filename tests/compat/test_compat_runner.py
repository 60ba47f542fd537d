"""``Runner``: a script driving a flow from Python runs on mfc with only its import line changed,
blocking and async, resume after a failure, and one clear error for a file with no flow."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from compat_support import PYTHON, describe, mfc_env

FLOW = '''
import os
from metaflow import FlowSpec, Parameter, step

class RunnerFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @step
    def start(self):
        print("start says hello")
        self.x = int(self.alpha) * 2
        self.next(self.end)

    @step
    def end(self):
        if os.path.exists("fail-end"):
            raise RuntimeError("end fails on purpose")
        self.y = self.x + 1
'''

SCRIPT = '''
import asyncio, json, os
from metaflow import Runner

out = {}
with Runner("flow.py", show_output=False) as runner:
    done = runner.run(alpha=3)
    out["blocking"] = [done.status, done.returncode, done.run.data.y, "start says hello" in done.stdout]

    async def main():
        executing = await runner.async_run(alpha=5)
        await executing.wait()
        return executing
    executing = asyncio.run(main())
    out["async"] = [executing.status, executing.run.data.y]

    open("fail-end", "w").close()
    failed = runner.run(alpha=7)
    out["failed"] = [failed.status, failed.returncode != 0]
    os.remove("fail-end")
    resumed = runner.resume()
    out["resumed"] = [resumed.status, resumed.run.data.y]
with Runner("flow.py", show_output=False).run(alpha=1) as running:
    out["with"] = [running.status, running.run.data.y]
print("RESULT " + json.dumps(out))
'''

EXPECTED = {"blocking": ["successful", 0, 7, True], "async": ["successful", 11],
            "failed": ["failed", True], "resumed": ["successful", 15], "with": ["successful", 3]}


def _script_result(workdir: Path, framework: str, env: dict[str, str]) -> dict:
    (workdir / "flow.py").write_text(FLOW.replace("from metaflow import", f"from {framework} import"))
    (workdir / "script.py").write_text(SCRIPT.replace("from metaflow import", f"from {framework} import"))
    proc = subprocess.run([PYTHON, "script.py"], cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, describe(proc)
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_a_runner_script_runs_on_mfc(tmp_path: Path) -> None:
    assert _script_result(tmp_path, "mfc", mfc_env(tmp_path / "ds")) == EXPECTED


@pytest.mark.parametrize("source, words", [
    (None, "does not exist"),
    ("x = 1\n", "defines no FlowSpec subclass"),
])
def test_a_runner_on_a_file_with_no_flow_is_one_line(tmp_path: Path, source: str | None, words: str) -> None:
    if source is not None:
        (tmp_path / "flow.py").write_text(source)
    script = textwrap.dedent('''
        from mfc import Runner
        from mfc.exceptions import MfcError
        try:
            Runner("flow.py")
        except MfcError as exc:
            print("ERROR " + str(exc))
    ''')
    proc = subprocess.run([PYTHON, "-c", script], cwd=tmp_path, env=mfc_env(tmp_path / "ds"), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, describe(proc)
    errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == 1 and words in errors[0], describe(proc)


NOTEBOOK_CELL = FLOW.replace("from metaflow import", "from mfc import").replace(
    "import os\n", "import os\nfrom mfc import NBRunner\n") + '''
run = NBRunner(RunnerFlow, show_output=False).nbrun(alpha=4)
print("NBRUN", run.successful, run.data.y)
'''


def test_nbrunner_runs_the_flow_of_a_notebook_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    for key, value in mfc_env(tmp_path / "ds").items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK_CELL)])
    NotebookClient(notebook, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(out.get("text", "") for out in notebook.cells[0].outputs)
    assert "NBRUN True 9" in printed, notebook.cells[0].outputs
    assert not list(tmp_path.glob("RunnerFlow_*.py")), "nbrun leaves no flow file behind"


def test_nbrunner_outside_a_notebook_is_one_line(tmp_path: Path) -> None:
    script = "from mfc import NBRunner, FlowSpec\nfrom mfc.exceptions import MfcError\n" \
             "try:\n    NBRunner(FlowSpec)\nexcept MfcError as exc:\n    print('ERROR ' + str(exc))\n"
    proc = subprocess.run([PYTHON, "-c", script], cwd=tmp_path, env=mfc_env(tmp_path / "ds"), capture_output=True,
                          text=True, timeout=60)
    assert "ERROR NBRunner needs an interactive IPython session" in proc.stdout, describe(proc)


ENV_SCRIPT = '''
import json, os
from mfc import Runner, get_namespace

out = {}
# The runner's env names a datastore relative to its cwd; the caller's env names another one.
with Runner("flow.py", cwd="proj", show_output=False, env={"MFC_DATASTORE_ROOT": "runner-ds"}) as runner:
    run = runner.run(alpha=2).run
with Runner("flow.py", cwd="proj", show_output=False, env={"MFC_DATASTORE_ROOT": ""}) as runner:
    default = runner.run(alpha=4).run  # no root in its env: proj's own .mfc, as for `mfc run` there
with Runner("flow.py", cwd="proj", show_output=False, datastore_root="flag-ds") as runner:
    flagged = runner.run(alpha=1).run  # --datastore-root, relative to the runner's cwd too
os.environ["MFC_DATASTORE_ROOT"] = os.path.abspath("caller-ds")
os.chdir("/")
out["root"] = [run.datastore_root, run.data.y, run["end"].task.data.x]
out["default"] = [default.datastore_root, default.data.y]
out["flagged"] = [flagged.datastore_root, flagged.data.y]
out["namespace"] = get_namespace()
print("RESULT " + json.dumps(out))
'''


def test_a_runs_client_objects_read_the_runners_datastore(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / ".mfc").mkdir(parents=True)
    (project / "flow.py").write_text(FLOW.replace("from metaflow import", "from mfc import"))
    (tmp_path / "script.py").write_text(ENV_SCRIPT)
    env = mfc_env(tmp_path / "caller-ds", MFC_USER="ann")
    proc = subprocess.run([PYTHON, "script.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, describe(proc)
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result == {"root": [str(project / "runner-ds"), 5, 4], "default": [str(project / ".mfc"), 9],
                      "flagged": [str(project / "flag-ds"), 3], "namespace": "user:ann"}
    assert not (tmp_path / "caller-ds").exists()


def test_output_is_echoed_once_when_shown(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(FLOW.replace("from metaflow import", "from mfc import"))
    script = textwrap.dedent('''
        import asyncio
        from mfc import Runner
        with Runner("flow.py") as runner:
            runner.run(alpha=1)
            async def main():
                executing = await runner.async_run(alpha=2)
                await executing.wait()
                await executing.wait()
            asyncio.run(main())
    ''')
    proc = subprocess.run([PYTHON, "-c", script], cwd=tmp_path, env=mfc_env(tmp_path / "ds"), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.count("start says hello") == 2, describe(proc)
