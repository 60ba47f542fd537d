"""The local Docker executor against the real engine and the mfc-base image.

Flows run through the real Orchestrator with a DockerExecutor (``run_docker`` below does what
``mfc run --local-docker`` will: record the run, snapshot parameters, upload the code package).
"""

from __future__ import annotations

import io
import os
import queue
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from docker_helpers import base_image_tag, require_docker, require_image, run_in_image

from mfc.exceptions import MfcError, RunFailed
from mfc.runner.containers import (
    LABEL_RUN,
    container_labels,
    find_containers,
    gpu_device_requests,
    resource_limits,
)
from mfc.runner.docker_executor import DockerExecutor, passthrough_environment, signal_code
from mfc.runner.executor import TaskExit, TaskStarted
from mfc.runner.taskspec import InputRef, TaskSpec

FLOWS = Path(__file__).parent / "flows_docker"


@pytest.fixture(scope="module")
def engine() -> tuple[Any, str]:
    client = require_docker()
    tag = base_image_tag()
    require_image(client, tag)
    return client, tag


# -- running flows through the orchestrator with the executor -----------------------------------
@dataclass
class DockerRun:
    flow_name: str
    run_id: str
    root: str
    output: str
    error: BaseException | None
    elapsed: float

    def _stores(self) -> tuple[Any, Any]:
        from mfc.stores.artifacts import ArtifactStore
        from mfc.stores.blob import open_blob_store
        from mfc.stores.records import TaskRecords

        blobs = open_blob_store(self.root)
        return TaskRecords(blobs, self.flow_name), ArtifactStore(blobs, self.flow_name)

    def tasks(self, step: str) -> list[str]:
        return self._stores()[0].tasks(self.run_id, step)

    def record(self, step: str, attempt: int | None = None) -> dict[str, Any]:
        records, _ = self._stores()
        task = self.tasks(step)[0]
        return records.latest(self.run_id, step, task) if attempt is None else records.read(
            self.run_id, step, task, attempt)

    def artifact(self, step: str, name: str) -> Any:
        sha = self.record(step)["artifacts"][name][0]
        return self._stores()[1].load(sha)

    def log(self, step: str, stream: str, attempt: int = 0) -> str:
        records, _ = self._stores()
        return records.read_log(self.run_id, step, self.tasks(step)[0], attempt, stream).decode()


def prepare_run(flow_file: Path, root: Path, params: list[str] | None = None) -> tuple[Any, ...]:
    """Record a run like ``launch`` does and upload its code package; returns what the
    orchestrator needs: (flow class, graph, RunInfo, blob store, policies)."""
    from mfc.flowload import flow_class, import_flow_file
    from mfc.graph import load_graph
    from mfc.packager import build_package
    from mfc.parameters import flow_parameters, parse_parameter_args
    from mfc.runner.launch import PARAMETERS_STEP, PARAMETERS_TASK
    from mfc.runner.orchestrator import RunInfo
    from mfc.runner.policy import step_policies
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_blob_store
    from mfc.stores.metadata import BlobMetadata
    from mfc.stores.records import TaskRecords

    flow_cls = flow_class(import_flow_file(str(flow_file)), None, str(flow_file))
    graph = load_graph(str(flow_file), flow_cls.__name__)
    name = flow_cls.__name__
    values = parse_parameter_args(flow_parameters(flow_cls), params or [], name, "tester")
    blobs = open_blob_store(str(root))
    store = ArtifactStore(blobs, name)
    run_id = BlobMetadata(blobs).create_run(name, {"user": "tester", "tags": [], "system_tags": [],
                                                   "parameters": {}, "flow_file": str(flow_file)})
    refs = {attr: store.save(value, attr, PARAMETERS_STEP).to_json() for attr, value in values.items()}
    TaskRecords(blobs, name).write(run_id, PARAMETERS_STEP, PARAMETERS_TASK, 0, {
        "pathspec": f"{name}/{run_id}/{PARAMETERS_STEP}/{PARAMETERS_TASK}", "attempt": 0, "status": "ok",
        "artifacts": refs, "foreach_stack": [], "foreach": None,
    })
    package = build_package(flow_file, root=flow_file.parent)
    sha = store.save_bytes(package.data, sha256=True)  # a code package keeps its sha256 id
    assert sha == package.sha256
    info = RunInfo(name, run_id, str(flow_file), str(root), "tester", code_package={"sha256": sha})
    return flow_cls, graph, info, blobs, step_policies(flow_cls, list(graph.nodes))


