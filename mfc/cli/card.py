"""``mfc card view|get|list PATHSPEC``: the ``@card`` cards of a task.

PATHSPEC is ``Flow/run/step/task``, or ``Flow/run/step`` for a step with one task; run as a
script command (``python flow.py card view ...``) the flow is implied: ``RUN/STEP[/TASK]``, or
just ``STEP`` for the flow's latest run.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from mfc.cli import common
from mfc.exceptions import MfcError

if TYPE_CHECKING:
    from mfc.cards.client import Card
    from mfc.client import Task

def _full_pathspec(pathspec: str, datastore: Any) -> str:
    flow_cls = common.SCRIPT_FLOW
    if flow_cls is None:
        return pathspec
    flow = flow_cls.__name__
    parts = pathspec.split("/")
    if parts[0] == flow and len(parts) >= 3:
        return pathspec
    if len(parts) == 1:
        from mfc.client import Flow
        from mfc.pathspec import check_step

        check_step(parts[0])
        run = Flow(flow, _datastore=datastore).latest_run
        if run is None:
            raise MfcError(f"flow {flow} has no runs in {datastore.root}", hint="run it first, or name RUN/STEP")
        return f"{flow}/{run.id}/{parts[0]}"
    return f"{flow}/{pathspec}"


def _open_task(pathspec: str, datastore_root: str | None) -> Task:
    from mfc.client import Step, Task
    from mfc.client.datastore import Datastore
    from mfc.pathspec import parse_pathspec

    config = common.load_config(datastore_root, access="read")
    datastore = Datastore(config.datastore_root, config)
    full = _full_pathspec(pathspec, datastore)
    parts = parse_pathspec(full, min_parts=3, max_parts=4).parts
    if len(parts) == 4:
        return Task("/".join(parts), False, _datastore=datastore)
    tasks = Step("/".join(parts), False, _datastore=datastore).tasks()
    if len(tasks) != 1:
        ids = ", ".join(t.id for t in tasks[:10]) + (", ..." if len(tasks) > 10 else "")
        raise MfcError(f"step {full} has {len(tasks)} tasks ({ids}); name one: {full}/TASK_ID")
    return tasks[0]


def _one_card(task: Task, card_id: str | None, card_type: str | None) -> Card:
    from mfc.cards.client import task_cards

    every = task_cards(task)
    if not every:
        raise MfcError(f"task {task.pathspec} has no cards", hint="only a step with @card that succeeded has one")
    found = task_cards(task, card_id, card_type)
    listed = ", ".join(f"{c.id} ({c.type})" for c in every)
    if not found:
        asked = " and ".join(f"{k} {v!r}" for k, v in (("id", card_id), ("type", card_type)) if v)
        raise MfcError(f"task {task.pathspec} has no card with {asked} (cards: {listed})")
    if len(found) > 1:
        raise MfcError(f"task {task.pathspec} has {len(found)} cards: {listed}; choose one with --id")
    return found[0]


def _has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _card_options(func: Any) -> Any:
    func = click.option("--type", "card_type", default=None, metavar="TYPE", help="The card of this type.")(func)
    func = click.option("--id", "card_id", default=None, metavar="ID", help="The card with this id.")(func)
    return common.datastore_option(func)


@click.group("card")
def card_group() -> None:
    """Show, save or list the @card cards of a task."""


@card_group.command("view")
@click.argument("pathspec", metavar="PATHSPEC")
@_card_options
def view(pathspec: str, card_id: str | None, card_type: str | None, datastore_root: str | None) -> None:
    """Open a task's card in a web browser (PATHSPEC: Flow/run/step[/task]; as a script
    command RUN/STEP[/TASK], or STEP for the latest run).

    The card is written to a temporary .html file; with a display (DISPLAY or WAYLAND_DISPLAY
    set, or macOS/Windows) it is opened with the default browser, and its path is printed
    either way."""
    card = _one_card(_open_task(pathspec, datastore_root), card_id, card_type)
    path = card.write_temp()
    if _has_display():
        import webbrowser

        webbrowser.open("file://" + os.path.abspath(path))
    click.echo(path)


@card_group.command("get")
@click.argument("pathspec", metavar="PATHSPEC")
@click.argument("file", required=False, type=click.Path(dir_okay=False, writable=True))
@_card_options
def get(pathspec: str, file: str | None, card_id: str | None, card_type: str | None, datastore_root: str | None) -> None:
    """Write a task's card (its HTML) to FILE, or to standard output."""
    card = _one_card(_open_task(pathspec, datastore_root), card_id, card_type)
    if file is None:
        click.echo(card.html, nl=False)
        return
    with open(file, "w", encoding="utf-8") as fh:
        fh.write(card.html)


@card_group.command("list")
@click.argument("pathspec", metavar="PATHSPEC")
@common.datastore_option
def list_cards(pathspec: str, datastore_root: str | None) -> None:
    """List a task's cards: id, type and where each is stored."""
    from mfc.cards.client import task_cards

    task = _open_task(pathspec, datastore_root)
    cards = task_cards(task)
    if not cards:
        click.echo(f"task {task.pathspec} has no cards")
        return
    for card in cards:
        click.echo(f"{card.id}\t{card.type}\t{card.path}")

