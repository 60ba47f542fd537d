"""``mfc run`` and ``mfc resume``, and ``mfc task`` (the task entrypoint executors call)."""

from __future__ import annotations

import sys
from typing import Any

import click

from mfc.cli.common import load_config, resolve_flow, setting_options, valid_id

# run takes the flow's parameters as extra options, so its --help is handled after the flow is
# loaded (to list those parameters).
run_context = {"ignore_unknown_options": True, "allow_extra_args": True}


def run_options(func: Any) -> Any:
    """Options shared by ``run`` and ``resume``: the settings (:func:`setting_options`) and the
    arguments of one invocation (``mfc.config.RUN_ARGUMENTS``)."""
    options = [
        click.option("--tag", "tags", multiple=True, help="Tag the run (repeatable)."),
        click.option("--run-id-file", type=click.Path(dir_okay=False), default=None, help="Write the run id to this file."),
        click.option("--with", "with_decorators", multiple=True, metavar="DECO[:k=v,...]",
                     help="Add a decorator to every step that lacks it, e.g. --with retry:times=2."),
        click.option("--environment", type=click.Choice(["local", "pypi", "conda"]), default=None,
                     help="Accepted as Metaflow takes it; mfc honours @pypi/@conda whatever its value "
                          "(docs/environments.md)."),
        setting_options,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _launch(ctx: click.Context, flow: str, values: dict[str, Any], resume: bool = False,
            resume_step: str | None = None, origin_run_id: str | None = None) -> None:
    """Run or resume ``flow``; ``values``: click's values of :func:`run_options`."""
    from mfc.decorators import decorator_from_spec
    from mfc.graph import load_graph
    from mfc.runner.launch import LaunchOptions, launch

    if flow in ("--help", "-h"):
        click.echo(ctx.get_help())
        return
    if "--help" in ctx.args or "-h" in ctx.args:
        _help_with_parameters(ctx, flow)
        return
    from mfc.tags import check_tags

    values = dict(values)
    tags, run_id_file, with_decorators = values.pop("tags"), values.pop("run_id_file"), values.pop("with_decorators")
    values.pop("environment", None)
    check_tags(tags)
    path, name, cls = resolve_flow(flow)
    graph = load_graph(path, name)
    from mfc.decorators import check_decorator_specs

    for problem in check_decorator_specs(graph):
        raise problem
    options = LaunchOptions(
        tags=list(tags), run_id_file=run_id_file, with_decorators=[decorator_from_spec(s) for s in with_decorators],
        resume=resume, resume_step=resume_step, origin_run_id=origin_run_id,
    )
    config = load_config(access="write", **values)
    assert cls is not None
    run_id = launch(path, cls, graph, list(ctx.args), config, options)
    click.echo(f"Run {cls.__name__}/{run_id} succeeded.")


def _help_with_parameters(ctx: click.Context, flow: str) -> None:
    click.echo(ctx.get_help())
    from mfc.cli.script_help import parameter_rows

    _, _, cls = resolve_flow(flow)
    rows = parameter_rows(cls) if cls is not None else []
    if rows:
        formatter = click.HelpFormatter()
        with formatter.section(f"Parameters of {cls.__name__ if cls else flow}"):
            formatter.write_dl(rows)
        click.echo("\n" + formatter.getvalue(), nl=False)


@click.command(context_settings=run_context, add_help_option=False)
@click.argument("flow")
@run_options
@click.pass_context
def run(ctx: click.Context, flow: str, **options: Any) -> None:
    """Run FLOW (flow.py or flow.py:ClassName); parameters follow as --name value."""
    _launch(ctx, flow, options)


class _ResumeCommand(click.Command):
    """``resume`` takes no flow parameters, so an unknown option is a usage error (never a step
    name); one that is a parameter of the flow says why resume does not take it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # the parser consumes ``args``
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            if given and _is_flow_parameter(given[0], exc.option_name):
                raise click.NoSuchOption(exc.option_name, f"no such option: {exc.option_name} (resume takes no "
                                         "parameters: it reruns with the origin run's)", ctx=exc.ctx) from None
            raise


def _is_flow_parameter(flow: str, option: str) -> bool:
    from mfc.exceptions import MfcError
    from mfc.graph import parse_flow

    try:
        path, name, _ = resolve_flow(flow, need_class=False)
        params = parse_flow(path, name).parameters
    except MfcError:
        return False
    return option.lstrip("-") in {o for p in params for o in (p.name, p.name.replace("_", "-"))}


@click.command(cls=_ResumeCommand)
@click.argument("flow")
@click.argument("step", required=False)
@click.option("--origin-run-id", default=None, callback=valid_id,
              help="The run to resume (default: the latest run of the flow).")
@run_options
@click.pass_context
def resume(ctx: click.Context, flow: str, step: str | None, origin_run_id: str | None, **options: Any) -> None:
    """Resume FLOW's latest (or --origin-run-id) run from its failed step, or from STEP.

    Successful tasks before that step are cloned without copying data; the step and everything
    after it rerun with the current code and the origin run's parameters."""
    _launch(ctx, flow, options, True, step, origin_run_id)


@click.command(name="task", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def task_command(args: tuple[str, ...]) -> None:
    """Run one task from a TaskSpec (used by executors)."""
    from mfc.runner.task import main as task_main

    sys.exit(task_main(list(args)))