def run_docker(flow: str, root: Path, executor: Any, params: list[str] | None = None,
               max_workers: int = 4) -> DockerRun:
    """Run ``tests/flows_docker/<flow>.py`` to the end with ``executor`` for every step."""
    from mfc.runner.dag import TaskRequest
    from mfc.runner.launch import PARAMETERS_STEP, PARAMETERS_TASK
    from mfc.runner.orchestrator import Orchestrator
    from mfc.runner.progress import Reporter

    _, graph, info, blobs, policies = prepare_run(FLOWS / f"{flow}.py", root, params)
    out = io.StringIO()
    executor.start()
    orchestrator = Orchestrator(graph, info, blobs, {"docker": executor}, lambda step: "docker", policies,
                                Reporter(out), max_workers=max_workers)
    error: BaseException | None = None
    started = time.monotonic()
    try:
        orchestrator.run([TaskRequest("start", (InputRef(PARAMETERS_STEP, PARAMETERS_TASK, 0),))])
    except RunFailed as exc:
        error = exc
    finally:
        executor.close()
    return DockerRun(info.flow_name, info.run_id, str(root), out.getvalue(), error, time.monotonic() - started)


def image_facts(client: Any, image: str, code: str) -> str:
    return run_in_image(client, image, ["python", "-c", code]).strip()


def no_containers_left(client: Any, run_id: str) -> None:
    left = find_containers(client, run_id)
    assert not left, f"containers left behind: {[(c.name, c.state) for c in left]}"


# -- tests ----------------------------------------------------------------------------------------
@pytest.mark.docker
def test_parity_flow_runs_in_the_image_not_on_the_host(engine, root):
    client, image = engine
    run = run_docker("parity", root, DockerExecutor(image, str(root)))
    assert run.error is None, run.output
    assert run.artifact("join", "total") == sum(i * i for i in range(10))

    expected_version = image_facts(client, image, "import sys; print(sys.version)")
    expected_platform = image_facts(client, image, "import platform; print(platform.platform())")
    expected_packages = {name: image_facts(client, image, f"import importlib.metadata as m; print(m.version({name!r}))")
                         for name in ("cloudpickle", "mfc", "click")}
    for step, name in (("start", "start_facts"), ("end", "end_facts")):
        facts = run.artifact(step, name)
        assert facts["executable"] == "/opt/mfc/venv/bin/python" != sys.executable
        assert facts["version"] == expected_version
        assert facts["platform"] == expected_platform
        assert facts["os_codename"] == "bookworm"
        assert facts["packages"] == expected_packages
        assert facts["uid"] == os.getuid() and facts["gid"] == os.getgid()
        assert facts["home"] == "/tmp/mfc-home"
        assert facts["flow_file"].startswith("/tmp/mfc-home/.cache/mfc/code/"), facts["flow_file"]
        assert facts["unbuffered"] == "1"
    assert run.artifact("start", "start_facts")["greeting"] is None
    assert run.artifact("end", "end_facts")["greeting"] == "hello from @environment"
    if sys.version != expected_version:  # the host's interpreter differs from the image's here
        assert run.artifact("start", "start_facts")["version"] != sys.version

    # logs: demultiplexed, stored like local logs, shown with task prefixes
    assert "parity start on /opt/mfc/venv/bin/python" in run.log("start", "stdout")
    assert "parity stderr line" in run.log("start", "stderr")
    assert "parity stderr line" not in run.log("start", "stdout")
    assert "total 285" in run.log("end", "stdout")
    start_task = run.tasks("start")[0]
    assert f"[{run.run_id}/start/{start_task}] parity start on /opt/mfc/venv/bin/python" in run.output
    # what containers wrote to the datastore belongs to the host user
    record_dir = Path(root) / run.flow_name / run.run_id / "end"
    assert all(p.stat().st_uid == os.getuid() for p in record_dir.rglob("*"))
    no_containers_left(client, run.run_id)


