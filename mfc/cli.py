"""The ``mfc`` command line (also reached by running a flow file: ``python flow.py run``).

Errors are caught once, here: a user mistake prints one line and exits 2, a failed run exits 1,
Ctrl-C exits 130; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from mfc.cli_common import datastore_option, load_config
from mfc.exceptions import MfcError, RunFailed

_SCRIPT_FLOW: type | None = None  # set when a flow file is run as a script

# run/resume take the flow's parameters as extra options, so their --help is handled after the
# flow is loaded (to list those parameters).
run_context = {"ignore_unknown_options": True, "allow_extra_args": True}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="mfc", prog_name="mfc")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """mfc: run Metaflow-style flows locally, in containers, on AWS Batch and Step Functions."""
    ctx.obj = {"debug": debug}


def resolve_flow(ref: str, need_class: bool = True) -> tuple[str, str | None, type | None]:
    """(flow file, flow name, flow class) for ``flow.py`` or ``flow.py:Name``."""
    from mfc.flowload import split_flow_ref

    path, name = split_flow_ref(ref)
    if _SCRIPT_FLOW is not None and os.path.abspath(path) == os.path.abspath(sys.argv[0]):
        return path, _SCRIPT_FLOW.__name__, _SCRIPT_FLOW
    if not need_class:
        return path, name, None
    from mfc.flowload import flow_class, import_flow_file

    module = import_flow_file(path)
    cls = flow_class(module, name, path)
    return path, cls.__name__, cls


def run_options(func: Any) -> Any:
    """Options shared by ``run`` and ``resume``."""
    options = [
        click.option("--tag", "tags", multiple=True, help="Tag the run (repeatable)."),
        click.option("--max-workers", type=click.IntRange(min=1), default=None, help="Tasks running at once (default 16)."),
        click.option("--max-num-splits", type=click.IntRange(min=1), default=None, help="Largest foreach allowed (default 100)."),
        click.option("--run-id-file", type=click.Path(dir_okay=False), default=None, help="Write the run id to this file."),
        click.option("--with", "with_decorators", multiple=True, metavar="DECO[:k=v,...]",
                     help="Add a decorator to every step that lacks it, e.g. --with retry:times=2."),
        click.option("-q", "--quiet", is_flag=True, help="Print only the result."),
        click.option("--local-docker", "local_docker", is_flag=False, flag_value="*", default=None, metavar="[STEP,...]",
                     help="Run every step (or the listed steps) in the flow's container image on the local Docker engine."),
        click.option("--batch", "batch", is_flag=False, flag_value="*", default=None, metavar="[STEP,...]",
                     help="Run every step (or the listed steps) as AWS Batch jobs (needs an S3 datastore; @batch steps do on one)."),
        click.option("--queue", default=None, help="AWS Batch job queue (default: batch_queue; batch_gpu_queue for GPU steps)."),
        click.option("--cpu", type=click.FloatRange(min=0, min_open=True), default=None, help="vCPUs for each Batch job (at least)."),
        click.option("--memory", type=click.IntRange(min=4), default=None, help="MiB of memory for each Batch job (at least)."),
        click.option("--gpu-image", default=None, help="Image for GPU steps on Batch (default: --image, else the flow's GPU image)."),
        click.option("--gpu", type=click.IntRange(min=0), default=0, help="GPUs for each containerised or Batch task."),
        click.option("--image", default=None, help="Image for containerised steps (default: the flow image, built when missing)."),
        datastore_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _launch(ctx: click.Context, flow: str, resume: bool, resume_step: str | None, origin_run_id: str | None,
            tags: tuple[str, ...], max_workers: int | None, max_num_splits: int | None, run_id_file: str | None,
            with_decorators: tuple[str, ...], quiet: bool, datastore_root: str | None,
            local_docker: str | None, gpu: int, image: str | None, batch: str | None, queue: str | None,
            cpu: float | None, memory: int | None, gpu_image: str | None) -> None:
    from mfc.decorators import decorator_from_spec
    from mfc.graph import load_graph
    from mfc.runner.launch import LaunchOptions, launch

    if flow in ("--help", "-h"):
        click.echo(ctx.get_help())
        return
    if "--help" in ctx.args or "-h" in ctx.args:
        _help_with_parameters(ctx, flow)
        return
    path, name, cls = resolve_flow(flow)
    graph = load_graph(path, name)
    from mfc.decorators import check_decorator_specs

    for problem in check_decorator_specs(graph):
        raise problem
    options = LaunchOptions(
        tags=list(tags), quiet=quiet, run_id_file=run_id_file, max_workers=max_workers,
        max_num_splits=max_num_splits, with_decorators=[decorator_from_spec(s) for s in with_decorators],
        resume=resume, resume_step=resume_step, origin_run_id=origin_run_id,
        local_docker=local_docker, gpu=gpu, image=image, batch=batch, queue=queue, cpu=cpu, memory=memory,
        gpu_image=gpu_image,
    )
    config = load_config(datastore_root)
    assert cls is not None
    run_id = launch(path, cls, graph, list(ctx.args), config, options)
    click.echo(f"Run {cls.__name__}/{run_id} succeeded.")


def _help_with_parameters(ctx: click.Context, flow: str) -> None:
    click.echo(ctx.get_help())
    from mfc.parameters import flow_parameters

    _, _, cls = resolve_flow(flow)
    params = flow_parameters(cls) if cls is not None else {}
    if params:
        click.echo("\nParameters of " + (cls.__name__ if cls else flow) + ":")
        for param in params.values():
            default = f" (default: {param.default!r})" if param.show_default and param.default is not None else ""
            required = " [required]" if param.required else ""
            click.echo(f"  --{param.name} {param.type_name.upper():8} {param.help}{default}{required}")


@cli.command(context_settings=run_context, add_help_option=False)
@click.argument("flow")
@run_options
@click.pass_context
def run(ctx: click.Context, flow: str, **options: Any) -> None:
    """Run FLOW (flow.py or flow.py:ClassName); parameters follow as --name value."""
    _launch(ctx, flow, False, None, None, **options)


@cli.command(context_settings=run_context, add_help_option=False)
@click.argument("flow")
@click.argument("step", required=False)
@click.option("--origin-run-id", default=None, help="The run to resume (default: the latest run of the flow).")
@run_options
@click.pass_context
def resume(ctx: click.Context, flow: str, step: str | None, origin_run_id: str | None, **options: Any) -> None:
    """Resume FLOW's latest (or --origin-run-id) run from its failed step, or from STEP.

    Successful tasks before that step are cloned without copying data; the step and everything
    after it rerun with the current code and the origin run's parameters."""
    _launch(ctx, flow, True, step, origin_run_id, **options)


