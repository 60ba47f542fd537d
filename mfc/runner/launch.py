"""Start a run: resolve parameters (or take a resumed run's), record the run with its code
package, snapshot parameters as artifacts, start the executors and hand the DAG to the
orchestrator."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mfc.config import Config
from mfc.decorators import Decorator
from mfc.exceptions import Interrupted, MfcError, RunFailed, Terminated, warn
from mfc.graph import FlowGraph
from mfc.parameters import flow_parameters, parse_parameter_args
from mfc.runner.dag import TaskRequest
from mfc.runner.executor import Executor
from mfc.runner.lease import LeaseKeeper, lease_settings
from mfc.runner.orchestrator import Orchestrator, RunInfo
from mfc.runner.policy import StepPolicy, step_policies
from mfc.runner.progress import make_reporter
from mfc.runner.resume import (
    PARAMETERS_STEP,
    ResumePlan,
    clone_records,
    discard_damaged,
    graph_summary,
    plan_resume,
)
from mfc.runner.settings import RunSettings
from mfc.runner.start import PARAMETERS_TASK, start_run
from mfc.runner.taskspec import InputRef
from mfc.stores.artifacts import ArtifactStore
from mfc.stores.blob import BlobStore, open_configured_store
from mfc.stores.lease import driver_record
from mfc.stores.provider import open_metadata


@dataclass
class LaunchOptions:
    """What one ``mfc run`` / ``mfc resume`` invocation asks for beyond the flow, its parameters
    and the settings (those resolve through :class:`Config`, see :class:`RunSettings`)."""

    tags: list[str] = field(default_factory=list)
    run_id_file: str | None = None
    with_decorators: list[Decorator] = field(default_factory=list)
    resume: bool = False
    resume_step: str | None = None
    origin_run_id: str | None = None
    executors: dict[str, Executor] = field(default_factory=dict)  # extra executors by name
    executor_for_step: dict[str, str] = field(default_factory=dict)  # step -> executor name
    local_executor: Executor | None = None  # prepared before the run is recorded (its environment)


def system_tags(user: str, flow_cls: type | None = None) -> list[str]:
    from mfc.decorators import project_info
    from mfc.version import __version__

    tags = [f"user:{user}", f"mfc_version:{__version__}", f"python_version:{sys.version.split()[0]}"]
    project = project_info(flow_cls, user) if flow_cls is not None else None
    if project:
        tags += [f"project:{project['project_name']}", f"project_branch:{project['branch_name']}"]
    return tags


def json_safe(value: Any) -> Any:
    """A JSON-friendly summary of a parameter value for the run record."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value if not isinstance(value, str) or len(value) <= 200 else value[:200] + "..."
    if isinstance(value, (list, dict)):
        import json

        try:
            return value if len(json.dumps(value)) <= 2000 else f"<{type(value).__name__} of {len(value)} items>"
        except TypeError:
            pass
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return repr(value)[:200]


def make_local_executor(config: Config, flow_cls: type, graph: FlowGraph, own_env: bool = True) -> Executor:
    """The executor of the run's local steps; ``own_env=False``: the host's Python even for a flow
    with @pypi/@conda (when every step runs elsewhere, its virtualenv would be built for nothing)."""
    from mfc.runner.local import ForkExecutor, SpawnExecutor

    python = flow_env_python(graph) if own_env else None
    if config["local_executor"] == "spawn" or not hasattr(os, "fork"):
        return SpawnExecutor(python)
    executor = ForkExecutor(flow_cls, graph, python)
    if python is not None:
        executor.prestart()  # the env's interpreter imports the flow while the run is recorded
    return executor


def flow_env_python(graph: FlowGraph) -> str | None:
    """The interpreter of the flow's own environment when it declares @pypi/@conda (built on first
    use, progress on stderr), else None: the tasks run with this interpreter."""
    from mfc.runner.envs import declares_environment, ensure_env, known_env, remember_env, source_key

    if not declares_environment(graph):
        return None
    key = source_key(graph)
    known = known_env(key)
    if known is not None:
        return str(known)
    from mfc.packager.deps import lock_flow

    result = lock_flow(graph.file, graph.name)
    python = ensure_env(result.lock, result.inputs.python_source, lambda line: print(line, file=sys.stderr))
    remember_env(key, result.lock.id)
    return str(python)


