"""The ``mfc`` command group and its entry point (also reached by running a flow file:
``python flow.py run``).

Errors are caught once, here: a user mistake (click's usage errors too) prints one line and exits
2, a failed run exits 1, Ctrl-C exits 130, SIGTERM 143; ``--debug``, before or after the
subcommand, shows the traceback.
"""

from __future__ import annotations

import os
import sys

import click

from mfc.cli import common
from mfc.exceptions import MfcError, RunFailed, Terminated


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="mfc", prog_name="mfc")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """mfc: run Metaflow-style flows locally, in containers, on AWS Batch and Step Functions."""
    ctx.obj = {"debug": debug}




def _register() -> None:
    from mfc.cli.card import card_group
    from mfc.cli.cleanup import cleanup
    from mfc.cli.client import dump, tag
    from mfc.cli.config import config_group
    from mfc.cli.deploy import configure_cmd, deploy_group, doctor_cmd
    from mfc.cli.event import event
    from mfc.cli.graph import check, show
    from mfc.cli.image import image, lock
    from mfc.cli.inspect import logs, runs
    from mfc.cli.package import package_group
    from mfc.cli.run import resume, run, task_command
    from mfc.cli.sandbox import sandbox
    from mfc.cli.schedule import schedule_command
    from mfc.cli.service import service
    from mfc.cli.sfn import sfn
    from mfc.cli.verify import verify

    for command in (run, resume, show, check, logs, runs, package_group, dump, tag, cleanup, sandbox, image, lock,
                    task_command, config_group, verify, sfn, schedule_command, event, card_group, service,
                    deploy_group, configure_cmd, doctor_cmd):
        cli.add_command(command)


_register()


def _hoist_debug(args: list[str]) -> tuple[list[str], bool]:
    """``--debug`` anywhere before a ``--`` (``mfc run flow.py --debug``) moves to the front, where
    the group takes it; no flow parameter may be named ``debug`` (see graph_check)."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args, False
    return ["--debug", *[a for a in args[:end] if a != "--debug"], *args[end:]], True


def _usage_line(exc: click.ClickException) -> str:
    """A click error as one line: "no such option: --delay (see 'mfc resume --help')"."""
    if isinstance(exc, click.NoSuchOption) and not exc.message.startswith("no such option"):
        message = f"no such option: {exc.option_name}"
        guesses = sorted(set(exc.possibilities or ()) - {"--help"})  # difflib's guess for anything short
        if guesses:
            message += f" (did you mean {' or '.join(guesses)}?)"
    else:
        message = " ".join(exc.format_message().split()).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


def main(args: list[str] | None = None, prog_name: str = "mfc") -> None:
    """Entry point of the ``mfc`` command (``prog_name`` is the flow file's name in script mode)."""
    args, debug = _hoist_debug(list(args if args is not None else sys.argv[1:]))
    try:
        cli.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        if debug:
            raise
        click.echo(f"error: {_usage_line(exc)}", err=True)
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
    except KeyboardInterrupt as exc:
        click.echo("interrupted" + (" by SIGTERM" if isinstance(exc, Terminated) else ""), err=True)
        sys.exit(Terminated.exit_code if isinstance(exc, Terminated) else 130)
    sys.exit(0)


# Metaflow's top-level options (``python flow.py --quiet --with retry run``): the ones with a
# meaning here move after the command, the rest (pylint, local datastore/metadata) are no-ops.
_IGNORED_TOP_OPTIONS = {"--no-pylint", "--pylint"}
_IGNORED_TOP_VALUES = {"--metadata", "--event-logger", "--monitor"}
_MOVED_TOP_VALUES = {"--with", "--datastore", "--datastore-root", "--tag", "--environment"}


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
    common.SCRIPT_FLOW = flow_cls
    try:
        global_opts, moved, rest = _split_top_options(sys.argv[1:])
    except MfcError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    file = sys.argv[0]
    prog = os.path.basename(file)
    wants_help = [o for o in global_opts if o in ("--help", "-h")]
    if not rest and "--version" not in global_opts:
        from mfc.cli.script_help import flow_help

        click.echo(flow_help(flow_cls, prog), nl=False)
        sys.exit(0)
    if wants_help and rest:  # `python flow.py --help run` is `python flow.py run --help`
        global_opts = [o for o in global_opts if o not in wants_help]
        rest = [*rest, "--help"]
    if not rest:
        main(global_opts, prog)
        return
    command, rest = rest[0], rest[1:]
    argv = [*global_opts, command, *rest, *_accepted_by(command, moved)]
    position = len(global_opts)
    if command == "card":  # its pathspec takes the flow from common.SCRIPT_FLOW
        main(argv, prog)
        return
    if command in ("logs", "dump", "tag"):
        at = position + 2 if command == "tag" else position + 1
        if at < len(argv) and not argv[at].startswith("-") and not argv[at].startswith(flow_cls.__name__ + "/"):
            argv[at] = f"{flow_cls.__name__}/{argv[at]}"
        main(argv, prog)
        return
    main([*argv[: position + 1], file, *argv[position + 1:]], prog)
