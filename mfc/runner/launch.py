"""Start a run: resolve parameters, record the run, snapshot parameters as artifacts, start the
executors and hand the DAG to the orchestrator."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from mfc.config import Config
from mfc.decorators import Decorator
from mfc.exceptions import Interrupted, RunFailed
from mfc.parameters import flow_parameters, parse_parameter_args
from mfc.runner.dag import TaskRequest
from mfc.runner.executor import Executor
from mfc.runner.orchestrator import Orchestrator, RunInfo
from mfc.runner.policy import step_policies
from mfc.runner.progress import make_reporter
from mfc.runner.taskspec import InputRef
from mfc.stores.artifacts import ArtifactStore
from mfc.stores.blob import open_blob_store
from mfc.stores.metadata import BlobMetadata
from mfc.stores.records import TaskRecords

PARAMETERS_STEP = "_parameters"
PARAMETERS_TASK = "0"


@dataclass
class LaunchOptions:
    """What ``mfc run`` was asked for, beyond the flow and its parameters."""

    tags: list[str] = field(default_factory=list)
    quiet: bool = False
    run_id_file: str | None = None
    with_decorators: list[Decorator] = field(default_factory=list)
    max_workers: int | None = None
    max_num_splits: int | None = None
    origin_run_id: str | None = None


def system_tags(user: str) -> list[str]:
    from mfc import __version__

    return [f"user:{user}", f"mfc_version:{__version__}", f"python_version:{sys.version.split()[0]}"]


def json_safe(value: Any) -> Any:
    """A JSON-friendly summary of a parameter value for the run record."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value if not isinstance(value, str) or len(value) <= 200 else value[:200] + "..."
    if isinstance(value, (list, dict)):
        import json

        try:
            text = json.dumps(value)
            return value if len(text) <= 2000 else f"<{type(value).__name__} of {len(value)} items>"
        except TypeError:
            pass
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return repr(value)[:200]


def make_local_executor(config: Config, flow_cls: type, graph: Any) -> Executor:
    from mfc.runner.local import ForkExecutor, SpawnExecutor

    mode = config["local_executor"]
    if mode == "spawn" or not hasattr(os, "fork"):
        return SpawnExecutor()
    return ForkExecutor(flow_cls, graph)


def launch(flow_file: str, flow_cls: type, graph: Any, param_args: list[str], config: Config,
           options: LaunchOptions) -> str:
    """Run the flow to completion; returns the run id, raises RunFailed/Interrupted/MfcError."""
    flow_name = flow_cls.__name__
    user = config["user"]
    params = flow_parameters(flow_cls)
    values = parse_parameter_args(params, param_args, flow_name, user)
    for attr, param in params.items():
        if param.IS_INCLUDE_FILE and values[attr] is not None:
            values[attr] = param.load(values[attr])  # type: ignore[attr-defined]
    policies = step_policies(flow_cls, list(graph.nodes), options.with_decorators)

    blobs = open_blob_store(config.datastore_root)
    store = ArtifactStore(blobs, flow_name)
    metadata = BlobMetadata(blobs)
    tags = sorted(set(options.tags))
    run_id = metadata.create_run(flow_name, {
        "user": user, "tags": tags, "system_tags": system_tags(user),
        "parameters": {a: json_safe(v) for a, v in values.items()},
        "flow_file": os.path.abspath(flow_file), "origin_run_id": options.origin_run_id,
    })
    if options.run_id_file:
        with open(options.run_id_file, "w") as fh:
            fh.write(run_id)
    param_refs = {attr: store.save(value, attr, PARAMETERS_STEP).to_json() for attr, value in values.items()}
    TaskRecords(blobs, flow_name).write(run_id, PARAMETERS_STEP, PARAMETERS_TASK, 0, {
        "pathspec": f"{flow_name}/{run_id}/{PARAMETERS_STEP}/{PARAMETERS_TASK}", "attempt": 0, "status": "ok",
        "artifacts": param_refs, "foreach_stack": [], "foreach": None,
    })
    info = RunInfo(flow_name, run_id, os.path.abspath(flow_file), config.datastore_root, user,
                   tags + system_tags(user), options.origin_run_id)
    executor = make_local_executor(config, flow_cls, graph)
    executor.start()  # before any thread: the fork server must fork a single-threaded process
    reporter = make_reporter(options.quiet)
    orchestrator = Orchestrator(
        graph, info, blobs, {"local": executor}, lambda step: "local", policies, reporter,
        max_workers=options.max_workers or config["max_workers"],
        max_num_splits=options.max_num_splits or config["max_num_splits"],
    )
    start = TaskRequest("start", (InputRef(PARAMETERS_STEP, PARAMETERS_TASK, 0),))
    try:
        orchestrator.run([start])
    except Interrupted as exc:
        metadata.finish_run(flow_name, run_id, "interrupted", {"error": str(exc)})
        raise
    except RunFailed as exc:
        metadata.finish_run(flow_name, run_id, "failed", {"error": str(exc)})
        raise
    except BaseException as exc:
        metadata.finish_run(flow_name, run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        executor.close()
    metadata.finish_run(flow_name, run_id, "succeeded")
    return run_id
