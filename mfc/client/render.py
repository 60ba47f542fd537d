"""HTML tables for Jupyter (``_repr_html_``) and the small formatting helpers they share with the CLI.

Every value that comes from the datastore is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mfc.client.data import DataArtifact
    from mfc.client.flow import Flow
    from mfc.client.run import Run
    from mfc.client.step import Step
    from mfc.client.task import Task

MAX_RUN_ROWS = 50
PREVIEW_CHARS = 1000
PREVIEW_MAX_STORED = 100 * 1024


def format_size(size: int) -> str:
    """``1536`` -> ``"1.5 KB"``."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def format_duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    seconds = ((end or datetime.now()) - start).total_seconds()
    text = f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"
    return text if end else f"{text} so far"


def task_status(task: Task) -> str:
    if not task.finished:
        return "running"
    return "ok" if task.successful else "failed"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th style='text-align:left'>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _title(text: str, detail: str = "") -> str:
    extra = f" <span>{escape(detail)}</span>" if detail else ""
    return f"<div><strong>{escape(text)}</strong>{extra}</div>"


def flow_html(flow: Flow) -> str:
    rows: list[tuple[Any, ...]] = []
    more = 0
    for run in flow.runs():
        if len(rows) >= MAX_RUN_ROWS:
            more += 1
            continue
        rows.append((run.id, run.status, format_time(run.created_at), format_duration(run.created_at, run.finished_at),
                     run.user or "", ", ".join(sorted(run.user_tags))))
    note = f"<div>{more} older runs not shown</div>" if more else ""
    return (_title(f"Flow {flow.id}", f"({flow.datastore_root})")
            + _table(["run", "status", "started", "duration", "user", "tags"], rows) + note)


def run_html(run: Run) -> str:
    rows = []
    for step in run:
        tasks = step.tasks()
        states = [task_status(t) for t in tasks]
        summary = ", ".join(f"{states.count(s)} {s}" for s in ("ok", "failed", "running") if states.count(s))
        start = min((t.created_at for t in tasks if t.created_at), default=None)
        end = None if "running" in states else max((t.finished_at for t in tasks if t.finished_at), default=None)
        rows.append((step.id, len(tasks), summary, format_time(start), format_duration(start, end)))
    detail = f"{run.status}, started {format_time(run.created_at)}, user {run.user}"
    tags = ", ".join(sorted(run.user_tags))
    params = ", ".join(f"{k}={v!r}" for k, v in (run._record.get("parameters") or {}).items())
    extra = "".join(f"<div>{escape(label)}: {escape(text)}</div>" for label, text in
                    (("tags", tags), ("parameters", params), ("error", run.error or "")) if text)
    return (_title(f"Run {run.pathspec}", detail) + extra
            + _table(["step", "tasks", "status", "started", "duration"], rows))


def step_html(step: Step) -> str:
    rows = []
    for task in step:
        index = task.index
        rows.append((task.id, "" if index is None else index, task.current_attempt, task_status(task),
                     format_time(task.created_at), format_duration(task.created_at, task.finished_at)))
    return _title(f"Step {step.pathspec}") + _table(["task", "foreach index", "attempt", "status", "started",
                                                     "duration"], rows)


def task_html(task: Task) -> str:
    status = task_status(task)
    detail = f"{status}, attempt {task.current_attempt}"
    exc = task.exception
    extra = f"<div>exception: {escape(str(exc))}</div>" if exc else ""
    rows = [(a.name, a.type, format_size(a.size), a.sha[:12]) for a in task.artifacts]
    return _title(f"Task {task.pathspec}", detail) + extra + _table(["artifact", "type", "size", "address"], rows)


def preview(artifact: DataArtifact, limit: int = PREVIEW_CHARS) -> str:
    """The value's repr when it is small, else ``<type, size>`` (large ones are never loaded)."""
    placeholder = f"<{artifact.type}, {format_size(artifact.size)}>"
    if artifact.size > PREVIEW_MAX_STORED:
        return placeholder
    from mfc.exceptions import CorruptArtifact

    try:
        text = repr(artifact.data)
    except CorruptArtifact:
        raise  # damage is an error, never a value shown
    except Exception as exc:  # noqa: BLE001 - a value whose class is gone or whose repr breaks
        return f"<{artifact.type}, {format_size(artifact.size)}: cannot load: {type(exc).__name__}: {exc}>"
    return text if len(text) <= limit else placeholder


def artifact_html(artifact: DataArtifact) -> str:
    rows = [(artifact.name, artifact.type, format_size(artifact.size), artifact.sha[:12])]
    value = f"<pre>{escape(preview(artifact))}</pre>"
    return _title(f"Artifact {artifact.pathspec}") + _table(["artifact", "type", "size", "address"], rows) + value
