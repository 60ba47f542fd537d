"""The local Docker executor: each task a container of one image on the local Docker engine.

Every task runs ``python -m mfc.runner.task --spec JSON`` in a fresh container, which fetches the
run's code package from the datastore (the flow file's path does not exist in the container).
The local datastore root is bind-mounted at the same path, so every path in the spec holds
inside; the container runs as the host user, so what it writes there belongs to that user.

Per task: create, attach (before start, so no output is missed), start (the task's start, as
:class:`TaskStarted`: ``@timeout`` counts from there, not from the image check or the container's
creation); one thread then
demultiplexes the container's output into the task's stdout/stderr log files as it comes,
reads the exit code when the output ends, reports a :class:`TaskExit` and removes the
container (kept with the setting ``keep_containers``, e.g. ``MFC_KEEP_CONTAINERS=1``).
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from mfc.exceptions import MfcError, warn
from mfc.runner.containers import (
    check_gpu_support,
    check_image,
    container_labels,
    container_name,
    gpu_device_requests,
    resource_limits,
)
from mfc.runner.executor import Executor, Handle, TaskExit, TaskStarted
from mfc.runner.taskspec import TaskSpec, spec_argument

CONTAINER_HOME = "/tmp/mfc-home"  # the host uid may have no passwd entry (hence no home) in the image
POOL_SIZE = 64  # one connection per running container's log stream, plus calls
CLOSE_JOIN_SECONDS = 10.0
# MFC_* settings that describe the host, not the task: never passed into a container.
HOST_ONLY = {"MFC_CONFIG", "MFC_PROFILE", "MFC_DATASTORE_ROOT", "MFC_LOCAL_EXECUTOR", "MFC_KEEP_CONTAINERS",
             "MFC_CODE_CACHE"}


@dataclass
class _Box:
    """A task's container, from submit until it is removed (``id`` is set once created)."""

    id: str | None
    name: str
    handle: Handle
    api: Any
    memory: Any = None
    killed: bool = False
    thread: threading.Thread | None = None
    files: list[IO[bytes]] = field(default_factory=list)


def passthrough_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """``MFC_*`` settings of this process that tasks need too (endpoints, user, debug...);
    host-only ones (config file, profile, local executor, run parameters) stay out."""
    environ = dict(os.environ if environ is None else environ)
    return {k: v for k, v in environ.items()
            if k.startswith("MFC_") and k not in HOST_ONLY and not k.startswith("MFC_RUN_")}


def signal_code(code: int) -> int:
    """Docker reports a process killed by signal N as 128+N; local executors say -N."""
    if 128 < code < 128 + 65:
        try:
            signal.Signals(code - 128)
        except ValueError:
            return code
        return -(code - 128)
    return code


