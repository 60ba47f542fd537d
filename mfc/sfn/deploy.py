"""Deploying a compiled flow: thin functions over boto3.

:func:`prepare` resolves what the state machine is compiled from (code package id, images,
settings) and compiles it, touching no AWS API (``mfc sfn compile`` and ``lint`` stop there;
``build=True`` builds and pushes the flow's image when no ``--image`` is given). :func:`create`
checks everything it can before it creates anything (credentials, the role, the queues, the
images in their registry, the lint), then uploads the code package (by content address: once),
registers the job definitions (named by a hash of their content: once) and creates or updates
the state machine in one call, so a failure leaves the deployed version as it was.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from mfc.exceptions import MfcError
from mfc.graph import FlowGraph
from mfc.sfn.build import PLACEHOLDER_IMAGE, DeployOptions, sfn_settings
from mfc.sfn.compiler import compile_with_modes, definition_json, job_definitions
from mfc.sfn.settings import SfnSettings

ROLE_HINT = "set sfn_role (MFC_SFN_ROLE) to the ARN of a role Step Functions can assume; `mfc sandbox up` sets one"


@dataclass
class Deployment:
    """A flow compiled for Step Functions, not yet deployed."""

    flow_file: str
    flow_cls: type
    graph: FlowGraph
    settings: SfnSettings
    definition: dict[str, Any]
    modes: dict[str, str]
    package: Any  # mfc.packager's Package: bytes, sha256
    code: dict[str, str]

    @property
    def definition_json(self) -> str:
        return definition_json(self.definition)

    @property
    def job_definitions(self) -> list[dict[str, Any]]:
        return job_definitions(self.graph, self.settings)


@dataclass
class CreateResult:
    arn: str
    created: bool
    changes: list[str] = field(default_factory=list)
    dry_run: bool = False


def package_code(flow_file: str, config: Any) -> tuple[Any, dict[str, str]]:
    """The flow's code package (built in memory, deterministic) and its reference."""
    from mfc.packager import build_package

    suffixes = tuple(s.strip() if s.strip().startswith(".") else "." + s.strip()
                     for s in config["package_suffixes"].split(",") if s.strip())
    package = build_package(flow_file, suffixes=suffixes, max_bytes=config["package_max_mb"] * 1024**2)
    flow_rel = os.path.relpath(os.path.abspath(flow_file), package.root)
    return package, {"sha256": package.sha256, "flow_file": flow_rel}


def _images(flow_file: str, flow_name: str, graph: FlowGraph, flow_cls: type, config: Any,
            build: bool) -> tuple[str, str | None]:
    """(image, GPU image) of the steps: ``--image``/``--gpu-image`` (or their settings), else the
    flow's images, built and pushed with ``build``, else a placeholder name (compile, lint)."""
    from mfc.runner.policy import step_policies
    from mfc.runner.settings import RunSettings

    run = RunSettings.from_config(config)
    policies = step_policies(flow_cls, list(graph.nodes))
    own = [s for s, p in policies.items() if not (p.decorators.get("batch") and p.decorators["batch"].attributes["image"])]
    on_gpu = {s for s in own if run.gpu or float(policies[s].resources.get("gpu") or 0) > 0}
    image, gpu_image = run.image, run.gpu_image or run.image
    if not build:
        placeholder = PLACEHOLDER_IMAGE.format(flow=flow_name)
        return image or placeholder, gpu_image or (placeholder + "-gpu" if on_gpu else None)
    from mfc.runner.batch_setup import publish_flow_image

    if image is None and len(on_gpu) < len(own):
        image = publish_flow_image(flow_file, flow_name, config, gpu=False, quiet=run.quiet)
    if gpu_image is None and on_gpu:
        gpu_image = publish_flow_image(flow_file, flow_name, config, gpu=True, quiet=run.quiet)
    return image or gpu_image or "", gpu_image


