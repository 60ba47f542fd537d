"""``mfc dump`` (print a task's artifacts) and ``mfc tag`` (edit a run's user tags), both over the
client API. Pathspecs name runs directly, so no namespace applies here."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from mfc.exceptions import CorruptArtifact, MfcError, MissingRecord

if TYPE_CHECKING:
    from mfc.client import Run, Task
    from mfc.client.data import DataArtifact

LARGE_STORED = 100 * 1024  # stored bytes above which a value is never loaded for display
LARGE_REPR = 1024  # repr characters above which a value is shown as <type, size>


def _datastore_option(func: Any) -> Any:
    from mfc.cli.common import datastore_option

    return datastore_option(func)


def _open_run(pathspec: str, datastore_root: str | None, max_parts: int = 4,
              access: str = "read") -> tuple[Run, list[str]]:
    from mfc.cli.common import load_config
    from mfc.client import Run
    from mfc.client.datastore import Datastore
    from mfc.pathspec import parse_pathspec

    parts = parse_pathspec(pathspec).parts
    if len(parts) > max_parts:
        raise MfcError(f"pathspec {pathspec!r}: tags belong to runs; use Flow/run_id")
    config = load_config(datastore_root, access=access)
    datastore = Datastore(config.datastore_root, config)
    return Run(f"{parts[0]}/{parts[1]}", False, _datastore=datastore), parts


def _tasks(run: Run, parts: list[str]) -> list[Task]:
    _check_steps(run, parts[2:3])
    if len(parts) == 2:
        return [task for step in run for task in step]
    step = run[parts[2]]
    return [step[parts[3]]] if len(parts) == 4 else step.tasks()


def _check_steps(run: Run, names: list[str]) -> None:
    """A succeeded run has tasks in every step of its graph: a step without any lost its records."""
    if run.status != "succeeded":
        return
    graph = run._record.get("graph") or {}
    for name in names or list(graph):
        if name in graph and name not in run:
            raise MissingRecord(f"step {name} of {run.pathspec} has no tasks (records missing or deleted)")


def _unrecorded(run: Run, task: Task) -> str:
    """What to say of a task without a record: running, or (in a succeeded run) its record is gone."""
    status = run.status
    if status == "running":
        return "running: no artifacts yet"
    if status == "succeeded":
        raise MissingRecord(f"task {task.pathspec} has no record (missing or deleted)")
    return f"no record: it had not finished when the run ended ({status})"


def _preview(artifact: DataArtifact, full: bool) -> str:
    from mfc.client.render import preview

    return repr(artifact.data) if full else preview(artifact, LARGE_REPR)


def _json_entry(artifact: DataArtifact) -> dict[str, Any]:
    from mfc.client.render import preview

    entry: dict[str, Any] = {"type": artifact.type, "size": artifact.size, "sha": artifact.sha}
    if artifact.size <= LARGE_STORED:
        try:
            value = artifact.data
            text = json.dumps(value, allow_nan=False)
            if len(text) <= LARGE_STORED:
                entry["value"] = value
                return entry
        except CorruptArtifact:
            raise
        except Exception:  # noqa: BLE001 - not JSON-able (or not loadable): show its repr instead
            pass
    entry["repr"] = preview(artifact, LARGE_REPR)
    return entry


def _state(run: Run, task: Task) -> str:
    if not task.finished:
        return _unrecorded(run, task).split(":", 1)[0]
    return "ok" if task.successful else "failed"


def _check_names(tasks: list[Task], names: tuple[str, ...], pathspec: str) -> None:
    for name in names:
        if any(name in task for task in tasks):
            continue
        if len(tasks) == 1:
            raise tasks[0]._missing(name)
        known = sorted({a.name for task in tasks for a in task.artifacts})
        raise MfcError(f"no task of {pathspec} has artifact {name!r} (artifacts: {', '.join(known) or 'none'})")


@click.command()
@click.argument("pathspec")
@click.option("--artifact", "names", multiple=True, metavar="NAME", help="Only this artifact (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@_datastore_option
def dump(pathspec: str, names: tuple[str, ...], as_json: bool, datastore_root: str | None) -> None:
    """Print the artifacts of a task, or of every task of a step or run: Flow/run[/step[/task]].

    Small values are printed (their repr); large ones as <type, size>. With one task and one
    --artifact, the whole value is printed.
    """
    run, parts = _open_run(pathspec, datastore_root)
    tasks = _tasks(run, parts)
    _check_names(tasks, names, pathspec)
    if as_json:
        out = []
        for task in tasks:
            chosen = [a for a in task.artifacts if not names or a.name in names]
            exc = task.exception
            out.append({"pathspec": task.pathspec, "status": _state(run, task), "exception": str(exc) if exc else None,
                        "artifacts": {a.name: _json_entry(a) for a in chosen}})
        click.echo(json.dumps(out, indent=2, default=str))
        return
    if len(tasks) == 1 and len(names) == 1:
        click.echo(_preview(tasks[0][names[0]], full=True))
        return
    for task in tasks:
        if len(tasks) > 1:
            click.echo(f"== {task.pathspec} ==")
        if not task.finished:
            click.echo(f"  ({_unrecorded(run, task)})")
            continue
        if not task.successful:
            click.echo(f"  (failed: {task.exception})")
            continue
        chosen = [a for a in task.artifacts if not names or a.name in names]
        for artifact in chosen:
            click.echo(f"  {artifact.name} = {_preview(artifact, full=False)}" if len(tasks) > 1
                       else f"{artifact.name} = {_preview(artifact, full=False)}")


@click.group()
def tag() -> None:
    """Add, remove or list the user tags of a run (Flow/run_id)."""


def _print_tags(run: Run) -> None:
    click.echo(f"{run.pathspec} tags: {', '.join(sorted(run.user_tags)) or '(none)'}")


@tag.command(name="add")
@click.argument("pathspec")
@click.argument("tags", nargs=-1, required=True)
@_datastore_option
def tag_add(pathspec: str, tags: tuple[str, ...], datastore_root: str | None) -> None:
    """Add TAGS to the run PATHSPEC."""
    run, _ = _open_run(pathspec, datastore_root, max_parts=2, access="write")
    run.add_tags(tags)
    _print_tags(run)


@tag.command(name="remove")
@click.argument("pathspec")
@click.argument("tags", nargs=-1, required=True)
@_datastore_option
def tag_remove(pathspec: str, tags: tuple[str, ...], datastore_root: str | None) -> None:
    """Remove TAGS from the run PATHSPEC."""
    run, _ = _open_run(pathspec, datastore_root, max_parts=2, access="write")
    absent = sorted(set(tags) - run.user_tags - run.system_tags)
    run.remove_tags(tags)
    for name in absent:
        click.echo(f"note: {run.pathspec} was not tagged {name!r}", err=True)
    _print_tags(run)


@tag.command(name="list")
@click.argument("pathspec")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@_datastore_option
def tag_list(pathspec: str, as_json: bool, datastore_root: str | None) -> None:
    """List the user and system tags of the run PATHSPEC."""
    run, _ = _open_run(pathspec, datastore_root, max_parts=2)
    if as_json:
        click.echo(json.dumps({"user_tags": sorted(run.user_tags), "system_tags": sorted(run.system_tags)}))
        return
    click.echo(f"user tags:   {', '.join(sorted(run.user_tags)) or '(none)'}")
    click.echo(f"system tags: {', '.join(sorted(run.system_tags))}")
