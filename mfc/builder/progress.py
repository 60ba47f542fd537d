"""Following a ``docker build``: its steps, cache hits, output and failure, shown as they happen.

:class:`BuildLog` reads the engine's JSON stream (classic builder: ``{"stream": "Step 3/8 : RUN ..."}``,
``{"aux": {"ID": ...}}``, ``{"error": ...}``) into events; a reporter shows them: a rich live line on a
terminal, plain lines otherwise, nothing when quiet. A failed build becomes one :class:`MfcError`
naming the failing step and the tail of its output.
"""

from __future__ import annotations

import re
import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from mfc.exceptions import MfcError

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
TAIL_LINES = 20
MAX_INSTRUCTION = 120


def shorten(text: str, limit: int = MAX_INSTRUCTION) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Step:
    """One Dockerfile instruction as the engine runs it."""

    number: int
    total: int
    instruction: str
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    cached: bool = False
    output: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def label(self) -> str:
        # The LABEL step lists every input of the image: its start is enough.
        limit = 60 if self.instruction.startswith("LABEL ") else MAX_INSTRUCTION
        return f"[{self.number}/{self.total}] {shorten(self.instruction, limit)}"


class Reporter:
    """Plain lines on ``stream``: each step when it starts running (or is found in the cache), its
    output indented, and its time when it took more than a second."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def begin(self, title: str) -> None:
        self.write(title)

    def step_shown(self, step: Step) -> None:
        self.write(f"  {step.label}{' (cached)' if step.cached else ''}")

    def output(self, step: Step | None, line: str) -> None:
        self.write(f"      {line}")

    def step_done(self, step: Step) -> None:
        if not step.cached and step.elapsed >= 1:
            self.write(f"      done in {step.elapsed:.1f}s")

    def tick(self) -> None:
        """Called for every chunk of the stream (a live display redraws here)."""

    def stop(self) -> None:
        """The stream has ended (or failed): stop any live display. Idempotent."""


class QuietReporter(Reporter):
    """Shows nothing."""

    def write(self, text: str) -> None:
        pass


class RichReporter(Reporter):
    """A spinner with the running step, its elapsed time and last output line; finished steps above it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=self.stream)
        self.current: Step | None = None
        self.last_line = ""
        self.started = time.monotonic()
        self.live = Live(self, console=self.console, refresh_per_second=8, transient=True)

    def __rich__(self) -> Any:
        from rich.spinner import Spinner
        from rich.text import Text

        if self.current is None:
            return Spinner("dots", Text(f"starting the build ({time.monotonic() - self.started:.1f}s)"))
        text = Text(f"{self.current.label}  {self.current.elapsed:.1f}s")
        if self.last_line:
            text.append(f"\n    {shorten(self.last_line, 100)}", style="dim")
        return Spinner("dots", text)

    def write(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def begin(self, title: str) -> None:
        self.write(title)
        self.live.start()

    def step_shown(self, step: Step) -> None:
        self.current, self.last_line = step, ""

    def output(self, step: Step | None, line: str) -> None:
        self.last_line = line

    def step_done(self, step: Step) -> None:
        note = "cached" if step.cached else f"{step.elapsed:.1f}s"
        self.console.print(f"  [green]✓[/green] {step.label} [dim]({note})[/dim]", highlight=False)

    def stop(self) -> None:
        if self.live.is_started:
            self.live.stop()


def make_reporter(quiet: bool = False, stream: TextIO | None = None) -> Reporter:
    """Nothing when ``quiet``, a rich live display on a terminal, plain lines otherwise (stderr)."""
    stream = stream or sys.stderr
    if quiet:
        return QuietReporter(stream)
    if stream.isatty():
        return RichReporter(stream)
    return Reporter(stream)


class BuildLog:
    """The state of one build, fed chunk by chunk from the engine's decoded JSON stream."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.steps: list[Step] = []
        self.image_id: str | None = None
        self.error: str | None = None
        self._pending = ""
        self._shown = False
        self.preamble: deque[str] = deque(maxlen=TAIL_LINES)

    @property
    def current(self) -> Step | None:
        return self.steps[-1] if self.steps else None

    def feed(self, chunk: dict[str, Any]) -> None:
        """Take one decoded chunk of the build stream."""
        if "stream" in chunk:
            self._pending += str(chunk["stream"])
            *lines, self._pending = self._pending.split("\n")
            for line in lines:
                self._line(_ANSI.sub("", line).rstrip("\r"))
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            self.image_id = str(aux["ID"])
        if chunk.get("error") or chunk.get("errorDetail"):
            detail = chunk.get("errorDetail") or {}
            self.error = str(chunk.get("error") or detail.get("message") or "unknown error").strip()
        self.reporter.tick()

    def _show(self) -> None:
        step = self.current
        if step is not None and not self._shown:
            self._shown = True
            self.reporter.step_shown(step)

    def _line(self, line: str) -> None:
        match = _STEP.match(line)
        step = self.current
        if match:
            self._finish_step()
            self.steps.append(Step(int(match.group(1)), int(match.group(2)), match.group(3)))
            self._shown = False
            return
        stripped = line.strip()
        if stripped == "---> Using cache" and step is not None:
            step.cached = True
            self._show()
        elif stripped.startswith("---> Running in "):
            self._show()
        elif stripped.startswith("---> ") or stripped.startswith("Removing intermediate container"):
            pass
        elif stripped.startswith("Successfully built "):
            self._finish_step()
            self.image_id = self.image_id or stripped.split()[-1]
        elif stripped.startswith("Successfully tagged "):
            pass
        elif stripped:
            if step is None:
                self.preamble.append(line)
                return
            self._show()
            step.output.append(line)
            self.reporter.output(step, line)

    def flush(self) -> None:
        """Handle a last line that came without its newline."""
        if self._pending:
            line, self._pending = self._pending, ""
            self._line(_ANSI.sub("", line))

    def _finish_step(self) -> None:
        step = self.current
        if step is not None and step.finished is None:
            step.finished = time.monotonic()
            self._show()
            self.reporter.step_done(step)

    def failure(self, what: str) -> MfcError:
        """The error for a failed build: the failing step, the engine's message and the output's tail."""
        step = self.current
        message = self.error or "the build stream ended without a result"
        if step is None:
            tail = list(self.preamble)
            where = "before its first step"
        else:
            tail = list(step.output)
            where = f"at step {step.number}/{step.total} `{shorten(step.instruction)}`"
        text = f"{what} failed {where}: {shorten(message, 300)}"
        if tail:
            text += "\n  last output of that step:\n" + "\n".join(f"    {line}" for line in tail)
        return MfcError(text)


def follow_build(chunks: Iterable[dict[str, Any]], reporter: Reporter, what: str) -> BuildLog:
    """Consume a build stream, reporting as it goes; raises :meth:`BuildLog.failure` on error."""
    log = BuildLog(reporter)
    try:
        for chunk in chunks:
            log.feed(chunk)
            if log.error:
                break
        log.flush()
        if not log.error:
            log._finish_step()
    finally:
        reporter.stop()
    if log.error:
        raise log.failure(what)
    return log
