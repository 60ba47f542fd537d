"""The help a flow file gives when run as a script (``python flow.py`` or ``python flow.py --help``):
usage as ``flow.py``, the flow's docstring, the commands that act on the flow and its parameters,
as Metaflow's own ``python flow.py --help`` does."""

from __future__ import annotations

import inspect

import click

# The mfc commands that take the flow implicitly when the file is run as a script, as the script
# describes them.
FLOW_COMMANDS = {
    "run": "Run the flow; its parameters follow as --name value.",
    "resume": "Resume the latest (or --origin-run-id) run from its failed step, or from STEP.",
    "show": "Show the steps, their docstrings and transitions.",
    "check": "Check the graph: every problem with its file and line.",
    "runs": "List the flow's runs, newest first.",
    "logs": "Print the logs of a run, a step or a task: RUN_ID[/STEP[/TASK_ID]].",
    "dump": "Print the artifacts of a run, a step or a task: RUN_ID[/STEP[/TASK_ID]].",
    "tag": "Add, remove or list the user tags of a run: tag add RUN_ID TAG...",
    "card": "Show, save or list a task's @card cards: card view|get|list RUN/STEP[/TASK] (or STEP).",
    "package": "Snapshot the flow's project into the datastore.",
    "lock": "Resolve the flow's dependencies into a lock file.",
}

_TOP_OPTIONS = [
    ("--with DECO[:k=v,...]", "Add a decorator to every step (passed on to run and resume)."),
    ("--tag TAG", "Tag the run (passed on to run and resume)."),
    ("--datastore [local|s3]", "Kind of datastore (passed on to the command)."),
    ("--datastore-root DIR|S3URL", "Datastore root (passed on to the command)."),
    ("--quiet", "Print only the result (passed on to run and resume)."),
    ("--debug", "Show tracebacks for errors."),
    ("--version", "Show the version and exit."),
    ("-h, --help", "Show this message and exit."),
]


def parameter_rows(flow_cls: type) -> list[tuple[str, str]]:
    """(``--name TYPE``, help with default and [required]) for each parameter of the flow."""
    from mfc.parameters import flow_parameters

    rows = []
    for param in flow_parameters(flow_cls).values():
        default = f" (default: {param.default!r})" if param.show_default and param.default is not None else ""
        required = " [required]" if param.required else ""
        rows.append((f"--{param.name} {param.type_name.upper()}", f"{param.help}{default}{required}".strip()))
    return rows


def flow_help(flow_cls: type, prog: str) -> str:
    """The script's help text (``prog`` is the file's name)."""
    formatter = click.HelpFormatter()
    formatter.write_usage(prog, "[OPTIONS] COMMAND [ARGS]...")
    from mfc.flowspec import FlowSpec

    doc = inspect.getdoc(flow_cls)
    if not doc or doc == inspect.getdoc(FlowSpec):  # getdoc inherits FlowSpec's when the flow has none
        doc = f"The {flow_cls.__name__} flow: run it, resume it, and read what its runs left behind."
    formatter.write_paragraph()
    with formatter.indentation():
        formatter.write_text(doc)
    with formatter.section("Options"):
        formatter.write_dl(_TOP_OPTIONS)
    with formatter.section("Commands"):
        formatter.write_dl(list(FLOW_COMMANDS.items()))
    rows = parameter_rows(flow_cls)
    with formatter.section(f"Parameters (of run: {prog} run --NAME VALUE)"):
        formatter.write_dl(rows or [("(none)", "this flow takes no parameters")])
    formatter.write_paragraph()
    formatter.write_text(f"Run '{prog} COMMAND --help' for a command's options.")
    return formatter.getvalue()
