"""Recording a Step Functions run from its first state: the run id comes from the execution's
name, the parameters (or, for ``mfc sfn resume``, the origin run to clone) from its input.

The execution input is ``{"parameters": {"name": "value", ...}, "resume": {"origin_run_id":
"...", "step": "..."}}`` (both optional). Parameter values are given as on the command line
(strings; other JSON values are taken as their JSON text; ``null`` as not given) and are parsed, checked and given
their defaults exactly as ``mfc run`` does. A retried start state records the same run again,
which :func:`mfc.runner.start.start_run` accepts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mfc.exceptions import MfcError

if TYPE_CHECKING:
    from mfc.sfn.task import Task

DRIVER_KIND = "sfn"


def parameter_args(values: dict[str, Any]) -> list[str]:
    """``{"alpha": 0.5, "name": "x"}`` -> ``["--alpha=0.5", "--name=x"]`` (sorted by name); a
    ``null`` value is not given (an event without the field a trigger maps: the default)."""
    args = []
    for name in sorted(values):
        value = values[name]
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        if isinstance(value, bool):
            text = "true" if value else "false"
        args.append(f"--{name}={text}")
    return args


def read_input(text: str | None) -> dict[str, Any]:
    """The execution input as mfc reads it: an object with optional ``parameters`` and ``resume``."""
    try:
        data = json.loads(text or "{}")
    except ValueError as exc:
        raise MfcError(f"the execution input is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MfcError("the execution input must be a JSON object like {\"parameters\": {\"name\": \"value\"}}")
    params = data.get("parameters") or {}
    if not isinstance(params, dict):
        raise MfcError("the execution input's \"parameters\" must be an object of names to values")
    resume = data.get("resume")
    if resume is not None and not (isinstance(resume, dict) and isinstance(resume.get("origin_run_id"), str)):
        raise MfcError("the execution input's \"resume\" must be {\"origin_run_id\": RUN, \"step\": STEP}")
    trigger = data.get("trigger")
    return {"parameters": params, "resume": resume, "trigger": trigger if isinstance(trigger, dict) else None}


def execution_input(execution_arn: str) -> str:
    """The input of a running execution, asked of Step Functions (the job role allows
    ``states:DescribeExecution``)."""
    from mfc.aws import client
    from mfc.runner.batch_setup import explain

    try:
        return str(client("stepfunctions").describe_execution(executionArn=execution_arn).get("input") or "{}")
    except Exception as exc:  # noqa: BLE001 - one line for the job's log
        raise MfcError(f"cannot read the input of execution {execution_arn}: {explain(exc)}") from None


def record_run(task: Task, execution_arn: str, info: dict[str, Any]) -> None:
    """Record ``task``'s run (see the module docstring)."""
    from mfc.runner.launch import _parameters, json_safe, system_tags
    from mfc.runner.resume import clone_records, discard_damaged, graph_summary, plan_resume
    from mfc.runner.start import start_run
    from mfc.stores.artifacts import ArtifactStore

    args = task.args
    given = read_input(execution_input(execution_arn))
    user = str(info.get("user") or "sfn")
    store = ArtifactStore(task.blobs, args.flow)
    record: dict[str, Any] = {
        "user": user, "tags": sorted(info.get("tags") or []), "system_tags": system_tags(user, task.flow_cls),
        "flow_file": args.file, "code_package": {"sha256": args.code, "flow_file": args.file},
        "graph": graph_summary(task.graph), "origin_run_id": None, "resume_step": None,
        "driver": {"kind": DRIVER_KIND, "execution": execution_arn, "state_machine": info.get("state_machine")},
        "trigger": given["trigger"] or {"kind": "manual"},
    }
    resume = given["resume"]
    if resume is None:
        values = _parameters(task.flow_cls, parameter_args(given["parameters"]), user)
        record["parameters"] = {a: json_safe(v) for a, v in values.items()}
        start_run(task.metadata, store, record, values, run_id=args.run)
        return
    if given["parameters"]:
        raise MfcError("a resumed run takes the origin run's parameters; leave \"parameters\" out of the input")
    plan = plan_resume(task.graph, task.metadata, task.records, args.flow, resume["origin_run_id"], resume.get("step"))
    for note in plan.notes:
        print(f"warning: {note}", flush=True)
    discard_damaged(plan, task.blobs, args.flow)
    origin = task.metadata.run(args.flow, plan.origin_run_id) or {}
    record.update(parameters=origin.get("parameters", {}), origin_run_id=plan.origin_run_id,
                  resume_step=plan.resume_step)
    start_run(task.metadata, store, record, None, run_id=args.run)
    if not task.records.read(args.run, "_parameters", "0", 0):
        clone_records(plan, task.records, args.run, args.flow)
    print(f"resuming {args.flow}/{plan.origin_run_id} from step {plan.resume_step}: cloned {len(plan.clones)} tasks",
          flush=True)
