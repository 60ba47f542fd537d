"""Following a Step Functions run from a terminal (``mfc sfn trigger --wait``): the same progress
lines and task-prefixed logs as ``mfc run``, read from the datastore, where each state's task
records itself and writes its logs while it runs, until the execution ends.

Once it has ended, the output of the run's ``@exit_hook`` hooks follows, if they stored any.

Each poll lists the run's tasks and reads the new part of each running task's logs; the pause
between polls grows with the number of tasks being watched, so a wide foreach costs few requests
a second. The exit code is ``mfc run``'s: 0 when the execution succeeded, 1 when it failed, timed
out or was aborted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mfc.runner.logtail import LineSplitter
from mfc.runner.progress import Reporter
from mfc.sfn.executions import ENDED, describe
from mfc.stores.blob import BlobStore
from mfc.stores.records import TaskRecords

POLL = 0.5
POLL_PER_TASK = 0.02  # extra seconds between polls per task being watched
STREAMS = ("stdout", "stderr")
SEAL_WAIT = 10.0  # seconds a recorded attempt's logs may take to be sealed before it is reported anyway


@dataclass
class _Watched:
    offsets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STREAMS, 0))
    splitters: dict[str, LineSplitter] = field(default_factory=lambda: {s: LineSplitter() for s in STREAMS})
    finished: bool = False
    recorded_at: float | None = None


class Follower:
    """Reports one run's tasks as they appear, run and end (see the module docstring)."""

    def __init__(self, blobs: BlobStore, flow: str, run_id: str, reporter: Reporter) -> None:
        self.blobs = blobs
        self.records = TaskRecords(blobs, flow)
        self.run_id = run_id
        self.reporter = reporter
        self.watched: dict[tuple[str, str, int], _Watched] = {}

    def poll(self) -> int:
        """Report what happened since the last poll; returns how many attempts are still open."""
        open_attempts = 0
        for step in self.records.steps(self.run_id):
            for task_id in self.records.tasks(self.run_id, step):
                for attempt in self.records.attempts(self.run_id, step, task_id):
                    key = (step, task_id, attempt)
                    watched = self.watched.get(key)
                    if watched is None:
                        watched = self.watched[key] = _Watched()
                        self.reporter.task_started(self._prefix(step, task_id), step, attempt)
                    if watched.finished:
                        continue
                    self._read_logs(key, watched)
                    record = self.records.read(self.run_id, step, task_id, attempt)
                    if record is None or not self._sealed(key, watched):
                        open_attempts += 1
                        continue
                    self._read_logs(key, watched, final=True)
                    watched.finished = True
                    ok = record.get("status") in ("ok", "caught")
                    note = " (the exception was caught)" if record.get("status") == "caught" else ""
                    self.reporter.task_finished(self._prefix(step, task_id), step, ok, note)
        return open_attempts

    def _sealed(self, key: tuple[str, str, int], watched: _Watched) -> bool:
        """Whether the attempt's logs are stored for good (its state's task seals them after the
        record is written), or have waited long enough (a job killed before it could seal them)."""
        step, task_id, attempt = key
        logs = [self.records.log_key(self.run_id, step, task_id, attempt, s) for s in STREAMS]
        if len(self.blobs.exists_many(logs)) == len(logs):
            return True
        watched.recorded_at = watched.recorded_at or time.monotonic()
        return time.monotonic() - watched.recorded_at > SEAL_WAIT

    def _prefix(self, step: str, task_id: str) -> str:
        return f"{self.run_id}/{step}/{task_id}"

    def _read_logs(self, key: tuple[str, str, int], watched: _Watched, final: bool = False) -> None:
        step, task_id, attempt = key
        for stream in STREAMS:
            data = self.blobs.read_log(self.records.log_key(self.run_id, step, task_id, attempt, stream))
            new = data[watched.offsets[stream]:]
            watched.offsets[stream] = len(data)
            splitter = watched.splitters[stream]
            lines = splitter.feed(new) if new else []
            for line, _ in lines:
                self.reporter.log(self._prefix(step, task_id), stream, line.decode("utf-8", errors="replace"))
            if final:
                rest = splitter.flush()
                if rest:
                    self.reporter.log(self._prefix(step, task_id), stream, rest.decode("utf-8", errors="replace"))


def _report_hooks(blobs: BlobStore, flow: str, run_id: str, reporter: Reporter) -> None:
    """The output of the run's ``@exit_hook`` hooks (stored by :mod:`mfc.sfn.hooks`), if any."""
    from mfc.sfn.hooks import hook_log_key

    key = hook_log_key(flow, run_id)
    text = blobs.get_many([key]).get(key, b"").decode("utf-8", errors="replace")
    for line in text.splitlines():
        reporter.log(f"{run_id}/exit hooks", "stdout", line)


def follow(config: Any, blobs: BlobStore, flow: str, run_id: str, arn: str, reporter: Reporter,
           steps: list[str]) -> dict[str, Any]:
    """Report the run until its execution ends; returns the final ``describe_execution``."""
    follower = Follower(blobs, flow, run_id, reporter)
    reporter.run_started(flow, run_id, steps)
    while True:
        described = describe(config, arn)
        try:
            watching = follower.poll()
        except Exception:  # noqa: BLE001 - a record not readable yet (the run is being created): next poll
            watching = 0
        reporter.tick()
        if described.get("status") in ENDED:
            follower.poll()
            _report_hooks(blobs, flow, run_id, reporter)
            return described
        time.sleep(POLL + POLL_PER_TASK * watching)