def prepare(flow_file: str, flow_cls: type, graph: FlowGraph, config: Any, options: DeployOptions,
            build: bool = False) -> Deployment:
    """Compile the flow for Step Functions (see the module docstring)."""
    from mfc.sfn.compiler import s3_location

    s3_location(str(config.datastore_root))  # an S3 datastore, or one clear line
    check_compilable(graph)
    check_parameters(flow_cls, graph)
    check_schedulable(flow_cls, graph)
    package, code = package_code(flow_file, config)
    image, gpu_image = _images(flow_file, flow_cls.__name__, graph, flow_cls, config, build)
    settings = sfn_settings(flow_cls, graph, config, code, image, gpu_image, options)
    definition, modes = compile_with_modes(graph, settings)
    return Deployment(flow_file, flow_cls, graph, settings, definition, modes, package, code)


def check_compilable(graph: FlowGraph) -> None:
    """MfcError naming the step, file and line of a graph feature Step Functions cannot run."""
    for node in graph:
        if node.opens_split and not node.matching_join:
            raise MfcError(f"{node.file}:{node.line}: step {node.name} splits but no join closes it, so it "
                           "cannot be compiled to Step Functions", hint="end each branch in one join step")


def check_parameters(flow_cls: type, graph: FlowGraph) -> None:
    """MfcError for a parameter Step Functions runs cannot take yet: an ``IncludeFile`` names a
    file on the machine that starts the run, which the state machine's jobs cannot read."""
    from mfc.parameters import flow_parameters

    for attr, param in flow_parameters(flow_cls).items():
        if param.IS_INCLUDE_FILE:
            spec = next((p for p in graph.parameters if p.attr == attr), None)
            where = f"{graph.file}:{spec.line}: " if spec else ""
            raise MfcError(f"{where}IncludeFile parameter {param.name!r}: Step Functions runs cannot read a file "
                           "from the machine that starts them (not supported yet)",
                           hint="read the file in a step from S3, or pass its text as a Parameter")


def check_schedulable(flow_cls: type, graph: FlowGraph, why: str | None = None) -> None:
    """With ``@schedule`` (or ``why``: what else starts it unattended, e.g. "it is scheduled"),
    every parameter needs a default: a scheduled execution has no one to give it."""
    from mfc.parameters import flow_parameters

    if why is None and not any(d.name == "schedule" for d in graph.flow_decorators):
        return
    for attr, param in flow_parameters(flow_cls).items():
        if param.required and param.default is None:
            spec = next((p for p in graph.parameters if p.attr == attr), None)
            where = f"{graph.file}:{spec.line}: " if spec else ""
            raise MfcError(f"{where}parameter {param.name!r} is required and has no default, but "
                           f"{why or graph.name + ' has @schedule'}: a scheduled run has no one to give it",
                           hint=f"give {param.name} a default, or drop required=True")


# -- AWS ----------------------------------------------------------------------------------------------------
def sfn_client(config: Any) -> Any:
    from mfc.runner.batch_setup import quick_client

    return quick_client("stepfunctions", config)


