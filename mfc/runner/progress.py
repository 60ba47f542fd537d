"""What a run shows while it goes: task log lines prefixed with ``run/step/task``, and either
a live rich table (on a terminal) or plain status lines (in logs and CI). ``--quiet`` shows
only the result."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO


class Reporter:
    """Plain output: one line per task event, task logs prefixed."""

    def __init__(self, stream: TextIO | None = None, show_logs: bool = True) -> None:
        self.stream = stream or sys.stdout
        self.show_logs = show_logs
        self.started = time.monotonic()
        self.counts: dict[str, Counter] = {}
        self.finished = 0

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")

    def _count(self, step: str, what: str, delta: int = 1) -> None:
        self.counts.setdefault(step, Counter())[what] += delta

    def run_started(self, flow: str, run_id: str, graph_steps: list[str]) -> None:
        for step in graph_steps:
            self.counts.setdefault(step, Counter())
        self._write(f"Run {flow}/{run_id} started")

    def task_started(self, prefix: str, step: str, attempt: int) -> None:
        self._count(step, "running")
        retry = f" (retry {attempt})" if attempt else ""
        self._write(f"[{prefix}] Task is starting{retry}.")

    def task_finished(self, prefix: str, step: str, ok: bool, note: str = "") -> None:
        self._count(step, "running", -1)
        self._count(step, "done" if ok else "failed")
        self.finished += 1
        self._write(f"[{prefix}] Task finished successfully{note}." if ok else f"[{prefix}] Task failed{note}.")

    def task_retrying(self, prefix: str, step: str, note: str) -> None:
        self._count(step, "running", -1)
        self._count(step, "retried")
        self._write(f"[{prefix}] Task failed{note}.")

    def log(self, prefix: str, stream: str, line: str) -> None:
        if self.show_logs:
            self._write(f"[{prefix}] {line}")

    def message(self, text: str) -> None:
        self._write(text)

    def tick(self) -> None:
        """Called periodically; live displays refresh here."""

    def close(self) -> None:
        self.stream.flush()

    def rate(self) -> float:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return self.finished / elapsed


class QuietReporter(Reporter):
    """Nothing but what the caller prints at the end."""

    def _write(self, text: str) -> None:
        pass


class RichReporter(Reporter):
    """A live table of steps (done / running / failed) and tasks per second, on a terminal."""

    def __init__(self, stream: TextIO | None = None, show_logs: bool = True) -> None:
        super().__init__(stream, show_logs)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=self.stream)
        self.live = Live(self._render(), console=self.console, refresh_per_second=8, transient=False)
        self.live.start()
        self.title = ""

    def _render(self) -> Any:
        from rich.table import Table

        table = Table(title=getattr(self, "title", ""), expand=False, box=None, padding=(0, 2))
        for column in ("step", "done", "running", "failed"):
            table.add_column(column, justify="left" if column == "step" else "right")
        for step, counter in self.counts.items():
            failed = counter["failed"]
            table.add_row(step, str(counter["done"]), str(counter["running"]),
                          f"[red]{failed}[/red]" if failed else "0")
        elapsed = time.monotonic() - self.started
        table.caption = f"{self.finished} tasks in {elapsed:.1f}s ({self.rate():.1f} tasks/s)"
        return table

    def _write(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def run_started(self, flow: str, run_id: str, graph_steps: list[str]) -> None:
        self.title = f"{flow}/{run_id}"
        super().run_started(flow, run_id, graph_steps)

    def task_started(self, prefix: str, step: str, attempt: int) -> None:
        self._count(step, "running")

    def task_finished(self, prefix: str, step: str, ok: bool, note: str = "") -> None:
        self._count(step, "running", -1)
        self._count(step, "done" if ok else "failed")
        self.finished += 1
        if not ok:
            self._write(f"[{prefix}] Task failed{note}.")

    def tick(self) -> None:
        self.live.update(self._render())

    def close(self) -> None:
        self.live.update(self._render())
        self.live.stop()


def make_reporter(quiet: bool = False, stream: TextIO | None = None) -> Reporter:
    """A rich live display on a terminal, plain lines otherwise, nothing with quiet."""
    stream = stream or sys.stdout
    if quiet:
        return QuietReporter(stream, show_logs=False)
    if stream.isatty():
        return RichReporter(stream)
    return Reporter(stream)