@pytest.mark.docker
def test_retry_after_nonzero_exit_then_success(engine, root):
    client, image = engine
    run = run_docker("retry_exit", root, DockerExecutor(image, str(root)))
    assert run.error is None, run.output
    assert run.artifact("flaky", "succeeded_on") == 2
    died = run.record("flaky", attempt=0)
    assert died["died"] and "exited with code 3" in died["exception"]["message"]
    assert run.record("flaky", attempt=1)["exception"]["type"] == "RuntimeError"
    assert "attempt 0" in run.log("flaky", "stdout", attempt=0)
    assert "attempt 2" in run.log("flaky", "stdout", attempt=2)
    no_containers_left(client, run.run_id)


@pytest.mark.docker
def test_timeout_kills_the_container(engine, root):
    client, image = engine
    run = run_docker("slow", root, DockerExecutor(image, str(root)), ["--limited", "--seconds", "60"])
    assert isinstance(run.error, RunFailed)
    assert "timed out after 2s" in str(run.error)
    assert run.elapsed < 30, run.elapsed
    no_containers_left(client, run.run_id)


@pytest.mark.docker
def test_out_of_memory_is_reported(engine, root):
    client, image = engine
    run = run_docker("hungry", root, DockerExecutor(image, str(root)))
    assert isinstance(run.error, RunFailed), run.output
    record = run.record("eat")
    assert record["died"]
    assert "killed: out of memory (limit 64 MB)" in record["exception"]["message"]
    no_containers_left(client, run.run_id)