def snapshot_code(flow_file: str, store: ArtifactStore, config: Config, reporter_warn: Any = None) -> dict[str, Any]:
    """Package the flow's project into the content-addressed store; returns the run's reference."""
    from mfc.packager import build_package

    suffixes = tuple(s.strip() if s.strip().startswith(".") else "." + s.strip()
                     for s in config["package_suffixes"].split(",") if s.strip())
    package = build_package(flow_file, suffixes=suffixes, max_bytes=config["package_max_mb"] * 1024**2,
                            warn=reporter_warn)
    store.save_bytes(package.data, sha256=True)
    flow_rel = os.path.relpath(os.path.abspath(flow_file), package.root)
    return {"sha256": package.sha256, "size": str(package.size), "root": str(package.root), "flow_file": flow_rel}


def _parameters(flow_cls: type, param_args: list[str], user: str) -> dict[str, Any]:
    params = flow_parameters(flow_cls)
    values = parse_parameter_args(params, param_args, flow_cls.__name__, user)
    for attr, param in params.items():
        if param.IS_INCLUDE_FILE and values[attr] is not None:
            values[attr] = param.load(values[attr])  # type: ignore[attr-defined]
    return values


def launch(flow_file: str, flow_cls: type, graph: FlowGraph, param_args: list[str], config: Config,
           options: LaunchOptions) -> str:
    """Run (or resume) the flow to completion; returns the run id, raises RunFailed/Interrupted/MfcError.

    Once the run is recorded it always gets a final status, whatever stops it; until then its
    lease says whether the process driving it is alive. SIGTERM stops it as Ctrl-C does."""
    check_run_id_file(options.run_id_file)
    interval, timeout = lease_settings(config)
    with sigterm_as_interrupt():
        return _launch(flow_file, flow_cls, graph, param_args, config, options, driver_record(interval, timeout))


def _launch(flow_file: str, flow_cls: type, graph: FlowGraph, param_args: list[str], config: Config,
            options: LaunchOptions, driver: dict[str, Any]) -> str:
    flow_name = flow_cls.__name__
    user = config["user"]
    blobs = open_configured_store(config)
    store = ArtifactStore(blobs, flow_name)
    metadata = open_metadata(blobs, config)
    os.environ.update(metadata.task_environment())  # before any task or container starts: they record there too
    records = metadata.records(flow_name)
    plan: ResumePlan | None = None
    values: dict[str, Any] = {}
    if options.resume:
        if param_args:
            raise_usage("resume reruns with the origin run's parameters; drop " + " ".join(param_args))
        plan = plan_resume(graph, metadata, records, flow_name, options.origin_run_id, options.resume_step)
        for note in plan.notes:
            warn(note)
        discard_damaged(plan, blobs, flow_name)
        origin = metadata.run(flow_name, plan.origin_run_id) or {}
        summary = origin.get("parameters", {})
    else:
        values = _parameters(flow_cls, param_args, user)
        summary = {a: json_safe(v) for a, v in values.items()}
    policies = step_policies(flow_cls, list(graph.nodes), options.with_decorators)
    from mfc.runner.batch_setup import batch_steps

    batch, steps = batch_steps(flow_file, flow_name, graph, config, options, policies)
    if batch is not None:
        options.executors["batch"] = batch
        options.executor_for_step.update({s: "batch" for s in steps})
    _containerised_steps(flow_file, flow_name, graph, config, options, policies)
    if any(options.executor_for_step.get(name, "local") == "local" for name in graph.nodes):
        options.local_executor = make_local_executor(config, flow_cls, graph)  # an env fails before the run
    code = snapshot_code(flow_file, store, config)
    tags = sorted(set(options.tags))
    run_id = start_run(metadata, store, {
        "user": user, "tags": tags, "system_tags": system_tags(user, flow_cls), "parameters": summary,
        "flow_file": os.path.abspath(flow_file), "origin_run_id": plan.origin_run_id if plan else None,
        "resume_step": plan.resume_step if plan else None, "code_package": code, "graph": graph_summary(graph),
        "driver": driver,
    }, None if plan is not None else values)
    lease = LeaseKeeper(metadata, flow_name, run_id, driver)
    try:
        if options.run_id_file:
            write_run_id_file(options.run_id_file, run_id)
        if plan is not None:
            clone_records(plan, records, run_id, flow_name)
        info = RunInfo(flow_name, run_id, os.path.abspath(flow_file), config.datastore_root, user,
                       tags, plan.origin_run_id if plan else None,
                       {"sha256": code["sha256"], "flow_file": code["flow_file"]})
        _execute(flow_cls, graph, config, options, _Recorded(info, blobs, policies, plan, lease))
    except BaseException as exc:
        lease.stop()
        status, error, raised = final_status(exc, f"{flow_name}/{run_id}")
        metadata.finish_run(flow_name, run_id, status, {"error": error})
        _exit_hooks(flow_cls, flow_file, f"{flow_name}/{run_id}", False, config)
        if raised is exc:
            raise
        raise raised from None
    lease.stop()
    metadata.finish_run(flow_name, run_id, "succeeded")
    _exit_hooks(flow_cls, flow_file, f"{flow_name}/{run_id}", True, config)
    return run_id