def _problems(graph: Any) -> list:
    from mfc.decorators import check_decorator_specs
    from mfc.graph import validate

    return validate(graph) + check_decorator_specs(graph)


@cli.command()
@click.argument("flow")
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "mermaid"]), default="text", show_default=True)
def show(flow: str, fmt: str) -> None:
    """Show FLOW's steps, their docstrings and transitions (without running it)."""
    from mfc import graph_render
    from mfc.graph import parse_flow

    path, name, _ = resolve_flow(flow, need_class=False)
    graph = parse_flow(path, name)
    render = {"text": graph_render.render_text, "dot": graph_render.render_dot, "mermaid": graph_render.render_mermaid}[fmt]
    click.echo(render(graph))
    problems = _problems(graph)
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)


@cli.command()
@click.argument("flow")
def check(flow: str) -> None:
    """Check FLOW's graph: every problem with its file and line."""
    from mfc.graph import parse_flow

    path, name, _ = resolve_flow(flow, need_class=False)
    graph = parse_flow(path, name)
    problems = _problems(graph)
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(2)
    click.echo(f"{graph.name}: {len(graph.nodes)} steps, graph is valid.")


from mfc.cli_cleanup import cleanup  # noqa: E402
from mfc.cli_client import dump, tag  # noqa: E402
from mfc.cli_image import image, lock  # noqa: E402
from mfc.cli_inspect import logs, runs  # noqa: E402
from mfc.cli_package import package_group  # noqa: E402
from mfc.cli_sandbox import sandbox  # noqa: E402