class DockerExecutor(Executor):
    """Runs each task in a container of ``image`` on the local Docker engine.

    ``gpu``: GPUs for every task (a step's ``@resources(gpu=N)`` can ask for more).
    ``client``: a docker SDK client to use (default: one for ``$DOCKER_HOST``).
    ``environment``: variables for every task (e.g. AWS endpoints), below the step's own.
    ``keep``: leave each container behind when its task ends (setting ``keep_containers``).
    A spec's own ``image`` (when set) wins over ``image``.
    """

    name = "docker"
    reports_start = True

    def __init__(self, image: str, datastore_root: str, gpu: int = 0, client: Any = None,
                 environment: dict[str, str] | None = None, keep: bool = False) -> None:
        super().__init__()
        self.image = image
        self.datastore_root = datastore_root
        self.gpu = int(gpu or 0)
        self.environment = dict(environment or {})
        self.keep = keep
        self._client = client
        self._own_client = client is None
        self._boxes: dict[str, _Box] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._started = False
        self._info: dict[str, Any] | None = None
        self._has_nvidia: bool | None = None

    # -- setup ----------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The docker SDK client (connected on first use; MfcError when no engine answers)."""
        if self._client is None:
            from mfc.builder.engine import docker_client

            checked = docker_client()  # the clear "engine not reachable" error lives there
            checked.close()
            import docker

            self._client = docker.from_env(timeout=60, max_pool_size=POOL_SIZE)
        return self._client

    def start(self) -> None:
        """Connect, check the image is there and, with ``gpu``, that the engine can give GPUs."""
        if self._started:
            return
        self.check_gpus({})
        check_image(self.client, self.image)
        self._started = True

    def check_gpus(self, step_resources: dict[str, dict[str, Any]]) -> None:
        """``gpu`` and every step's ``@resources(gpu=N)`` can be served by this engine (asked only
        when some GPU is); needs no image, so a launch asks before building one."""
        if self.gpu:
            check_gpu_support(self._nvidia(), self.gpu, f"--gpu {self.gpu}")
        for step, resources in step_resources.items():
            count = int(resources.get("gpu") or 0)
            if count > self.gpu:
                check_gpu_support(self._nvidia(), count, f"step {step}: @resources(gpu={count})")

    def preflight(self, step_resources: dict[str, dict[str, Any]]) -> None:
        """Check before a run starts that the image is there and every GPU request can be served."""
        self.check_gpus(step_resources)
        self.start()

    def _nvidia(self) -> bool:
        if self._has_nvidia is None:
            from mfc.builder.engine import engine_has_nvidia_runtime

            self._has_nvidia = engine_has_nvidia_runtime(self.client)
        return self._has_nvidia

    def _engine_cpus(self) -> int | None:
        if self._info is None:
            self._info = self.client.api.info()
        return self._info.get("NCPU")

    # -- submit ---------------------------------------------------------------------------------
    def _environment(self, spec: TaskSpec) -> dict[str, str]:
        env = passthrough_environment()
        env.update(self.environment)
        env.update(spec.environment)
        env.update(PYTHONUNBUFFERED="1", HOME=CONTAINER_HOME, MFC_DATASTORE_ROOT=spec.datastore_root)
        return env

    def _host_config(self, spec: TaskSpec) -> dict[str, Any]:
        resources = spec.resources or {}
        gpus = max(self.gpu, int(resources.get("gpu") or 0))
        if gpus > self.gpu:
            check_gpu_support(self._nvidia(), gpus, f"step {spec.step}: @resources(gpu={gpus})")
        needs_cpus = float(resources.get("cpu") or 0) > 1
        limits = resource_limits(resources, self._engine_cpus() if needs_cpus else None)
        config: dict[str, Any] = {"network_mode": "host", "init": True, **limits}
        if "://" not in self.datastore_root:
            config["binds"] = {self.datastore_root: {"bind": self.datastore_root, "mode": "rw"}}
        if gpus:
            config["device_requests"] = gpu_device_requests(gpus)
        return config

    def submit(self, spec: TaskSpec, stdout: str, stderr: str) -> Handle:
        """Check the task can run here and start its container in the background; its logs
        stream into ``stdout``/``stderr``. Returns at once: container starts (~0.1 s each) run
        in parallel, and a container that fails to start ends as a TaskExit with the reason."""
        self.start()
        if spec.code_package is None:
            raise MfcError(f"task {spec.pathspec}: the Docker executor needs the run's code package "
                           "(RunInfo.code_package) to bring the flow's code into the container")
        key = f"{spec.step}/{spec.task_id}/{spec.attempt}"
        handle = Handle(key, spec, stdout, stderr)
        api = self.client.api
        host_config = api.create_host_config(**self._host_config(spec))
        files: list[IO[bytes]] = [open(stdout, "ab"), open(stderr, "ab")]  # noqa: SIM115 - closed by the task's thread
        box = _Box(None, container_name(spec), handle, api, (spec.resources or {}).get("memory"), files=files)
        box.thread = threading.Thread(target=self._run, args=(box, host_config), name=f"mfc-docker-{key}",
                                      daemon=True)
        with self._lock:
            self._boxes[key] = box
            self._threads.append(box.thread)
        box.thread.start()
        return handle

    def _create(self, box: _Box, host_config: Any) -> None:
        import docker.errors

        spec = box.handle.spec
        image = spec.image or self.image
        for retry in (False, True):
            try:
                created = box.api.create_container(
                    image, ["python", "-m", "mfc.runner.task", "--spec", spec_argument(spec)], name=box.name,
                    labels=container_labels(spec), user=f"{os.getuid()}:{os.getgid()}", detach=True,
                    environment=self._environment(spec), host_config=host_config,
                )
                break
            except docker.errors.ImageNotFound:
                raise MfcError(f"Docker image {image} is not on this engine",
                               hint="build it with `make image` or `mfc image build flow.py`") from None
            except docker.errors.APIError as exc:
                if exc.status_code != 409 or retry:
                    raise
                box.name = f"{box.name}-{secrets.token_hex(3)}"  # a leftover holds the name
        box.id = created["Id"]
        box.handle.extra.update(container=box.id, name=box.name)

    # -- a container's life, in its own thread ----------------------------------------------------
    def _run(self, box: _Box, host_config: Any) -> None:
        out, err = box.files
        sock = None
        try:
            if not box.killed:
                self._create(box, host_config)
            if not box.killed:
                sock = box.api.attach_socket(box.id, params={"stdout": 1, "stderr": 1, "stream": 1, "logs": 1})
                box.api.start(box.id)
                self.events.put(TaskStarted(box.handle.key, time.time()))
                if box.killed:  # kill() ran between create and start
                    self._signal(box, "SIGKILL")
        except Exception as exc:  # noqa: BLE001 - reported as the task's end
            _close_quietly(sock)
            self._end(box, -signal.SIGKILL if box.killed else 1,
                      None if box.killed else f"could not start container {box.name}: {_explain(exc)}")
            return
        if box.id is None or sock is None:  # killed before it started
            self._end(box, -signal.SIGKILL, None)
            return
        lost = self._stream(sock, out, err)
        code, error = self._exit_status(box)
        if lost is not None and not self._closed:
            _write_quietly(err, f"mfc: lost the log stream of container {box.name}: {lost}\n")
        self._end(box, code, error)

    @staticmethod
    def _stream(sock: Any, out: IO[bytes], err: IO[bytes]) -> BaseException | None:
        """Copy the container's multiplexed output into the two files until it ends."""
        from docker.utils.socket import STDERR, frames_iter

        try:
            _no_timeout(sock)
            for stream, data in frames_iter(sock, False):
                target = err if stream == STDERR else out
                target.write(data)
                target.flush()
        except Exception as exc:  # noqa: BLE001 - the exit code still comes from wait()
            return exc
        finally:
            _close_quietly(sock)
        return None

    def _end(self, box: _Box, code: int, error: str | None) -> None:
        """Close the logs, report the exit, then remove the container (unless kept)."""
        for fh in box.files:
            fh.close()
        self.events.put(TaskExit(box.handle.key, code, error))
        try:
            if box.id is not None and not self.keep:
                _remove(box.api, box.id)
        except Exception as exc:  # noqa: BLE001 - a thread has nobody to raise to
            if not self._closed:
                warn(f"could not remove container {box.name}: {exc} (`mfc cleanup` will)")
        with self._lock:
            if self._boxes.get(box.handle.key) is box:
                del self._boxes[box.handle.key]

    def _exit_status(self, box: _Box) -> tuple[int, str | None]:
        import docker.errors

        api = box.api
        try:
            code = int(api.wait(box.id, timeout=None)["StatusCode"])
        except docker.errors.NotFound:
            return -signal.SIGKILL, None  # removed by close() while running
        except Exception as exc:  # noqa: BLE001
            return -signal.SIGKILL, f"lost track of container {box.name}: {exc}"
        if code == 0:
            return 0, None
        try:
            oom = bool(api.inspect_container(box.id)["State"].get("OOMKilled"))
        except Exception:  # noqa: BLE001 - removed meanwhile: no OOM verdict
            oom = False
        if oom and not box.killed:
            limit = f" (limit {int(box.memory)} MB)" if box.memory else ""
            return 137, f"killed: out of memory{limit}; raise @resources(memory=...)"
        return signal_code(code), None

    # -- stopping -------------------------------------------------------------------------------
    def kill(self, handle: Handle, grace: float = 0.0) -> None:
        """SIGTERM now and SIGKILL after ``grace`` seconds (0: SIGKILL at once); never blocks."""
        with self._lock:
            box = self._boxes.get(handle.key)
        if box is None:
            return
        box.killed = True  # before reading box.id: a container still starting checks it after start
        if box.id is None:
            return
        self._signal(box, "SIGTERM" if grace > 0 else "SIGKILL")
        if grace > 0:
            timer = threading.Timer(grace, self._signal, args=(box, "SIGKILL"))
            timer.daemon = True
            timer.start()

    def _signal(self, box: _Box, sig: str) -> None:
        if box.id is None:
            return
        try:
            box.api.kill(box.id, signal=sig)
        except Exception:  # noqa: BLE001 - exited or removed already, or the client was closed
            pass

    def close(self) -> None:
        """Kill and remove every container this executor started and still holds (Ctrl-C path);
        waits (up to 10 s) for their threads to finish."""
        self._closed = True
        with self._lock:
            boxes = list(self._boxes.values())
            threads = list(self._threads)
            self._threads.clear()
        for box in boxes:
            box.killed = True
            if self.keep:
                self._signal(box, "SIGKILL")
            elif box.id is not None:
                try:
                    _remove(box.api, box.id)
                except Exception:  # noqa: BLE001 - best effort; `mfc cleanup` finds what is left
                    pass
        deadline = time.monotonic() + CLOSE_JOIN_SECONDS
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    def containers(self) -> list[str]:
        """Ids of the containers started and not yet removed (for tests and diagnostics)."""
        with self._lock:
            return [box.id for box in self._boxes.values() if box.id is not None]


def _remove(api: Any, container_id: str) -> None:
    import docker.errors

    try:
        api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: removal already in progress
            raise


def _no_timeout(sock: Any) -> None:
    """Log streams may stay silent for hours: drop the client's read timeout on the socket."""
    for s in (sock, getattr(sock, "_sock", None)):
        if s is not None and hasattr(s, "settimeout"):
            s.settimeout(None)


def _explain(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _write_quietly(fh: IO[bytes], text: str) -> None:
    try:
        fh.write(text.encode())
    except (OSError, ValueError):
        pass


def _close_quietly(sock: Any) -> None:
    for obj in (sock, getattr(sock, "_response", None)):
        try:
            if obj is not None:
                obj.close()
        except Exception:  # noqa: BLE001
            pass
