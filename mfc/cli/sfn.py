"""``mfc sfn``: compile a flow to a Step Functions state machine, lint, deploy, trigger, follow,
list, stop, delete and resume its runs."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from mfc.cli.common import datastore_option, load_config, resolve_flow, valid_id


def deploy_options(func: Any) -> Any:
    """Options of compile, lint and create: settings (``mfc config show`` lists them) and the
    deployment's own choices."""
    options = [
        click.option("--image", default=None, help="Image for the steps (default: the flow image, built and pushed)."),
        click.option("--gpu-image", default=None, help="Image for GPU steps (default: --image, else the flow's GPU image)."),
        click.option("--queue", default=None, help="AWS Batch job queue for every step (default: batch_queue / batch_gpu_queue)."),
        click.option("--cpu", type=click.FloatRange(min=0, min_open=True), default=None, help="vCPUs for each job (at least)."),
        click.option("--memory", type=click.IntRange(min=4), default=None, help="MiB of memory for each job (at least)."),
        click.option("--gpu", type=click.IntRange(min=0), default=None, help="GPUs for each job."),
        click.option("--max-workers", type=click.IntRange(min=1), default=None, help="MaxConcurrency of each foreach Map (default 16)."),
        click.option("--max-num-splits", type=click.IntRange(min=1), default=None,
                     help="Largest foreach (default 100): decides each Map's mode and is enforced."),
        click.option("--map-mode", "map_modes", multiple=True, metavar="[STEP=]MODE",
                     help="auto, inline or distributed, for every foreach or STEP (repeatable)."),
        click.option("--workflow-timeout", type=click.IntRange(min=1), default=None, help="Seconds an execution may run."),
        click.option("--tag", "tags", multiple=True, help="Tag every run of the state machine (repeatable)."),
        click.option("--name", default=None, help="State machine name (default: the flow's, with @project's names)."),
        datastore_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _prepare(flow: str, values: dict[str, Any], build: bool) -> Any:
    from mfc.decorators import check_decorator_specs
    from mfc.graph import load_graph
    from mfc.sfn.build import DeployOptions
    from mfc.sfn.deploy import prepare
    from mfc.tags import check_tags

    values = dict(values)
    options = DeployOptions(map_modes=list(values.pop("map_modes")), tags=list(values.pop("tags")),
                            workflow_timeout=values.pop("workflow_timeout"), name=values.pop("name"))
    check_tags(options.tags)
    path, name, cls = resolve_flow(flow)
    graph = load_graph(path, name)
    for problem in check_decorator_specs(graph):
        raise problem
    config = load_config(**values)
    assert cls is not None
    from mfc.events.triggers import flow_triggers

    flow_triggers(cls, str(config["user"] or ""))  # a bad mapping is refused before any image is built
    return prepare(path, cls, graph, config, options, build=build), config


def _machine(flow: str, datastore_root: str | None = None, name: str | None = None) -> tuple[Any, type, Any, dict]:
    """(config, flow class, graph, deployed state machine) of a deployed flow."""
    from mfc.decorators import project_info
    from mfc.graph import load_graph
    from mfc.sfn.deploy import deployed
    from mfc.sfn.settings import state_machine_name

    path, flow_name, cls = resolve_flow(flow)
    assert cls is not None
    graph = load_graph(path, flow_name)
    config = load_config(datastore_root)
    project = project_info(cls, str(config["user"] or ""))
    machine_name = name or state_machine_name(cls.__name__, project["project_name"] if project else None,
                                              project["branch_name"] if project else None)
    return config, cls, graph, deployed(config, machine_name, cls.__name__)


@click.group("sfn")
def sfn() -> None:
    """Run a flow in production on AWS Step Functions (each step an AWS Batch job)."""


@sfn.command("compile")
@click.argument("flow")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the definition here (default: standard output).")
@deploy_options
def compile_command(flow: str, output: str | None, **values: Any) -> None:
    """Print the state machine definition of FLOW. Needs no AWS credentials and no network."""
    deployment, _ = _prepare(flow, values, build=False)
    text = deployment.definition_json
    if output:
        with open(output, "w") as fh:
            fh.write(text)
        click.echo(f"wrote {output} ({len(text.encode())} bytes, {len(deployment.definition['States'])} top-level states)",
                   err=True)
    else:
        click.echo(text, nl=False)


@sfn.command("lint")
@click.argument("flow")
@click.option("--json", "as_json", is_flag=True, help="Findings as JSON.")
@deploy_options
def lint_command(flow: str, as_json: bool, **values: Any) -> None:
    """Check FLOW's state machine against Step Functions' and Batch's limits."""
    from mfc.sfn.lint import format_findings, lint

    deployment, _ = _prepare(flow, values, build=False)
    findings = lint(deployment.graph, deployment.settings, deployment.definition, deployment.modes)
    if as_json:
        click.echo(json.dumps([f.__dict__ for f in findings], indent=2))
    else:
        click.echo(format_findings(findings))
    if any(f.level == "error" for f in findings):
        sys.exit(1)


@sfn.command("create")
@click.argument("flow")
@click.option("--dry-run", is_flag=True, help="Only say what would change.")
@deploy_options
def create_command(flow: str, dry_run: bool, **values: Any) -> None:
    """Deploy FLOW: build and push its image if needed, upload its code, create or update its state machine."""
    from mfc.events.trigger_deploy import apply_triggers, plan_triggers, trigger_lines
    from mfc.exceptions import MfcError
    from mfc.sfn.deploy import create
    from mfc.sfn.lint import format_findings, lint

    deployment, config = _prepare(flow, values, build=not dry_run)
    triggers, defaults = plan_triggers(deployment.flow_cls, config)
    findings = lint(deployment.graph, deployment.settings, deployment.definition, deployment.modes)
    errors = [f for f in findings if f.level == "error"]
    if errors:
        click.echo(format_findings(errors), err=True)
        raise MfcError(f"{deployment.settings.flow_name} does not pass `mfc sfn lint` ({len(errors)} error"
                       f"{'s' if len(errors) > 1 else ''}); nothing was deployed")
    from mfc.events.deploy import events_role, flow_schedule

    scheduled = flow_schedule(deployment.flow_cls)  # a bad @schedule, or no role for it: nothing is deployed
    if scheduled and not dry_run:
        events_role(config)
    result = create(deployment, config, dry_run=dry_run)
    name = deployment.settings.state_machine_name
    if dry_run:
        click.echo(f"{name}: {'would be created' if result.created else 'deployed at ' + result.arn}")
    else:
        click.echo(f"State machine {name} {'created' if result.created else 'updated' if result.changes else 'unchanged'}: "
                   f"{result.arn}")
    for line in result.changes or (["no changes"] if not result.created else []):
        click.echo(f"  {line}")
    applied = trigger_lines(triggers, name) if dry_run else apply_triggers(config, result.arn, name, triggers, defaults)
    for line in applied:
        click.echo(f"  {'would put ' if dry_run else ''}{line}")
    applied_schedule = _apply_schedule(deployment, config, result.arn, name, scheduled, dry_run) if scheduled else None
    if not dry_run:
        from mfc.sfn.registry import record_deployment

        record_deployment(config, deployment.settings.flow_name, name, result.arn, triggers, defaults,
                          applied_schedule, {"code_package": deployment.code, "flow_file": deployment.flow_file})


def _apply_schedule(deployment: Any, config: Any, arn: str, name: str, scheduled: tuple[str, str | None],
                    dry_run: bool) -> Any:
    from mfc.cli.schedule import describe
    from mfc.events.deploy import apply_flow_schedule

    if dry_run:
        click.echo(f"  schedule: would run on {scheduled[0]}" + (f" in {scheduled[1]}" if scheduled[1] else " (UTC)"))
        return None
    applied = apply_flow_schedule(config, deployment.flow_cls, deployment.graph, arn, name)
    if applied is not None:
        click.echo(f"  schedule: {describe(applied)}")
    return applied


@sfn.command("trigger", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("flow")
@click.option("--wait", is_flag=True, help="Follow the run here until it ends (exit code as mfc run's).")
@click.option("-q", "--quiet", is_flag=True, help="With --wait: print only the result.")
@click.option("--run-id-file", type=click.Path(dir_okay=False), default=None, help="Write the run id to this file.")
@click.option("--name", default=None, help="The deployed state machine's name, when not the flow's.")
@click.pass_context
def trigger_command(ctx: click.Context, flow: str, wait: bool, quiet: bool, run_id_file: str | None,
                    name: str | None) -> None:
    """Start a run of the deployed FLOW; its parameters follow as --name value."""
    from mfc.runner.launch import check_run_id_file, write_run_id_file
    from mfc.sfn.executions import execution_input, start

    check_run_id_file(run_id_file)
    config, cls, graph, machine = _machine(flow, name=name)
    text = execution_input(cls, list(ctx.args), str(config["user"] or ""))
    arn, run_id = start(config, machine["stateMachineArn"], text)
    if run_id_file:
        write_run_id_file(run_id_file, run_id)
    if not quiet:
        click.echo(f"Run {cls.__name__}/{run_id} started: execution {arn}")
    if wait:
        _wait(config, cls.__name__, run_id, arn, graph, quiet)


def _wait(config: Any, flow_name: str, run_id: str, arn: str, graph: Any, quiet: bool = False) -> None:
    from mfc.exceptions import RunFailed
    from mfc.runner.progress import make_reporter
    from mfc.sfn.follow import follow
    from mfc.stores.blob import open_configured_store

    reporter = make_reporter(quiet)
    try:
        described = follow(config, open_configured_store(config), flow_name, run_id, arn, reporter, list(graph.nodes))
    except KeyboardInterrupt:
        from mfc.exceptions import Interrupted

        # Only the following stops: the run is Step Functions', not this terminal's.
        raise Interrupted(f"stopped following {flow_name}/{run_id}; it goes on running in Step Functions "
                          f"(mfc sfn terminate FLOW {run_id} stops it)") from None
    finally:
        reporter.close()
    status = described["status"]
    if status == "SUCCEEDED":
        click.echo(f"Run {flow_name}/{run_id} succeeded.")
        return
    why = " ".join(str(described.get(k) or "") for k in ("error", "cause")).strip()
    raise RunFailed(f"run {flow_name}/{run_id}: execution {status.lower().replace('_', ' ')}" + (f": {why[:500]}" if why else ""))


@sfn.command("runs")
@click.argument("flow")
@click.option("--limit", type=click.IntRange(min=1), default=20, help="Most recent executions to list.")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.option("--name", default=None, help="The deployed state machine's name, when not the flow's.")
def runs_command(flow: str, limit: int, as_json: bool, name: str | None) -> None:
    """List the runs (executions) of the deployed FLOW, newest first."""
    from mfc.sfn.executions import list_executions, run_id_for

    config, cls, _, machine = _machine(flow, name=name)
    rows = []
    for execution in list_executions(config, machine["stateMachineArn"], limit):
        start, stop = execution.get("startDate"), execution.get("stopDate")
        duration = (stop - start).total_seconds() if start and stop else None
        rows.append({"run_id": run_id_for(execution["name"]), "status": execution["status"],
                     "started": start.isoformat(timespec="seconds") if start else None,
                     "duration": round(duration, 1) if duration is not None else None,
                     "execution": execution["executionArn"]})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no runs of {cls.__name__} on Step Functions yet (mfc sfn trigger FLOW)")
    for row in rows:
        took = f"{row['duration']:.1f}s" if row["duration"] is not None else "-"
        click.echo(f"{row['run_id']:<40} {row['status']:<10} {row['started'] or '-':<26} {took}")


@sfn.command("status")
@click.argument("flow")
@click.argument("run_id", required=False, callback=valid_id)
@click.option("--name", default=None, help="The deployed state machine's name, when not the flow's.")
def status_command(flow: str, run_id: str | None, name: str | None) -> None:
    """The deployed state machine of FLOW, or one of its runs."""
    from mfc.sfn.executions import describe, execution_arn

    config, cls, _, machine = _machine(flow, name=name)
    if run_id is None:
        definition = json.loads(machine["definition"])
        click.echo(f"{machine['name']}: {machine['stateMachineArn']}")
        click.echo(f"  created {machine['creationDate']:%Y-%m-%d %H:%M:%S}, {len(definition['States'])} top-level states, "
                   f"role {machine['roleArn']}")
        return
    described = describe(config, execution_arn(machine["stateMachineArn"], run_id))
    click.echo(f"{cls.__name__}/{run_id}: {described['status']}")
    for key in ("startDate", "stopDate", "error", "cause"):
        if described.get(key):
            click.echo(f"  {key}: {str(described[key])[:500]}")


@sfn.command("terminate")
@click.argument("flow")
@click.argument("run_id", callback=valid_id)
@click.option("--name", default=None, help="The deployed state machine's name, when not the flow's.")
def terminate_command(flow: str, run_id: str, name: str | None) -> None:
    """Stop a run of the deployed FLOW and its Batch jobs."""
    from mfc.sfn.executions import describe, execution_arn, terminate

    config, cls, _, machine = _machine(flow, name=name)
    arn = execution_arn(machine["stateMachineArn"], run_id)
    described = describe(config, arn)
    if described["status"] != "RUNNING":
        click.echo(f"{cls.__name__}/{run_id} has ended already: {described['status']}")
        return
    definition = json.loads(machine["definition"])
    queues = sorted({q for q in _queues(definition)})
    jobs = terminate(config, arn, run_id, queues)
    from mfc.stores.blob import open_configured_store
    from mfc.stores.metadata import BlobMetadata

    BlobMetadata(open_configured_store(config)).finish_run(cls.__name__, run_id, "failed",
                                                          {"error": f"terminated by mfc sfn terminate ({len(jobs)} Batch jobs stopped)"})
    click.echo(f"Run {cls.__name__}/{run_id} terminated ({len(jobs)} Batch jobs stopped).")


def _queues(definition: dict[str, Any]) -> list[str]:
    from mfc.sfn.deploy import _all_states

    return [s["Parameters"]["JobQueue"] for s in _all_states(definition).values()
            if isinstance(s.get("Parameters"), dict) and "JobQueue" in s["Parameters"]]


@sfn.command("delete")
@click.argument("flow")
@click.option("--name", default=None, help="The deployed state machine's name, when not the flow's.")
def delete_command(flow: str, name: str | None) -> None:
    """Delete the deployed state machine of FLOW, its schedule and its trigger rules (its runs stay
    in the datastore)."""
    config, cls, _, machine = _machine(flow, name=name)
    from mfc.events.deploy import delete_schedule
    from mfc.events.trigger_deploy import delete_triggers
    from mfc.exceptions import MfcError, warn
    from mfc.sfn.deploy import sfn_client

    try:  # first: a schedule should not outlive its target; but one who cannot reach EventBridge may delete
        for what in delete_schedule(config, machine["name"]):
            click.echo(f"Deleted {what}.")
    except MfcError as exc:
        warn(f"the schedule of {machine['name']} (if any) was not deleted: {exc}")
    for rule in delete_triggers(config, machine["stateMachineArn"], machine["name"]):
        click.echo(f"Deleted trigger rule {rule}.")
    sfn_client(config).delete_state_machine(stateMachineArn=machine["stateMachineArn"])
    click.echo(f"Deleted state machine {machine['name']} ({machine['stateMachineArn']}).")
    from mfc.sfn.registry import forget_deployment

    forget_deployment(config, machine["name"])


@sfn.command("resume")
@click.argument("flow")
@click.argument("run_id", callback=valid_id)
@click.argument("step", required=False)
@click.option("--wait", is_flag=True, help="Follow the new run here until it ends.")
@click.option("-q", "--quiet", is_flag=True, help="With --wait: print only the result.")
@click.option("--name", default=None, help="The deployed state machine's name, when not the flow's.")
def resume_command(flow: str, run_id: str, step: str | None, wait: bool, quiet: bool, name: str | None) -> None:
    """Start a new run of the deployed FLOW that clones RUN's successful tasks and reruns from its
    failed step (or STEP)."""
    from mfc.exceptions import MfcError
    from mfc.runner.resume import plan_resume
    from mfc.sfn.executions import execution_input, start
    from mfc.stores.blob import open_configured_store
    from mfc.stores.provider import open_metadata

    config, cls, graph, machine = _machine(flow, name=name)
    if step is not None and step not in graph:
        raise MfcError(f"resume step {step!r}: no such step (steps: {', '.join(graph.nodes)})")
    # with the execution asked: an origin that timed out or was aborted reads failed (and is
    # recorded so, so the new execution's start state, which does not ask, reads it failed too)
    metadata = open_metadata(open_configured_store(config), config)
    plan = plan_resume(graph, metadata, metadata.records(cls.__name__), cls.__name__, run_id, step)  # checks it here
    text = execution_input(cls, [], str(config["user"] or ""), resume={"origin_run_id": run_id, "step": plan.resume_step})
    arn, new_run = start(config, machine["stateMachineArn"], text)
    click.echo(f"Run {cls.__name__}/{new_run} started, resuming {run_id} from step {plan.resume_step}: execution {arn}")
    if wait:
        _wait(config, cls.__name__, new_run, arn, graph, quiet)