def find_state_machine(sfn: Any, name: str) -> dict[str, Any] | None:
    """The state machine called ``name`` (``describe_state_machine``), None when there is none."""
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page.get("stateMachines") or []:
            if machine["name"] == name:
                return dict(sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"]))
    return None


def deployed(config: Any, name: str, flow_name: str) -> dict[str, Any]:
    """The deployed state machine ``name``; MfcError when the flow was never deployed."""
    from mfc.runner.batch_setup import access_error

    try:
        machine = find_state_machine(sfn_client(config), name)
    except Exception as exc:  # noqa: BLE001 - one line
        raise access_error(exc, config, "AWS Step Functions") from None
    if machine is None:
        raise MfcError(f"{flow_name} is not deployed to Step Functions (no state machine {name!r} in "
                       f"{config['aws_region']})", hint="deploy it first: mfc sfn create FLOW_FILE")
    return machine


def deployed_code(machine: dict[str, Any]) -> dict[str, str]:
    """What the steps of a deployed state machine (``describe_state_machine``) run: the
    ``datastore_root``, ``flow_name``, ``code_sha256`` and ``flow_file`` (inside the package)
    written into each task's command; MfcError for a state machine mfc did not compile."""
    from mfc.sfn.intrinsics import Call, Literal, parse

    flags = {"--root": "datastore_root", "--flow": "flow_name", "--code": "code_sha256", "--file": "flow_file"}
    for state in _all_states(json.loads(machine.get("definition") or "{}")).values():
        command = (state.get("Parameters") or {}).get("ContainerOverrides", {}).get("Command.$")
        node = parse(command) if isinstance(command, str) else None
        if isinstance(node, Call) and node.name == "States.Array":
            words = [arg.text if isinstance(arg, Literal) else None for arg in node.args]
            found = {flags[w]: v for w, v in zip(words, words[1:], strict=False) if w in flags and v}
            if len(found) == len(flags):
                return {key: str(value) for key, value in found.items()}
    raise MfcError(f"state machine {machine.get('name')!r} does not run an mfc flow (no mfc task in its definition)")


def configured_role(config: Any, key: str, what: str, hint: str) -> str:
    """The role ARN setting ``key``; MfcError (``what`` needs it) when unset or not a role ARN."""
    role = config[key]
    if not role:
        raise MfcError(f"no IAM role for {what}", hint=hint)
    if ":role/" not in str(role):
        raise MfcError(f"{key} {role!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", hint=hint)
    return str(role)


def check_role(config: Any) -> str:
    """The state machine role's ARN, checked to exist (where IAM answers)."""
    from mfc.runner.batch_setup import access_error, quick_client

    role = configured_role(config, "sfn_role", "the state machine to run as", ROLE_HINT)
    iam = quick_client("iam", config)
    try:
        iam.get_role(RoleName=role.rsplit("/", 1)[1])
    except iam.exceptions.NoSuchEntityException:
        raise MfcError(f"sfn_role {role}: no such IAM role", hint=ROLE_HINT) from None
    except Exception as exc:  # noqa: BLE001
        error = access_error(exc, config, "AWS IAM")
        if "AccessDenied" not in str(error):
            raise error from None  # a deployer may not be allowed to read IAM: then Step Functions checks the role
    return str(role)


def preflight(deployment: Deployment, config: Any) -> str:
    """Everything checked before anything is created: returns the role ARN."""
    from mfc.runner.batch_setup import check_image, check_queues
    from mfc.runner.policy import step_policies
    from mfc.runner.settings import BatchSettings

    role = check_role(config)
    policies = step_policies(deployment.flow_cls, list(deployment.graph.nodes))
    check_queues(config, BatchSettings.from_config(config).defaults, policies, list(deployment.graph.nodes))
    checked: set[str] = set()
    jobs = [(step, settings.job) for step, settings in deployment.settings.steps.items()]
    if deployment.settings.exit_hook_job is not None:
        jobs.append(("exit hooks", deployment.settings.exit_hook_job))
    for step, job in jobs:
        if job.image not in checked:
            check_image(job.image, config, step)
            checked.add(job.image)
    return role


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What differs between two definitions, a line a state (``+`` added, ``-`` removed, ``~``
    changed), plus the code package and the timeout."""
    if old is None:
        return [f"+ state machine with {len(_all_states(new))} states"]
    before, after = _all_states(old), _all_states(new)
    lines = [f"+ state {n}" for n in after if n not in before]
    lines += [f"- state {n}" for n in before if n not in after]
    for name in after:
        if name in before and json.dumps(before[name], sort_keys=True) != json.dumps(after[name], sort_keys=True):
            lines.append(f"~ state {name}: {', '.join(_differing(before[name], after[name]))}")
    if old.get("TimeoutSeconds") != new.get("TimeoutSeconds"):
        lines.append(f"~ workflow timeout: {old.get('TimeoutSeconds')} -> {new.get('TimeoutSeconds')}")
    return lines


def _differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = sorted(set(a) | set(b))
    out = [k for k in keys if json.dumps(a.get(k), sort_keys=True) != json.dumps(b.get(k), sort_keys=True)]
    if "Parameters" in out:
        pa, pb = a.get("Parameters") or {}, b.get("Parameters") or {}
        inner = [k for k in sorted(set(pa) | set(pb)) if json.dumps(pa.get(k), sort_keys=True) != json.dumps(pb.get(k), sort_keys=True)]
        if inner == ["ContainerOverrides"] and _command(pa) != _command(pb):
            return ["its code package" if _code(pa) != _code(pb) else "its command"]
        out = [f"Parameters.{k}" for k in inner] + [k for k in out if k != "Parameters"]
    return out or ["its text"]


def _command(parameters: dict[str, Any]) -> str:
    return str((parameters.get("ContainerOverrides") or {}).get("Command.$"))


def _code(parameters: dict[str, Any]) -> str:
    command = _command(parameters)
    return command.split("'--code', ", 1)[-1].split(",", 1)[0]


def _all_states(definition: dict[str, Any]) -> dict[str, Any]:
    """Every state of a definition by name, nested scopes included (without their nested states)."""
    found: dict[str, Any] = {}

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            shallow = {k: v for k, v in state.items() if k not in ("Branches", "ItemProcessor")}
            found[name] = shallow
            for branch in state.get("Branches") or []:
                walk(branch["States"])
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"]["States"])

    walk(definition.get("States") or {})
    return found


def upload_code(deployment: Deployment, config: Any) -> None:
    """Store the code package in the datastore (skipped when its address is there already)."""
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_configured_store

    ArtifactStore(open_configured_store(config), deployment.settings.flow_name).save_bytes(
        deployment.package.data, sha256=True)


def register_job_definitions(deployment: Deployment, config: Any) -> list[str]:
    """Register the job definitions that are not ACTIVE yet; returns the names registered."""
    from mfc.runner.batch_setup import quick_client

    batch = quick_client("batch", config)
    registered = []
    for body in deployment.job_definitions:
        name = body["jobDefinitionName"]
        if not batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE").get("jobDefinitions"):
            batch.register_job_definition(**body)
            registered.append(name)
    return registered


def create(deployment: Deployment, config: Any, dry_run: bool = False) -> CreateResult:
    """Deploy (see the module docstring); with ``dry_run`` only say what would change."""
    from mfc.runner.batch_setup import access_error

    settings = deployment.settings
    role = preflight(deployment, config)
    sfn = sfn_client(config)
    try:
        existing = find_state_machine(sfn, settings.state_machine_name)
    except Exception as exc:  # noqa: BLE001
        raise access_error(exc, config, "AWS Step Functions") from None
    old = json.loads(existing["definition"]) if existing else None
    diff = changes(old, deployment.definition)
    if existing and existing.get("roleArn") != role:
        diff.append(f"~ role: {existing.get('roleArn')} -> {role}")
    if dry_run:
        return CreateResult(existing["stateMachineArn"] if existing else "", existing is None, diff, True)
    try:
        upload_code(deployment, config)
        register_job_definitions(deployment, config)
        text = deployment.definition_json
        if existing is None:
            arn = sfn.create_state_machine(name=settings.state_machine_name, definition=text, roleArn=role,
                                           type="STANDARD", tags=[{"key": "mfc:flow", "value": settings.flow_name}],
                                           )["stateMachineArn"]
        else:
            arn = existing["stateMachineArn"]
            if diff:
                sfn.update_state_machine(stateMachineArn=arn, definition=text, roleArn=role)
    except MfcError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise access_error(exc, config, "AWS Step Functions") from None
    return CreateResult(arn, existing is None, diff)
