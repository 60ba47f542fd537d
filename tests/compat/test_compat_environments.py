"""Metaflow flows with ``@pypi``/``@conda`` run locally in their own environment: the package a
step imports is not installed on the host, the env is built once (uv) and reused after."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import pytest
from compat_support import describe, mfc_run, write_flow

from mfc import Run, namespace

IMPORT_LINE = "from metaflow import"

PYPI_FLOW = '''
from metaflow import FlowSpec, pypi, step


class PypiFlow(FlowSpec):
    @pypi(packages={"tabulate": "0.9.0"}, python="3.11")
    @step
    def start(self):
        import sys

        import tabulate

        self.version = tabulate.__version__
        self.python = sys.executable
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PypiFlow()
'''

CONDA_FLOW = '''
from metaflow import FlowSpec, conda, conda_base, step


@conda_base(python="3.11")
class CondaFlow(FlowSpec):
    @conda(libraries={"tabulate": "LIBVERSION", "LIBNAME": ""})
    @step
    def start(self):
        import tabulate

        self.version = tabulate.__version__
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CondaFlow()
'''


def as_mfc(source: str) -> str:
    return "".join("from mfc import" + line[len(IMPORT_LINE):] if line.startswith(IMPORT_LINE) else line
                   for line in source.splitlines(keepends=True))


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One env and lock cache for this module's runs (hermetic, shared so the env is built once)."""
    root = tmp_path_factory.mktemp("envcache")
    return {"MFC_ENV_CACHE": str(root / "envs"), "MFC_CACHE_DIR": str(root / "cache")}


def _artifact(root: Path, flow: str, run_id: str | None, name: str) -> object:
    from mfc import metadata

    metadata(f"local@{root}")
    namespace(None)
    return getattr(Run(f"{flow}/{run_id}")["start"].task.data, name)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error")]


def test_the_package_is_not_on_the_host() -> None:
    assert importlib.util.find_spec("tabulate") is None


def test_pypi_step_runs_in_its_env_and_the_second_run_reuses_it(tmp_path: Path, caches: dict[str, str]) -> None:
    flow = write_flow(tmp_path, as_mfc(PYPI_FLOW))
    proc, run_id = mfc_run(tmp_path / "ds", flow, "--environment=pypi", cwd=tmp_path, script=True,
                           timeout=600, **caches)
    assert "ready in" in proc.stderr, describe(proc)
    assert _artifact(tmp_path / "ds", "PypiFlow", run_id, "version") == "0.9.0"
    assert str(_artifact(tmp_path / "ds", "PypiFlow", run_id, "python")).startswith(caches["MFC_ENV_CACHE"])
    again, run_id = mfc_run(tmp_path / "ds", flow, cwd=tmp_path, **caches)
    assert "environment " not in again.stderr, describe(again)
    assert _artifact(tmp_path / "ds", "PypiFlow", run_id, "version") == "0.9.0"


def test_conda_library_resolvable_on_pypi_runs(tmp_path: Path, caches: dict[str, str]) -> None:
    source = CONDA_FLOW.replace("LIBVERSION", "0.9.0").replace('"LIBNAME": ""', '"six": "=1.16.0"')
    flow = write_flow(tmp_path, as_mfc(source))
    _, run_id = mfc_run(tmp_path / "ds", flow, cwd=tmp_path, timeout=600, **caches)
    assert _artifact(tmp_path / "ds", "CondaFlow", run_id, "version") == "0.9.0"


def test_conda_library_missing_on_pypi_is_one_line(tmp_path: Path, caches: dict[str, str]) -> None:
    name = f"mfc-no-such-lib-{uuid.uuid4().hex[:10]}"
    source = CONDA_FLOW.replace("LIBVERSION", "0.9.0").replace("LIBNAME", name)
    flow = write_flow(tmp_path, as_mfc(source))
    proc, _ = mfc_run(tmp_path / "ds", flow, cwd=tmp_path, expect=None, timeout=300, **caches)
    assert proc.returncode != 0
    (error,) = _errors(proc.stderr)
    assert "@conda libraries not found on PyPI" in error and name in error, describe(proc)


def test_python_2_is_one_line(tmp_path: Path, caches: dict[str, str]) -> None:
    flow = write_flow(tmp_path, as_mfc(PYPI_FLOW.replace('python="3.11"', 'python="2.7"')))
    proc, _ = mfc_run(tmp_path / "ds", flow, cwd=tmp_path, expect=None, **caches)
    assert proc.returncode == 2, describe(proc)
    (error,) = _errors(proc.stderr)
    assert "python='2.7'" in error and "@pypi" in error, describe(proc)


def test_spawned_tasks_run_in_the_env_too(tmp_path: Path, caches: dict[str, str]) -> None:
    flow = write_flow(tmp_path, as_mfc(PYPI_FLOW))
    _, run_id = mfc_run(tmp_path / "ds", flow, cwd=tmp_path, timeout=600, MFC_LOCAL_EXECUTOR="spawn", **caches)
    assert _artifact(tmp_path / "ds", "PypiFlow", run_id, "version") == "0.9.0"