def _exit_hooks(flow_cls: type, flow_file: str, pathspec: str, succeeded: bool, config: Config) -> None:
    if getattr(flow_cls, "_flow_decorators", {}).get("exit_hook") is not None:
        from mfc.runner.exit_hooks import run_exit_hooks

        run_exit_hooks(flow_cls, os.path.abspath(flow_file), pathspec, succeeded, config.datastore_root)


def final_status(exc: BaseException, run: str) -> tuple[str, str, BaseException]:
    """(status, error line, exception to raise) for a run that ``exc`` ended."""
    if isinstance(exc, Interrupted):
        return "interrupted", str(exc), exc
    if isinstance(exc, KeyboardInterrupt):  # before or after the orchestrator's own handling
        terminated = isinstance(exc, Terminated)
        how = "SIGTERM" if terminated else "Ctrl-C"
        message = f"run {run} interrupted by {how}"
        return "interrupted", message, Interrupted(message, Terminated.exit_code if terminated else Interrupted.exit_code)
    if isinstance(exc, (RunFailed, MfcError)):
        return "failed", str(exc), exc
    return "failed", f"{type(exc).__name__}: {exc}", exc


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt), so it stops a
    run as cleanly as Ctrl-C. Only the main thread can take signals; elsewhere this does nothing.

    Processes forked meanwhile (the fork server) inherit the handler, which ignores the signal
    there: a SIGTERM sent to the whole process group is then the launcher's to handle, and it
    stops the tasks through the fork server (Ctrl-C works the same way)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    launcher = os.getpid()

    def terminate(signum: int, frame: Any) -> None:
        if os.getpid() == launcher:
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_run_id_file(path: str | None) -> None:
    """Refuse a ``--run-id-file`` that cannot be written, before anything is recorded."""
    if not path:
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise MfcError(f"--run-id-file {path}: {directory} {what}")
    if os.path.isdir(path):
        raise MfcError(f"--run-id-file {path}: is a directory")
    if not os.access(path if os.path.exists(path) else directory, os.W_OK):
        raise MfcError(f"--run-id-file {path}: cannot write there (permission denied)")


def write_run_id_file(path: str, run_id: str) -> None:
    try:
        with open(path, "w") as fh:
            fh.write(run_id)
    except OSError as exc:
        raise MfcError(f"--run-id-file {path}: {exc.strerror or exc}") from None