# -- driving the executor directly ---------------------------------------------------------------
def start_spec(root: Path, params: list[str]) -> TaskSpec:
    """The TaskSpec of SlowFlow's ``nap`` step, with ``start`` already done (as the orchestrator
    would hand it to the executor)."""
    from mfc.runner.launch import PARAMETERS_STEP, PARAMETERS_TASK
    from mfc.stores.records import TaskRecords

    _, _, info, blobs, _ = prepare_run(FLOWS / "slow.py", root, params)
    TaskRecords(blobs, info.flow_name).write(info.run_id, "start", "1", 0, {
        "pathspec": f"{info.flow_name}/{info.run_id}/start/1", "attempt": 0, "status": "ok",
        "artifacts": TaskRecords(blobs, info.flow_name).read(info.run_id, PARAMETERS_STEP, PARAMETERS_TASK, 0)["artifacts"],
        "foreach_stack": [], "foreach": None,
    })
    return TaskSpec(flow_file=info.flow_file, flow_name=info.flow_name, step="nap", run_id=info.run_id,
                    task_id="2", datastore_root=str(root), inputs=[InputRef("start", "1", 0)],
                    code_package=info.code_package)


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def next_exit(executor: DockerExecutor, timeout: float = 30.0) -> TaskExit:
    """The next TaskExit (the TaskStarted events before it are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            event = executor.events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError("no TaskExit arrived") from None
        if isinstance(event, TaskExit):
            return event


@pytest.mark.docker
def test_kill_labels_and_live_logs(engine, root, tmp_path):
    client, image = engine
    spec = start_spec(root, ["--seconds", "60"])
    executor = DockerExecutor(image, str(root))
    out, err = tmp_path / "nap.out", tmp_path / "nap.err"
    try:
        handle = executor.submit(spec, str(out), str(err))
        wait_for(lambda: out.exists() and "napping" in out.read_text())  # streamed while it runs
        first = executor.events.get(timeout=1)
        assert isinstance(first, TaskStarted) and first.key == handle.key  # once its container runs
        box = client.api.inspect_container(handle.extra["container"])
        assert box["Name"] == f"/mfc-{spec.run_id}-nap-2-0"
        labels = box["Config"]["Labels"]
        assert {k: labels.get(k) for k in container_labels(spec)} == container_labels(spec)
        assert container_labels(spec)["io.mfc.run"] == spec.run_id
        assert box["HostConfig"]["NetworkMode"] == "host"
        assert box["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
        assert f"{root}:{root}:rw" in box["HostConfig"]["Binds"]
        started = time.monotonic()
        executor.kill(handle, grace=10)  # SIGTERM reaches the step (init forwards it): no 10 s wait
        event = next_exit(executor)
        assert event == TaskExit(handle.key, -15, None)
        assert time.monotonic() - started < 5
        wait_for(lambda: not find_containers(client, spec.run_id), timeout=10)
    finally:
        executor.close()


@pytest.mark.docker
def test_close_kills_and_removes_running_containers(engine, root, tmp_path):
    client, image = engine
    spec = start_spec(root, ["--seconds", "60"])
    executor = DockerExecutor(image, str(root))
    handles = []
    for attempt in range(2):
        spec.attempt = attempt
        handles.append(executor.submit(spec, str(tmp_path / f"{attempt}.out"), str(tmp_path / f"{attempt}.err")))
    wait_for(lambda: all("napping" in (tmp_path / f"{a}.out").read_text() for a in range(2)))
    assert len(find_containers(client, spec.run_id)) == 2
    started = time.monotonic()
    executor.close()
    assert time.monotonic() - started < 10
    no_containers_left(client, spec.run_id)
    assert executor.containers() == []


@pytest.mark.docker
def test_keep_containers(engine, root, tmp_path, monkeypatch):
    client, image = engine
    monkeypatch.setenv("MFC_KEEP_CONTAINERS", "1")
    from mfc.config import Config

    spec = start_spec(root, ["--seconds", "0"])
    executor = DockerExecutor(image, str(root), keep=Config()["keep_containers"])
    try:
        handle = executor.submit(spec, str(tmp_path / "o"), str(tmp_path / "e"))
        assert next_exit(executor) == TaskExit(handle.key, 0, None)
        kept = find_containers(client, spec.run_id)
        assert [c.state for c in kept] == ["exited"]
    finally:
        executor.close()
        for box in find_containers(client, spec.run_id):
            client.api.remove_container(box.id, force=True)


@pytest.mark.docker
def test_cleanup_command(engine):
    from mfc.cli.cleanup import cleanup

    client, image = engine
    run_id = f"cleanup-test-{os.getpid()}-{time.time_ns()}"
    labels = {LABEL_RUN: run_id, "io.mfc.flow": "LeftoverFlow", "io.mfc.step": "start",
              "io.mfc.task": "1", "io.mfc.attempt": "0"}
    exited = client.containers.run(image, ["true"], labels=labels, detach=True, name=f"mfc-{run_id}-exited")
    exited.wait()
    running = client.containers.run(image, ["sleep", "60"], labels=labels, detach=True, init=True,
                                    name=f"mfc-{run_id}-running")
    try:
        runner = CliRunner()
        result = runner.invoke(cleanup, ["--run", run_id, "--dry-run"])
        assert result.exit_code == 0, result.output
        assert f"would remove mfc-{run_id}-exited (LeftoverFlow/{run_id}/start/1 attempt 0;" in result.output
        assert "1 running mfc container left alone" in result.output
        assert len(find_containers(client, run_id)) == 2

        result = runner.invoke(cleanup, ["--run", run_id])
        assert result.exit_code == 0, result.output
        assert f"removed mfc-{run_id}-exited" in result.output
        assert [c.name for c in find_containers(client, run_id)] == [f"mfc-{run_id}-running"]

        result = runner.invoke(cleanup, ["--run", run_id, "--all"])
        assert result.exit_code == 0, result.output
        assert f"removed mfc-{run_id}-running" in result.output
        no_containers_left(client, run_id)
        assert "no leftover mfc containers" in runner.invoke(cleanup, ["--run", run_id]).output
    finally:
        for box in (exited, running):
            try:
                box.remove(force=True)
            except Exception:  # noqa: BLE001 - removed by the test already
                pass


# -- GPUs, images, settings ---------------------------------------------------------------------
@pytest.mark.docker
def test_gpu_device_requests(engine):
    client, _ = engine
    requests = gpu_device_requests(2)
    config = client.api.create_host_config(device_requests=requests)
    assert config["DeviceRequests"] == [{"Driver": "", "Count": 2, "DeviceIDs": [], "Capabilities": [["gpu"]],
                                         "Options": {}}]
    assert gpu_device_requests(0) == []


@pytest.mark.docker
def test_gpu_on_an_engine_without_nvidia_runtime(engine, root):
    from mfc.builder.engine import engine_has_nvidia_runtime

    client, image = engine
    if engine_has_nvidia_runtime(client):
        pytest.skip("this engine has an NVIDIA runtime")
    with pytest.raises(MfcError, match=r"^--gpu 1: this Docker engine has no NVIDIA runtime; install nvidia-container-toolkit"):
        DockerExecutor(image, str(root), gpu=1).start()
    executor = DockerExecutor(image, str(root))
    with pytest.raises(MfcError, match=r"step train: @resources\(gpu=2\): this Docker engine has no NVIDIA runtime"):
        executor.preflight({"start": {"cpu": 1}, "train": {"gpu": 2}})
    spec = start_spec(root, [])
    spec.resources = {"gpu": 1}
    with pytest.raises(MfcError, match="no NVIDIA runtime"):
        executor.submit(spec, str(root / "o"), str(root / "e"))
    assert find_containers(client, spec.run_id) == []  # refused before any container was created
    executor.close()


GPU_STEP_FLOW = """
    from mfc import FlowSpec, resources, step


    class GpuAskFlow(FlowSpec):
        @step
        def start(self):
            self.next(self.train)

        @resources(gpu=2)
        @step
        def train(self):
            self.next(self.end)

        @step
        def end(self):
            pass
