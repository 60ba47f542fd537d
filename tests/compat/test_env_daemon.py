"""The env's daemon (mfc.runner.envdaemon): runs of a @pypi flow are forked from one process per
env that has mfc imported; each run still gets its own cwd, environment variables and flow, the
env's packages and no host package; killed runs, a killed daemon, concurrent first runs and an
idle daemon leave nothing broken."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from compat_support import MFC, describe, mfc_env, mfc_run, write_flow

from mfc import Run, metadata, namespace

FLOW = '''
import os

from mfc import FlowSpec, Parameter, pypi, step


class DaemonFlow(FlowSpec):
    nap = Parameter("nap", default=0)

    @pypi(packages={"tabulate": "0.9.0"}, python="3.11")
    @step
    def start(self):
        import importlib.util
        import sys
        import time

        import tabulate

        self.version = tabulate.__version__
        self.python = sys.executable
        self.metaflow = importlib.util.find_spec("metaflow") is not None
        server = os.getppid()
        with open(f"/proc/{server}/stat") as fh:
            self.daemon = int(fh.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{self.daemon}/cmdline", "rb") as fh:
            self.daemon_cmd = fh.read().replace(b"\\0", b" ").decode()
        self.cwd = os.getcwd()
        self.marker = os.environ.get("DAEMON_TEST_MARKER")
        if self.nap:
            with open(os.environ["DAEMON_TEST_PIDFILE"], "w") as fh:
                fh.write(f"{os.getpid()} {server}")
            time.sleep(self.nap)
        self.next(self.end)

    @step
    def end(self):
        pass
'''


def _daemons(under: str) -> list[int]:
    """Live env daemons whose interpreter lies under ``under``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"mfc.runner.envdaemon" in cmd and cmd[0].decode().startswith(under) and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One env cache for the module; the daemons it started are stopped at the end."""
    root = tmp_path_factory.mktemp("daemoncache")
    yield {"MFC_ENV_CACHE": str(root / "envs"), "MFC_CACHE_DIR": str(root / "cache")}
    for pid in _daemons(str(root)):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_flow(tmp_path_factory.mktemp("daemonflow"), FLOW)


def _data(root: Path, run_id: str | None) -> object:
    metadata(f"local@{root}")
    namespace(None)
    return Run(f"DaemonFlow/{run_id}")["start"].task.data


def _run(tmp: Path, flow: str, caches: dict[str, str], *args: str, **env: str) -> object:
    tmp.mkdir(parents=True, exist_ok=True)
    _, run_id = mfc_run(tmp / "ds", flow, *args, cwd=tmp, timeout=600, **caches, **env)
    return _data(tmp / "ds", run_id)


def test_runs_are_forked_by_the_daemon_each_with_its_cwd_and_environment(tmp_path: Path, flow: str,
                                                                        caches: dict[str, str]) -> None:
    first = _run(tmp_path / "a", flow, caches, DAEMON_TEST_MARKER="one")
    second = _run(tmp_path / "b", flow, caches, DAEMON_TEST_MARKER="two")
    for data, where, marker in ((first, "a", "one"), (second, "b", "two")):
        assert data.version == "0.9.0"
        assert data.python.startswith(caches["MFC_ENV_CACHE"])
        assert data.metaflow is False  # installed on the host, not in the env
        assert "mfc.runner.envdaemon" in data.daemon_cmd
        assert data.cwd == str(tmp_path / where)
        assert data.marker == marker
    assert first.daemon == second.daemon
    assert _daemons(caches["MFC_ENV_CACHE"]) == [first.daemon]


def test_a_killed_run_leaves_no_task_and_the_daemon_serves_the_next(tmp_path: Path, flow: str,
                                                                     caches: dict[str, str]) -> None:
    daemon = _run(tmp_path / "warm", flow, caches).daemon
    pidfile = tmp_path / "task.pid"
    proc = subprocess.Popen([MFC, "run", flow, "--nap", "300"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env=mfc_env(tmp_path / "ds", DAEMON_TEST_PIDFILE=str(pidfile), **caches))
    try:
        deadline = time.monotonic() + 120
        while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before its task started"
            time.sleep(0.05)
        task, server = map(int, pidfile.read_text().split())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _gone(task, 10) and _gone(server, 10), "the task or its run server outlived the killed run"
    assert _daemons(caches["MFC_ENV_CACHE"]) == [daemon]
    assert _run(tmp_path / "next", flow, caches).daemon == daemon


def test_a_killed_daemon_is_replaced_once_by_concurrent_runs(tmp_path: Path, flow: str,
                                                             caches: dict[str, str]) -> None:
    daemon = _run(tmp_path / "warm", flow, caches).daemon
    os.kill(daemon, signal.SIGKILL)
    assert _gone(daemon, 10)
    procs = []
    for index in range(2):
        (tmp_path / str(index)).mkdir()
        procs.append(subprocess.Popen(
            [MFC, "run", flow, "--run-id-file", str(tmp_path / f"{index}.id")], cwd=tmp_path / str(index),
            env=mfc_env(tmp_path / str(index) / "ds", **caches), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    served = {_data(tmp_path / str(i) / "ds", (tmp_path / f"{i}.id").read_text().strip()).daemon for i in range(2)}
    assert len(served) == 1 and daemon not in served, served
    assert _daemons(caches["MFC_ENV_CACHE"]) == list(served)


def test_idle_zero_runs_without_a_daemon(tmp_path: Path, flow: str, caches: dict[str, str]) -> None:
    data = _run(tmp_path, flow, caches, MFC_ENV_SERVER_IDLE="0")
    assert data.version == "0.9.0" and data.metaflow is False
    assert "mfc.runner.envdaemon" not in data.daemon_cmd


def test_an_idle_daemon_exits(tmp_path: Path, flow: str, caches: dict[str, str]) -> None:
    data = _run(tmp_path, flow, caches, MFC_ENV_SERVER_IDLE="1", PYTHONHASHSEED="7")  # its own daemon
    assert "mfc.runner.envdaemon" in data.daemon_cmd
    assert _gone(data.daemon, 15), "the daemon outlived its idle time"


def test_a_bad_idle_value_is_one_line(tmp_path: Path, flow: str, caches: dict[str, str]) -> None:
    proc, _ = mfc_run(tmp_path / "ds", flow, cwd=tmp_path, expect=None, MFC_ENV_SERVER_IDLE="soon", **caches)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert proc.returncode != 0 and len(errors) == 1 and "MFC_ENV_SERVER_IDLE" in errors[0], describe(proc)
    assert "Traceback" not in proc.stderr, describe(proc)


def test_the_server_key_follows_the_env_and_python_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mfc.runner.envclient import server_key

    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").write_text("")
    (env / ".ready").write_text("lock")
    python = str(env / "bin" / "python")
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    key = server_key(python)
    assert server_key(python) == key
    monkeypatch.setenv("PYTHONHASHSEED", "3")
    assert server_key(python) != key
    monkeypatch.delenv("PYTHONHASHSEED")
    os.utime(env / ".ready", ns=(1, 1))  # a rebuilt env
    assert server_key(python) != key


def test_an_edited_module_makes_the_daemon_stale(tmp_path: Path) -> None:
    from mfc.runner.envdaemon import _stale

    source = tmp_path / "mod.py"
    source.write_text("x = 1\n")
    stat = source.stat()
    loaded = {str(source): (stat.st_mtime_ns, stat.st_size)}
    assert not _stale(loaded)
    source.write_text("x = 22\n")
    assert _stale(loaded)
    source.unlink()
    assert _stale(loaded)


def test_a_daemon_whose_mfc_was_edited_takes_no_more_runs(tmp_path: Path, flow: str, caches: dict[str, str]) -> None:
    import shutil

    import mfc

    source = tmp_path / "src"
    shutil.copytree(Path(mfc.__file__).parent, source / "mfc", ignore=shutil.ignore_patterns("__pycache__"))
    first = _run(tmp_path / "a", flow, caches, PYTHONPATH=str(source))
    assert "mfc.runner.envdaemon" in first.daemon_cmd
    edited = source / "mfc" / "runner" / "task.py"
    stat = edited.stat()
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = _run(tmp_path / "b", flow, caches, PYTHONPATH=str(source))
    assert second.version == "0.9.0" and "mfc.runner.envdaemon" not in second.daemon_cmd  # its own server
    assert _gone(first.daemon, 10), "the stale daemon stayed"
    third = _run(tmp_path / "c", flow, caches, PYTHONPATH=str(source))
    assert "mfc.runner.envdaemon" in third.daemon_cmd and third.daemon != first.daemon


def test_the_daemon_of_a_deleted_env_exits(tmp_path: Path, flow: str) -> None:
    import shutil

    own = {"MFC_ENV_CACHE": str(tmp_path / "envs"), "MFC_CACHE_DIR": str(tmp_path / "cache")}
    data = _run(tmp_path / "run", flow, own)
    assert "mfc.runner.envdaemon" in data.daemon_cmd
    shutil.rmtree(Path(data.python).parent.parent)
    assert _gone(data.daemon, 15), "the daemon outlived its env"