for _command in (logs, runs, package_group, dump, tag, cleanup, sandbox, image, lock):
    cli.add_command(_command)


@cli.command(name="task", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def task_command(args: tuple[str, ...]) -> None:
    """Run one task from a TaskSpec (used by executors)."""
    from mfc.runner.task import main as task_main

    sys.exit(task_main(list(args)))


@cli.group(name="config")
def config_group() -> None:
    """Show the resolved configuration."""


@config_group.command(name="show")
@datastore_option
def config_show(datastore_root: str | None) -> None:
    """Print every setting, its value and where it came from."""
    from mfc.config import SETTINGS, config_path

    config = load_config(datastore_root)
    click.echo(f"config file: {config_path()}  profile: {os.environ.get('MFC_PROFILE') or 'default'}")
    for key in SETTINGS:
        click.echo(f"{key:16} {config[key]!s:40} {config.sources[key]}")


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``mfc`` command."""
    debug = "--debug" in (args if args is not None else sys.argv[1:])
    try:
        cli.main(args=args, prog_name="mfc", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except RunFailed as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except MfcError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)


# Metaflow's top-level options (``python flow.py --quiet --with retry run``): the ones with a
# meaning here move after the command, the rest (pylint, local datastore/metadata) are no-ops.
_IGNORED_TOP_OPTIONS = {"--no-pylint", "--pylint"}
_IGNORED_TOP_VALUES = {"--metadata", "--environment", "--event-logger", "--monitor"}
_MOVED_TOP_VALUES = {"--with", "--datastore", "--datastore-root", "--tag"}


def _split_top_options(argv: list[str]) -> tuple[list[str], list[list[str]], list[str]]:
    """(global options, options to pass to the command (each with its value), the rest from the
    command on)."""
    global_opts: list[str] = []
    moved: list[list[str]] = []
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, value = argv[i].partition("=")
        takes_value = name in _IGNORED_TOP_VALUES or name in _MOVED_TOP_VALUES
        if takes_value and not eq:
            if i + 1 >= len(argv):
                raise MfcError(f"{name} needs a value")
            value = argv[i + 1]
            i += 1
        if name in _MOVED_TOP_VALUES:
            moved.append([name, value])
        elif name == "--quiet":
            moved.append(["--quiet"])
        elif name in ("--debug", "--help", "-h", "--version"):
            global_opts.append(name)
        elif name not in _IGNORED_TOP_OPTIONS and name not in _IGNORED_TOP_VALUES:
            raise MfcError(f"unknown option {name} before the command (put options after it: python flow.py run {name} ...)")
        i += 1
    return global_opts, moved, argv[i:]


def _accepted_by(command: str, moved: list[list[str]]) -> list[str]:
    """The moved top-level options that ``command`` takes; the others (``--datastore`` before
    ``show``, say) mean nothing to it and are dropped, as Metaflow ignores them there."""
    target = cli.commands.get(command)
    if target is None or isinstance(target, click.Group):
        return [part for option in moved for part in option]
    names = {name for param in target.params for name in (*param.opts, *param.secondary_opts)}
    return [part for option in moved if option[0] in names for part in option]


def run_flow_script(flow_cls: type) -> None:
    """``python flow.py COMMAND ...``: run mfc's command line on this flow."""
    global _SCRIPT_FLOW
    _SCRIPT_FLOW = flow_cls
    try:
        global_opts, moved, rest = _split_top_options(sys.argv[1:])
    except MfcError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    file = sys.argv[0]
    if not rest:
        main(global_opts or ["--help"])
        return
    command, rest = rest[0], rest[1:]
    argv = [*global_opts, command, *rest, *_accepted_by(command, moved)]
    position = len(global_opts)
    if command in ("logs", "dump", "tag"):
        at = position + 2 if command == "tag" else position + 1
        if at < len(argv) and not argv[at].startswith("-") and not argv[at].startswith(flow_cls.__name__ + "/"):
            argv[at] = f"{flow_cls.__name__}/{argv[at]}"
        main(argv)
        return
    main([*argv[: position + 1], file, *argv[position + 1:]])