"""


@pytest.mark.docker
def test_gpu_requests_fail_before_any_image_is_built_on_an_engine_without_nvidia(engine, root, tmp_path):
    from support import assert_no_traceback, mfc, tree_digest, write_flow

    from mfc.builder.engine import engine_has_nvidia_runtime

    if engine_has_nvidia_runtime(engine[0]):
        pytest.skip("this engine has an NVIDIA runtime")
    flow = write_flow(tmp_path, GPU_STEP_FLOW)
    before = tree_digest(root)
    for extra, expected in ((["--gpu", "1"], "--gpu 1: this Docker engine has no NVIDIA runtime"),
                            ([], "step train: @resources(gpu=2): this Docker engine has no NVIDIA runtime")):
        done = mfc(root, "run", flow, "--local-docker", *extra)
        assert done.returncode == 2 and expected in done.stderr, done.stderr
        assert "GPU base image" not in done.stderr  # the engine is checked before any build
        assert_no_traceback(done.stderr)
    assert tree_digest(root) == before


@pytest.mark.docker
def test_missing_image_is_a_clear_error(engine, root):
    with pytest.raises(MfcError, match=r"Docker image mfc-no-such-image:0 is not on this engine.*make image"):
        DockerExecutor("mfc-no-such-image:0", str(root)).start()


def test_resource_limits_and_settings():
    assert resource_limits({"cpu": 4, "memory": 512, "shared_memory": 64}, engine_cpus=2) == {
        "nano_cpus": 2_000_000_000, "mem_limit": "512m", "memswap_limit": "512m", "shm_size": "64m"}
    assert resource_limits({"cpu": 0.5}) == {"nano_cpus": 500_000_000}
    assert passthrough_environment({"MFC_S3_ENDPOINT_URL": "http://localhost:9000", "MFC_CONFIG": "/x",
                                    "MFC_RUN_ALPHA": "1", "MFC_PROFILE": "p", "PATH": "/bin",
                                    "MFC_CODE_CACHE": "/home/me/cache"}) == {
        "MFC_S3_ENDPOINT_URL": "http://localhost:9000"}
    assert signal_code(137) == -9 and signal_code(143) == -15 and signal_code(3) == 3 and signal_code(0) == 0


@pytest.mark.docker
@pytest.mark.slow
def test_startup_overhead_per_task(engine, root, tmp_path):
    """A 10-step linear flow in containers vs as local processes (spawn: a fresh interpreter per
    task, the closest local equivalent); the target is <= 0.5 s added per task."""
    from mfc.runner.local import SpawnExecutor

    _, image = engine
    local_root = tmp_path / "local"
    local_root.mkdir()
    docker_run = run_docker("linear10", root, DockerExecutor(image, str(root)))
    local_run = run_docker("linear10", local_root, SpawnExecutor())
    assert docker_run.error is None and local_run.error is None, docker_run.output + local_run.output
    assert docker_run.artifact("end", "count") == local_run.artifact("end", "count") == 9
    added = (docker_run.elapsed - local_run.elapsed) / 10
    print(f"\n10 steps: docker {docker_run.elapsed:.2f}s, local spawn {local_run.elapsed:.2f}s, "
          f"added per task {added:.3f}s")
    assert added < 1.0  # generous against CI noise; typically ~0.1-0.2 s here


@pytest.mark.docker
def test_silent_step_outlives_the_client_timeout(engine, root):
    """A step that prints nothing for longer than the SDK's request timeout: the log stream and
    the wait for the exit must not time out."""
    import docker

    client, image = engine
    short = docker.from_env(timeout=2)
    try:
        run = run_docker("slow", root, DockerExecutor(image, str(root), client=short), ["--seconds", "4"])
    finally:
        short.close()
    assert run.error is None, run.output
    assert run.log("nap", "stdout") == "napping\n"
    assert run.elapsed > 4
    no_containers_left(client, run.run_id)


CTRL_C_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
import test_docker_executor as t
from mfc.runner.docker_executor import DockerExecutor
run = t.run_docker("slow", Path({root!r}), DockerExecutor({image!r}, {root!r}), ["--seconds", "120"])
print("error:", type(run.error).__name__, run.error, flush=True)
"""


@pytest.mark.docker
def test_ctrl_c_stops_and_removes_containers(engine, root):
    import signal
    import subprocess

    client, image = engine
    script = CTRL_C_SCRIPT.format(tests=str(Path(__file__).parent), root=str(root), image=image)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        flow_dir = Path(root) / "SlowFlow"
        wait_for(lambda: flow_dir.is_dir() and any(flow_dir.glob("*/nap/*/0.stdout")))
        log = next(flow_dir.glob("*/nap/*/0.stdout"))
        run_id = log.relative_to(flow_dir).parts[0]
        wait_for(lambda: "napping" in log.read_text())
        assert len(find_containers(client, run_id)) == 1
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        assert time.monotonic() - started < 10, output
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "error: Interrupted" in output, output
    no_containers_left(client, run_id)
    run = DockerRun("SlowFlow", run_id, str(root), "", None, 0)
    assert "stopped because the run was interrupted" in run.record("nap")["exception"]["message"]
