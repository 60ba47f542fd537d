"""Commands that read what runs left behind: ``mfc logs`` and ``mfc runs``."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from mfc.exceptions import MfcError
from mfc.pathspec import check_flow, parse_pathspec
from mfc.stores.provider import read_runs

if TYPE_CHECKING:
    from mfc.config import Config
    from mfc.stores.provider import MetadataProvider
    from mfc.stores.records import TaskRecords
from mfc.stores.runstatus import STATUSES


def _datastore_option(func: Any) -> Any:
    from mfc.cli.common import datastore_option

    return datastore_option(func)


def _stores(datastore_root: str | None, flow: str) -> tuple[Config, MetadataProvider, TaskRecords]:
    from mfc.cli.common import load_config
    from mfc.stores.blob import open_configured_store
    from mfc.stores.provider import open_metadata

    config = load_config(datastore_root, access="read")
    metadata = open_metadata(open_configured_store(config), config)
    return config, metadata, metadata.records(flow)


def flow_name_of(flow: str) -> str:
    """A flow name from ``flow.py``, ``flow.py:Name`` or a plain name."""
    from mfc.flowload import split_flow_ref

    path, name = split_flow_ref(flow)
    if name:
        return check_flow(name)
    if path.endswith(".py") or os.path.isfile(path):
        from mfc.graph import parse_flow

        return parse_flow(path).name
    return check_flow(flow)


@click.command()
@click.argument("pathspec")
@click.option("--stdout/--stderr", "stdout_only", default=None, help="Only one stream (default: both).")
@click.option("--attempt", type=click.IntRange(min=0), default=None, help="Attempt number, from 0 (default: the latest).")
@_datastore_option
def logs(pathspec: str, stdout_only: bool | None, attempt: int | None, datastore_root: str | None) -> None:
    """Print the logs of a task, a step or a whole run: Flow/run[/step[/task]]."""
    parts = parse_pathspec(pathspec).parts
    flow, run_id = parts[0], parts[1]
    _, metadata, records = _stores(datastore_root, flow)
    if metadata.run(flow, run_id) is None:
        raise MfcError(f"no run {flow}/{run_id} in {records.blobs.root}")
    steps = [parts[2]] if len(parts) > 2 else [s for s in records.steps(run_id) if not s.startswith("_")]
    streams = ("stdout",) if stdout_only else ("stderr",) if stdout_only is False else ("stdout", "stderr")
    whole = len(parts) < 4
    found = False
    seen_attempts: set[int] = set()  # with --attempt N: tasks without attempt N are skipped
    for step in steps:
        task_ids = [parts[3]] if len(parts) > 3 else records.tasks(run_id, step)
        if not task_ids and len(parts) > 2:
            raise MfcError(f"no step {step!r} in run {flow}/{run_id}")
        for task_id in task_ids:
            attempts = records.attempts(run_id, step, task_id)
            if not attempts:
                raise MfcError(f"no task {flow}/{run_id}/{step}/{task_id}")
            seen_attempts.update(attempts)
            chosen = attempts[-1] if attempt is None else attempt
            if chosen not in attempts:
                continue
            found = True
            for stream in streams:
                text = records.read_log(run_id, step, task_id, chosen, stream).decode("utf-8", "replace")
                out = sys.stdout if stream == "stdout" else sys.stderr
                for line in text.splitlines():
                    out.write(f"[{run_id}/{step}/{task_id}] {line}\n" if whole else line + "\n")
    if not found and seen_attempts:
        where = "/".join(parts)
        what = f"task {where} has no attempt" if len(parts) > 3 else f"no task of {where} has attempt"
        raise MfcError(f"{what} {attempt} (attempts: {', '.join(map(str, sorted(seen_attempts)))})")
    if not found:
        raise MfcError(f"run {flow}/{run_id} has no tasks yet")


def _duration(run: dict[str, Any]) -> str:
    end = run.get("finished_at") or time.time()
    seconds = end - run["created_at"]
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


@click.command()
@click.argument("flow")
@click.option("--status", type=click.Choice(list(STATUSES)), default=None,
              help="Only runs with this status (crashed: no final status, and its driving process is gone).")
@click.option("--tag", "tags", multiple=True, help="Only runs with this tag (repeatable: all must match).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@_datastore_option
def runs(flow: str, status: str | None, tags: tuple[str, ...], limit: int, as_json: bool, datastore_root: str | None) -> None:
    """List the runs of FLOW (flow.py or a flow name), newest first."""
    name = flow_name_of(flow)
    _, metadata, _ = _stores(datastore_root, name)
    rows = []
    for _, run in read_runs(metadata, name):
        all_tags = set(run.get("tags", [])) | set(run.get("system_tags", []))
        if (status and run["status"] != status) or not set(tags) <= all_tags:
            continue
        rows.append(run)
        if len(rows) >= limit:
            break
    if as_json:
        click.echo(json.dumps([
            {**{k: r.get(k) for k in ("flow", "run_id", "status", "created_at", "finished_at", "user", "tags",
                                       "parameters")}, "error": r.get("result", {}).get("error")}
            for r in rows], indent=2))
        return
    if not rows:
        click.echo(f"no runs of {name}" + (" match" if status or tags else "") + ".")
        return
    header = f"{'run id':16} {'status':12} {'started':20} {'duration':>9}  {'user':10} tags"
    click.echo(header)
    for run in rows:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["created_at"]))
        click.echo(f"{run['run_id']:16} {run['status']:12} {started:20} {_duration(run):>9}  "
                   f"{run.get('user', ''):10} {', '.join(run.get('tags', []))}")