def test_a_failed_env_records_no_run(tmp_path: Path, caches: dict[str, str]) -> None:
    flow = write_flow(tmp_path, as_mfc(PYPI_FLOW.replace('"0.9.0"', '"0.0.0.0.1"')))
    proc, _ = mfc_run(tmp_path / "ds", flow, cwd=tmp_path, expect=None, timeout=300, **caches)
    assert proc.returncode != 0 and "tabulate==0.0.0.0.1" in proc.stderr, describe(proc)
    assert "PypiFlow/" not in proc.stdout + proc.stderr, describe(proc)  # no run was recorded


def test_concurrent_first_runs_build_the_env_once(tmp_path: Path) -> None:
    import subprocess

    from compat_support import MFC, mfc_env

    caches = {"MFC_ENV_CACHE": str(tmp_path / "envs"), "MFC_CACHE_DIR": str(tmp_path / "cache")}
    flow = write_flow(tmp_path, as_mfc(PYPI_FLOW))
    procs = [subprocess.Popen([MFC, "run", flow], env=mfc_env(tmp_path / f"ds{i}", **caches), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert sum("ready in" in err for _, err in outputs) == 1, outputs
    assert [p.name for p in (tmp_path / "envs").iterdir() if not p.name.startswith(".")] != []


@pytest.mark.docker
def test_pypi_step_with_local_docker_imports_the_package_in_the_flow_image(
        tmp_path: Path, caches: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``--local-docker``: the task runs in the image built from the flow's lock onto the base
    image, from the wheel fetched on the host (the build has no network)."""
    import sys

    from docker_helpers import require_docker, require_image, run_in_image

    from mfc.builder.image import build_flow_image, default_base

    engine = require_docker()
    base = default_base()
    require_image(engine, base)
    probe = ["python", "-c", "import importlib.util; print(importlib.util.find_spec('tabulate') is None)"]
    assert run_in_image(engine, base, probe).strip() == "True"  # the base image lacks it too
    flow = write_flow(tmp_path, as_mfc(PYPI_FLOW))
    proc, run_id = mfc_run(tmp_path / "ds", flow, "--local-docker", cwd=tmp_path, timeout=600, **caches)
    assert _artifact(tmp_path / "ds", "PypiFlow", run_id, "version") == "0.9.0", describe(proc)
    python = str(_artifact(tmp_path / "ds", "PypiFlow", run_id, "python"))
    assert not python.startswith(caches["MFC_ENV_CACHE"]) and python != sys.executable, python
    assert "environment " not in proc.stderr, describe(proc)  # no step runs here: no virtualenv was built
    for name, value in caches.items():
        monkeypatch.setenv(name, value)
    built = build_flow_image(flow, quiet=True)  # what the run used, answered from the state file
    assert built.status == "cached"
    labels = engine.images.get(built.image).labels
    assert labels["io.mfc.lock"] == "tabulate==0.9.0" and labels["io.mfc.inputs.base"] == base
    assert run_in_image(engine, built.image, probe, network_disabled=True).strip() == "False"
    engine.close()


def _processes_naming(fragment: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and fragment.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_run_killed_while_building_its_env_leaves_no_half_env(tmp_path: Path) -> None:
    """SIGKILL of the run while uv installs: uv dies with it, nothing is taken as ready, the lock
    file blocks no one; a run waiting on it meanwhile builds the env, the next one reuses it."""
    import signal
    import subprocess
    import time

    from compat_support import MFC, mfc_env

    caches = {"MFC_ENV_CACHE": str(tmp_path / "envs"), "MFC_CACHE_DIR": str(tmp_path / "cache")}
    flow = write_flow(tmp_path, as_mfc(PYPI_FLOW))
    victim = subprocess.Popen([MFC, "run", flow], env=mfc_env(tmp_path / "ds0", **caches), cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    waiter = None
    try:
        assert victim.stderr is not None
        seen = []
        for line in victim.stderr:
            seen.append(line)
            if ": creating" in line:
                waiter = subprocess.Popen([MFC, "run", flow, "--run-id-file", str(tmp_path / "waiter.id")],
                                          env=mfc_env(tmp_path / "ds1", **caches), cwd=tmp_path,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if ": installing" in line:
                break
        else:
            pytest.fail("the run never started installing its env:\n" + "".join(seen))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        envs = tmp_path / "envs"
        built = [p for p in envs.iterdir() if not p.name.startswith(".")]
        assert built == [] or all(p.name == "by-source" for p in built), "a half-built env was put in place"
        leftovers = [p for p in envs.iterdir() if p.is_dir() and p.name.startswith(".")]
        deadline = time.monotonic() + 5  # a parent-death signal is immediate; a loaded machine may take a moment
        while any(_processes_naming(str(p)) for p in leftovers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_processes_naming(str(p)) for p in leftovers), "uv outlived the killed run"
        assert waiter is not None
        out, err = waiter.communicate(timeout=600)
        assert waiter.returncode == 0, (out, err)
        assert "ready in" in err, err  # the waiter built it: the killed build was not taken as ready
        run_id = (tmp_path / "waiter.id").read_text().strip()
        assert _artifact(tmp_path / "ds1", "PypiFlow", run_id, "version") == "0.9.0"
        assert [p for p in envs.iterdir() if p.is_dir() and p.name.startswith(".")] == []  # leftovers removed
    finally:
        for proc in (victim, waiter):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    again, run_id = mfc_run(tmp_path / "ds2", flow, cwd=tmp_path, **caches)
    assert "environment " not in again.stderr, describe(again)
    assert _artifact(tmp_path / "ds2", "PypiFlow", run_id, "version") == "0.9.0"
