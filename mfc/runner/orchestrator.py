"""The orchestrator: schedules a run's DAG on executors, the same for every executor.

It launches ready tasks up to ``max_workers``, follows their logs, enforces ``@timeout``,
retries failed tasks after ``@retry``'s delay, runs ``@catch`` fallbacks for killed tasks,
fails fast (stopping running tasks and naming the failed one), and turns Ctrl-C (and SIGTERM,
which the launcher raises as :class:`~mfc.exceptions.Terminated`) into a clean stop of every task.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from mfc.exceptions import Interrupted, RunFailed, Terminated
from mfc.graph import FlowGraph
from mfc.runner.dag import DagTracker, TaskRequest
from mfc.runner.executor import Executor, Handle, TaskEvent, TaskExit, TaskStarted, queue_times
from mfc.runner.logtail import LogTailer
from mfc.runner.policy import StepPolicy
from mfc.runner.progress import Reporter
from mfc.runner.settle import Death, Settled, Settler, exit_reason
from mfc.runner.taskspec import InputRef, TaskSpec
from mfc.stores import staging
from mfc.stores.blob import BlobStore
from mfc.stores.logs import LogSink
from mfc.stores.service_metadata import task_records
from mfc.stores.taskrecord import Ending, TaskRecord

STOP_GRACE_SECONDS = 2.0


@dataclass
class RunInfo:
    """What every task of the run shares."""

    flow_name: str
    run_id: str
    flow_file: str
    datastore_root: str
    username: str
    tags: list[str] = field(default_factory=list)
    origin_run_id: str | None = None
    code_package: dict[str, str] | None = None


@dataclass(order=True)
class _Pending:
    not_before: float
    seq: int
    request: TaskRequest = field(compare=False)
    task_id: str = field(compare=False)
    attempt: int = field(compare=False, default=0)
    fallback: str | None = field(compare=False, default=None)
    fallback_ending: Ending | None = field(compare=False, default=None)


@dataclass
class _Running:
    pending: _Pending
    handle: Handle
    executor: Executor
    deadline: float | None  # monotonic; set when the task starts (its queue time does not count)
    submitted_at: float = 0.0  # wall clock
    started_at: float | None = None  # wall clock, when its executor saw it start
    timed_out: bool = False


@dataclass
class _Settling:
    """An exited task whose record is being read off the scheduling thread."""

    running: _Running
    exit: TaskExit
    settled: Settled | None = None


class Orchestrator:
    """Runs one run's tasks to completion or to the first failure."""

    def __init__(self, graph: FlowGraph, info: RunInfo, blobs: BlobStore, executors: dict[str, Executor],
                 choose_executor: Callable[[str], str], policies: dict[str, StepPolicy], reporter: Reporter,
                 max_workers: int = 16, max_num_splits: int = 100) -> None:
        self.graph = graph
        self.info = info
        self.records = task_records(blobs, info.flow_name)
        self.blobs = blobs
        self.executors = executors
        self.choose_executor = choose_executor
        self.policies = policies
        self.reporter = reporter
        self.max_workers = max(1, max_workers)
        self.max_num_splits = max_num_splits
        self.dag = DagTracker(graph)
        self.events: queue.Queue[TaskEvent | Settled] = queue.Queue()
        for executor in executors.values():
            executor.events = cast("queue.Queue[TaskEvent]", self.events)  # executors only put TaskEvents
        self.ready: deque[_Pending] = deque()
        self.delayed: list[_Pending] = []
        self.running: dict[str, _Running] = {}
        self.settling: dict[str, _Settling] = {}  # in the order the tasks exited
        self.settler = Settler(graph, self.records, self.events)
        self.tailer = LogTailer(self.reporter.log)
        self.logs = blobs.log_writer()
        staging.sweep(blobs.staging_dir())  # what killed tasks and runs left on this root
        self.failure: str | None = None
        self.stopping = False
        self.interrupted = False
        self._seq = itertools.count()

    # -- scheduling -----------------------------------------------------------------------------
    def enqueue(self, request: TaskRequest, attempt: int = 0, delay: float = 0.0,
                fallback: str | None = None, fallback_ending: Ending | None = None) -> None:
        """Queue an attempt of the request's task (its id comes from its step and foreach indices)."""
        pending = _Pending(time.monotonic() + delay, next(self._seq), request, request.task_id, attempt,
                           fallback, fallback_ending)
        if delay > 0:
            heapq.heappush(self.delayed, pending)
        else:
            self.ready.append(pending)

    def seed_finished(self, step: str, ref: InputRef, record: dict[str, Any], skip: set[str]) -> None:
        """Count a task as already done (a resume's clone); launch what it makes ready, except
        steps in ``skip`` (those are cloned too)."""
        for request in self.dag.task_done(step, ref, record):
            if request.step not in skip:
                self.enqueue(request)

    def run(self, first: list[TaskRequest]) -> None:
        """Run until every task is done; raises RunFailed or Interrupted."""
        self.reporter.run_started(self.info.flow_name, self.info.run_id, list(self.graph.nodes))
        for request in first:
            self.enqueue(request)
        try:
            self._loop()
        except KeyboardInterrupt as exc:
            terminated = isinstance(exc, Terminated)
            self.failure = f"interrupted by {'SIGTERM' if terminated else 'Ctrl-C'}; every task was stopped"
            self.interrupted = True
            self._stop_all()
            raise Interrupted(f"run {self.info.flow_name}/{self.info.run_id} {self.failure}",
                              Terminated.exit_code if terminated else Interrupted.exit_code) from None
        finally:
            try:
                self.settler.close()  # every record and final pointer is written before the run's status
            finally:
                try:
                    self._save_logs(self.tailer.close())  # raw logs of tasks that never reported their end go too
                    self.logs.close()  # every stored log is sealed before the run's status is written
                finally:
                    self.reporter.close()
        if self.failure:
            raise RunFailed(self.failure)

    def _loop(self) -> None:
        while self.ready or self.running or self.delayed or self.settling:
            now = time.monotonic()
            while self.delayed and self.delayed[0].not_before <= now:
                self.ready.append(heapq.heappop(self.delayed))
            if self.failure is not None:
                self.ready.clear()
                self.delayed.clear()
                if not self.running and not self.settling:
                    return
            while self.ready and len(self.running) < self.max_workers:
                self._submit(self.ready.popleft())
            if not self.running and not self.ready and not self.settling:
                if self.delayed:
                    time.sleep(min(0.05, max(0.0, self.delayed[0].not_before - time.monotonic())))
                continue
            try:
                event: TaskEvent | Settled | None = self.events.get(timeout=0.05)
            except queue.Empty:
                event = None
            while event is not None:
                self._handle(event)
                try:
                    event = self.events.get_nowait()
                except queue.Empty:
                    event = None
            self.tailer.poll()
            self._check_timeouts()
            self.reporter.tick()

    def _prefix(self, spec: TaskSpec) -> str:
        return f"{spec.run_id}/{spec.step}/{spec.task_id}"

    def _submit(self, pending: _Pending) -> None:
        request = pending.request
        policy = self.policies[request.step]
        spec = TaskSpec(
            flow_file=self.info.flow_file, flow_name=self.info.flow_name, step=request.step,
            run_id=self.info.run_id, task_id=pending.task_id, datastore_root=self.info.datastore_root,
            inputs=list(request.inputs), attempt=pending.attempt, split_index=request.split_index,
            is_last_attempt=pending.attempt >= policy.retries, catch_fallback=pending.fallback,
            fallback_ending=pending.fallback_ending.value if pending.fallback_ending else None,
            username=self.info.username, tags=self.info.tags, origin_run_id=self.info.origin_run_id,
            environment=policy.environment, resources=policy.resources, code_package=self.info.code_package,
            submitted_at=round(time.time(), 3),
        )
        # The task writes raw files only this process reads; the tailer copies them into the
        # stored logs, so a task's stored log is sealed when it ends (see mfc.runner.logtail).
        stdout, stderr = (self.tailer.open(self.blobs.staging_dir(), f"log-{s}-") for s in ("stdout", "stderr"))
        executor = self.executors[self.choose_executor(request.step)]
        try:
            handle = executor.submit(spec, stdout, stderr)
        except BaseException:
            for raw in (stdout, stderr):
                self.tailer.discard(raw)
            raise
        running = _Running(pending, handle, executor, None, spec.submitted_at or time.time())
        self.running[handle.key] = running
        if not executor.reports_start:
            self._started(TaskStarted(handle.key, running.submitted_at))
        prefix = self._prefix(spec)
        for stream, raw in (("stdout", stdout), ("stderr", stderr)):
            self.tailer.add(prefix, stream, raw, self._log_sink(spec, stream))
        self.reporter.task_started(prefix, spec.step, spec.attempt)

    def _log_sink(self, spec: TaskSpec, stream: str) -> LogSink:
        """Where a task's stored log is written while it runs, readable (``mfc logs``, the
        client) from the moment the attempt is launched; the store decides how."""
        return self.logs.open(self.records.log_key(spec.run_id, spec.step, spec.task_id, spec.attempt, stream))

    # -- results --------------------------------------------------------------------------------
    def _handle(self, event: TaskEvent | Settled) -> None:
        if isinstance(event, TaskStarted):
            self._started(event)
        elif isinstance(event, Settled):
            self._settled(event)
        else:
            self._exited(event)

    def _started(self, event: TaskStarted) -> None:
        """The task left its queue: its ``@timeout`` counts from now."""
        running = self.running.get(event.key)
        if running is None or running.started_at is not None:
            return
        now = time.time()
        # An executor's clock (Batch's startedAt) may be a little off ours: keep it in order.
        running.started_at = min(max(event.at, running.submitted_at), now)
        timeout = self.policies[running.handle.spec.step].timeout
        if timeout:
            running.deadline = time.monotonic() - (now - running.started_at) + timeout

    def _exited(self, event: TaskExit) -> None:
        """Seal the task's logs and have its record read (or written) off this thread."""
        running = self.running.pop(event.key, None)
        if running is None:
            return
        self._save_logs([self.tailer.finish(path) for path in (running.handle.stdout, running.handle.stderr)])
        self.settling[event.key] = _Settling(running, event)
        self.settler.settle(event.key, running.handle.spec, self._death(running, event))

    def _settled(self, event: Settled) -> None:
        """A record is ready: act on the exited tasks whose records are, in the order they exited."""
        waiting = self.settling.get(event.key)
        if waiting is None:
            return
        waiting.settled = event
        while self.settling:
            key, head = next(iter(self.settling.items()))
            if head.settled is None:
                return
            del self.settling[key]
            if head.settled.error is not None:
                raise head.settled.error
            if head.settled.note:
                self.reporter.message(head.settled.note)
            assert head.settled.record is not None
            self._finished(head.running, head.exit, head.settled.record)

    def _finished(self, running: _Running, event: TaskExit, typed: TaskRecord) -> None:
        spec = running.handle.spec
        record = typed.to_dict()
        prefix = self._prefix(spec)
        if typed.ending.succeeded:
            self._succeeded(prefix, spec, record)
            return
        reason = _reason(record)
        policy = self.policies[spec.step]
        if event.executor_failure and typed.died:
            # Its executor is gone: no retry or fallback can run there; the run fails naming why.
            self._ended(spec, typed)
            self.reporter.task_finished(prefix, spec.step, False, f": {reason}")
            if self.failure is None:
                self.failure = event.executor_failure
            if not self.stopping:
                self._stop_all()
        elif self.stopping:
            self._ended(spec, typed)
            self.reporter.task_finished(prefix, spec.step, False, f": {reason}")
        elif spec.attempt < policy.retries:
            delay = policy.retry_delay
            self.reporter.task_retrying(prefix, spec.step, f" ({reason}); retrying in {delay:g}s")
            self.enqueue(running.pending.request, spec.attempt + 1, delay=delay)
        elif policy.catch and typed.died and spec.catch_fallback is None:
            self.reporter.task_retrying(prefix, spec.step, f" ({reason}); running the @catch fallback")
            self.enqueue(running.pending.request, spec.attempt + 1, fallback=reason, fallback_ending=typed.ending)
        else:
            self._ended(spec, typed)
            self.reporter.task_finished(prefix, spec.step, False, f": {reason}")
            self._fail(spec, record)

    def _ended(self, spec: TaskSpec, record: TaskRecord) -> None:
        """No other attempt follows this failed one: name it the task's final attempt (a task
        that wrote its own record on its last attempt has done so itself)."""
        if record.died or not spec.is_last_attempt:
            self.settler.write_final(spec)

    def _succeeded(self, prefix: str, spec: TaskSpec, record: dict[str, Any]) -> None:
        note = " (exception caught by @catch)" if record.get("caught") else ""
        self.reporter.task_finished(prefix, spec.step, True, note)
        split = record.get("foreach")
        if split and split["num_splits"] > self.max_num_splits:
            self.failure = (
                f"step {spec.step}: foreach over {split['var']!r} has {split['num_splits']} items, more than "
                f"--max-num-splits {self.max_num_splits}; raise it with --max-num-splits {split['num_splits']}"
            )
            self._stop_all()
            return
        ref = InputRef(spec.step, spec.task_id)
        for request in self.dag.task_done(spec.step, ref, record):
            self.enqueue(request)

    def _death(self, running: _Running, event: TaskExit) -> Death:
        """Why the attempt ended as this thread sees it now: the record written for it if the
        task wrote none (create-only: a record of the task's own that comes first stands)."""
        spec = running.handle.spec
        ending = Ending.DIED
        if event.executor_failure and event.error:
            reason = event.error
        elif running.timed_out:
            reason = f"timed out after {self.policies[spec.step].timeout:g}s (@timeout)"
            ending = Ending.TIMED_OUT
        elif self.stopping:
            reason = "stopped because the run " + ("was interrupted" if self.interrupted else "failed")
            ending = Ending.INTERRUPTED if self.interrupted else Ending.STOPPED
        elif event.error:
            reason = event.error
        else:
            reason = exit_reason(event.code)
        return Death(reason, ending, round(time.time(), 3), queue_times(running.submitted_at, running.started_at))

    def _save_logs(self, finished: Sequence[LogSink | None]) -> None:
        """Seal a finished task's stored logs; a remote store uploads them in the background (one
        batch per task), so this does not wait for it."""
        self.logs.seal([sink for sink in finished if sink is not None])

    def _fail(self, spec: TaskSpec, record: dict[str, Any]) -> None:
        exc = record.get("exception") or {}
        where = f" ({exc['where']})" if exc.get("where") else ""
        lines = [f"task {spec.pathspec} failed: {exc.get('type', 'Error')}: {exc.get('message', '')}{where}"]
        if exc.get("source"):
            lines.append(f"    {exc['source'].strip()}")
        lines.append(f"    see its logs: mfc logs {spec.pathspec}")
        self.failure = "\n".join(lines)
        self._stop_all()

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for running in self.running.values():
            if running.deadline is not None and now > running.deadline and not running.timed_out:
                running.timed_out = True
                running.executor.kill(running.handle)

    def _stop_all(self) -> None:
        """Stop every running task (SIGTERM, then SIGKILL) and collect their ends."""
        self.stopping = True
        self.ready.clear()
        self.delayed.clear()
        for running in list(self.running.values()):
            running.executor.kill(running.handle, grace=STOP_GRACE_SECONDS)
        deadline = time.monotonic() + STOP_GRACE_SECONDS + 5
        while (self.running or self.settling) and time.monotonic() < deadline:
            try:
                self._handle(self.events.get(timeout=0.1))
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                for running in list(self.running.values()):
                    running.executor.kill(running.handle)


def _reason(record: dict[str, Any]) -> str:
    exc = record.get("exception") or {}
    return f"{exc.get('type', 'Error')}: {exc.get('message', '')}" if exc.get("type") != "TaskDied" else exc.get("message", "")