def _containerised_steps(flow_file: str, flow_name: str, graph: FlowGraph, config: Config, options: LaunchOptions,
                         policies: dict) -> None:
    """Set up the Docker executor for ``--local-docker`` before anything is recorded, so a missing
    engine, image or GPU fails the command without leaving a run behind."""
    run = RunSettings.from_config(config)
    if run.local_docker is None:
        if run.gpu and "batch" not in options.executors and "gpu" in run.given:
            raise MfcError("--gpu needs --local-docker (or --batch): local processes cannot be given GPUs")
        return
    steps = list(graph.nodes) if run.local_docker == "*" else [s.strip() for s in run.local_docker.split(",") if s.strip()]
    unknown = [s for s in steps if s not in graph]
    if unknown:
        raise MfcError(f"--local-docker {run.local_docker}: no step {unknown[0]!r} (steps: {', '.join(graph.nodes)})")
    from mfc.aws import env_for_tasks
    from mfc.runner.docker_executor import DockerExecutor

    resources = {s: policies[s].resources for s in steps}
    # Whatever the datastore, a step may call AWS itself (@secrets, S3()): a container has no
    # config file, so it gets the endpoints, region and credentials a local process would use.
    env = env_for_tasks(config)
    executor = DockerExecutor(run.image or "", config.datastore_root, gpu=run.gpu, environment=env,
                              keep=config["keep_containers"])
    executor.check_gpus(resources)  # an engine without GPUs says so before any image is built
    if run.image is None:
        from mfc.builder.image import ensure_flow_image

        gpu = run.gpu or max((int(r.get("gpu") or 0) for r in resources.values()), default=0)
        executor.image = ensure_flow_image(flow_file, flow_name, gpu=gpu > 0, quiet=run.quiet)
    executor.preflight(resources)
    options.executors["docker"] = executor
    options.executor_for_step.update({s: "docker" for s in steps})


def raise_usage(message: str) -> None:
    raise MfcError(message)


@dataclass(frozen=True)
class _Recorded:
    """A run once recorded: what executing it needs besides the flow, the config and the options."""

    info: RunInfo
    blobs: BlobStore
    policies: dict[str, StepPolicy]
    plan: ResumePlan | None
    lease: LeaseKeeper


def _execute(flow_cls: type, graph: FlowGraph, config: Config, options: LaunchOptions, recorded: _Recorded) -> None:
    info, blobs, policies, plan, lease = (recorded.info, recorded.blobs, recorded.policies, recorded.plan,
                                          recorded.lease)
    flow_name = info.flow_name
    # launch made the local executor if any step runs here; else none of its tasks will run
    local = options.local_executor or make_local_executor(config, flow_cls, graph, own_env=False)
    executors = {"local": local, **options.executors}
    try:
        local.start()  # first, before any thread: the fork server must fork a single-threaded process
        lease.start()
        for name, executor in options.executors.items():
            if name != "local":
                executor.start()
        run = RunSettings.from_config(config)
        reporter = make_reporter(run.quiet)
        orchestrator = Orchestrator(
            graph, info, blobs, executors, lambda step: options.executor_for_step.get(step, "local"), policies,
            reporter, max_workers=run.max_workers, max_num_splits=run.max_num_splits,
        )
        first = [TaskRequest("start", (InputRef(PARAMETERS_STEP, PARAMETERS_TASK, 0),))]
        if plan is not None and plan.clones:
            cloned_steps = {c.step for c in plan.clones}
            for clone in plan.clones:
                orchestrator.seed_finished(clone.step, InputRef(clone.step, clone.new_id), clone.record, cloned_steps)
            start = f"from step {plan.resume_step}" if plan.resume_step else "(it succeeded: nothing reruns)"
            reporter.message(f"Resuming {flow_name}/{plan.origin_run_id} {start}: "
                             f"cloned {len(plan.clones)} tasks into run {info.run_id}")
            first = []
        orchestrator.run(first)
    finally:
        for executor in executors.values():
            executor.close()
