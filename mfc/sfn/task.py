"""The command every Step Functions state runs in its Batch job: ``python -m mfc.sfn.task``.

It turns the state's few arguments (datastore, code package, step, run id, foreach indices,
retry count) into the same :class:`TaskSpec` the local orchestrator would build, and runs the
one task entrypoint (:func:`mfc.runner.task.execute`) on it in a forked child, doing for that one
task what the orchestrator does for a local run:

* the ``start`` state first records the run (:func:`mfc.runner.start.start_run`) under the id
  derived from the execution, with the parameters of the execution's input (defaults applied and
  checked as ``mfc run`` checks them), or, for ``mfc sfn resume``, clones the origin's tasks;
* a task that already ended well in this run (a clone) is not run again;
* the child's output goes to the job's own output (CloudWatch) and into the task's stored logs;
* a child that dies without a record is recorded as the orchestrator records it, and on the last
  attempt of a ``@catch`` step its fallback runs at once, as locally;
* a foreach task's split list is also written where the Map reads it (``<task>/split.json``),
  and a switch's chosen step where its Choice state reads it (``<task>/next.json``);
* a task that fails for good records the run as failed at once (unless a sibling that failed
  first did: its error stands); ``end`` records it succeeded.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import sys
import threading
import time
from typing import IO, Any

from mfc.exceptions import MfcError
from mfc.pathspec import check_part, check_run_id
from mfc.runner.taskspec import TaskSpec
from mfc.sfn.compiler import CHOICE_FILE, SPLIT_FILE
from mfc.sfn.lineage import parse_indices, task_inputs
from mfc.stores.blob import BlobStore, open_blob_store
from mfc.stores.runstatus import FINAL_STATUSES
from mfc.stores.service_metadata import task_metadata, task_records
from mfc.stores.taskrecord import Ending
from mfc.taskid import task_id_for

PARAMETERS = "parameters"
RESUME = "resume"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mfc.sfn.task", description="Run one task of a Step Functions run.")
    for name in ("root", "flow", "code", "file", "step", "run"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--ix", default="")
    parser.add_argument("--iter", type=int, default=0,
                        help="the state data's loop count: the repetition of a looping switch's step")
    parser.add_argument("--attempt", type=int, default=0,
                        help="the state's retry count (informational: attempts are numbered from the records)")
    parser.add_argument("--execution", help="the execution's ARN (start: its input holds the parameters)")
    parser.add_argument("--run-info", default="", help="what the start task records about the run (base64url of JSON)")
    parser.add_argument("--max-splits", type=int, default=None)
    parser.add_argument("--fallback", default=None, help="the error that ended the killed task (@catch)")
    return parser.parse_args(argv)


class Task:
    """One state's task: its spec, how to run it, what to record around it."""

    def __init__(self, args: argparse.Namespace) -> None:
        check_part(args.flow, "flow")
        check_part(args.step, "step")
        check_run_id(args.run)
        self.args = args
        self.blobs: BlobStore = open_blob_store(args.root)
        self.metadata = task_metadata(self.blobs)
        self.records = task_records(self.blobs, args.flow)
        self.indices = parse_indices(args.ix)
        self.task_id = task_id_for(args.step, self.indices)  # a looping step's repetition: see load()
        self.pathspec = f"{args.flow}/{args.run}/{args.step}/{self.task_id}"

    # -- the code ------------------------------------------------------------------------------------
    def load(self) -> None:
        from mfc.flowload import flow_class, import_flow_file
        from mfc.graph import load_graph
        from mfc.runner.bootstrap import prepare_code

        probe = self._spec([], None, {}, False)
        self.flow_file = prepare_code(probe, self.blobs)
        self.flow_cls = flow_class(import_flow_file(self.flow_file), self.args.flow, self.flow_file)
        self.graph = load_graph(self.flow_file, self.args.flow)
        if self.args.step not in self.graph:
            raise MfcError(f"the code package has no step {self.args.step} in flow {self.args.flow}")
        if self.graph[self.args.step].loops:
            self.task_id = task_id_for(self.args.step, self.indices, self.args.iter)
            self.pathspec = f"{self.args.flow}/{self.args.run}/{self.args.step}/{self.task_id}"

    def _spec(self, inputs: list, split_index: int | None, run: dict[str, Any], last: bool) -> TaskSpec:
        from mfc.runner.policy import step_policies

        args = self.args
        policy = step_policies(self.flow_cls, [args.step])[args.step] if hasattr(self, "flow_cls") else None
        fallback = args.fallback
        return TaskSpec(
            flow_file=getattr(self, "flow_file", args.file), flow_name=args.flow, step=args.step, run_id=args.run, task_id=self.task_id,
            datastore_root=args.root, inputs=inputs, attempt=args.attempt, split_index=split_index,
            is_last_attempt=last,
            catch_fallback=f"its job was killed ({fallback})" if fallback is not None else None,
            fallback_ending=(Ending.TIMED_OUT.value if "Timeout" in (fallback or "") else Ending.DIED.value)
            if fallback is not None else None,
            username=str(run.get("user") or ""), tags=list(run.get("tags") or []),
            origin_run_id=run.get("origin_run_id"),
            environment=dict(policy.environment) if policy else {}, resources=dict(policy.resources) if policy else {},
            code_package={"sha256": args.code, "flow_file": args.file}, submitted_at=None,
        )

    # -- around the task -------------------------------------------------------------------------------
    def run(self) -> int:
        self.load()
        if self.args.execution:
            from mfc.sfn.runstart import record_run

            info = json.loads(base64.urlsafe_b64decode(self.args.run_info.encode()) or b"{}")
            record_run(self, self.args.execution, info)
        run = self.metadata.facts(self.args.flow, self.args.run)["run"]
        if run is None:
            raise MfcError(f"run {self.args.flow}/{self.args.run} has no record in {self.args.root} (its start "
                           "state records it)")
        done = self._ended_well()
        if done is not None:
            print(f"{self.pathspec}: already done in this run (cloned from {done.get('origin_run_id') or 'an earlier attempt'})",
                  flush=True)
            self._publish(done)
            return 0
        inputs, split_index = task_inputs(self.graph, self.args.step, self.indices, self._num_splits,
                                          self.args.iter, self._ended)
        from mfc.runner.policy import step_policies

        policy = step_policies(self.flow_cls, [self.args.step])[self.args.step]
        catches = policy.catch and self.graph[self.args.step].foreach_var is None
        # The attempt number comes from the attempts recorded (each leaves a record or a log), not
        # from the state's RetryCount, which also counts Batch throttling retries.
        attempt = max(self.records.attempts(self.args.run, self.args.step, self.task_id), default=-1) + 1
        if self.args.fallback is not None:  # the job of the last attempt was killed outright
            spec = self._spec(inputs, split_index, run, True)
            spec.attempt = attempt
            code = self._execute(spec)
        else:
            last = attempt >= policy.retries
            spec = self._spec(inputs, split_index, run, last)
            spec.attempt = attempt
            code = self._execute(spec)
            reason = self._settle(spec, code, final=not (last and catches))
            if reason is not None and last and catches:  # as locally: the @catch fallback runs at once
                fallback = dataclasses.replace(spec, attempt=spec.attempt + 1, catch_fallback=reason,
                                               fallback_ending=Ending.DIED.value, is_last_attempt=True)
                code = self._execute(fallback)
        record = self._ended_well() if code == 0 else None
        if record is not None:
            return self._succeeded(record)
        if spec.is_last_attempt and not catches:
            self._fail_run(code, spec)
        return code or 1

    def _settle(self, spec: TaskSpec, code: int, final: bool) -> str | None:
        """Record an attempt whose process wrote no record (killed, or gone before recording), as
        the orchestrator does, naming it the task's final attempt (``final``, on its last attempt
        without a @catch fallback to follow); returns why it ended, None when it recorded itself."""
        from mfc.runner.settle import Death, exit_reason, settle_record

        if self.records.read_task(spec.run_id, spec.step, spec.task_id, spec.attempt) is not None:
            return None
        reason = exit_reason(code)
        settle_record(self.graph, self.records, spec, Death(reason, Ending.DIED, round(time.time(), 3), {}))
        if spec.is_last_attempt and final:
            self.records.write_final(spec.run_id, spec.step, spec.task_id, spec.attempt)
        return reason

    def _ended_well(self) -> dict[str, Any] | None:
        [record] = self.records.final_many(self.args.run, [(self.args.step, self.task_id, None)])
        if record is not None and record.get("status") in (Ending.OK.value, Ending.CAUGHT.value):
            return record
        return None

    def _ended(self, refs: list) -> list[bool]:
        found = self.records.final_many(self.args.run, [(ref.step, ref.task_id, None) for ref in refs])
        return [record is not None and record.get("status") in (Ending.OK.value, Ending.CAUGHT.value)
                for record in found]

    def _num_splits(self, step: str, task_id: str) -> int:
        [record] = self.records.final_many(self.args.run, [(step, task_id, None)])
        split = (record or {}).get("foreach") or {}
        if "num_splits" not in split:
            raise MfcError(f"foreach task {self.args.flow}/{self.args.run}/{step}/{task_id} has no finished record")
        return int(split["num_splits"])

    def _succeeded(self, record: dict[str, Any]) -> int:
        split = record.get("foreach")
        if split and self.args.max_splits is not None and int(split["num_splits"]) > self.args.max_splits:
            message = (f"step {self.args.step}: foreach over {split['num_splits']} items, more than max_num_splits "
                       f"({self.args.max_splits}) this state machine was compiled for; raise it "
                       "(mfc sfn create --max-num-splits N) and deploy again")
            print(f"error: {message}", file=sys.stderr, flush=True)
            self.metadata.finish_run(self.args.flow, self.args.run, "failed", {"error": message})
            return 1
        self._publish(record)
        if self.args.step == "end":
            self.metadata.finish_run(self.args.flow, self.args.run, "succeeded")
        return 0

    def _publish(self, record: dict[str, Any]) -> None:
        """Copy a foreach's split list to the key its Map reads, and write a switch's choice
        where its Choice state reads it (attempt-free keys, see the compiler)."""
        task_key = f"{self.args.flow}/{self.args.run}/{self.args.step}/{self.task_id}"
        if record.get("next"):
            self.blobs.put_bytes(f"{task_key}/{CHOICE_FILE}", json.dumps(record["next"]).encode())
        split = record.get("foreach")
        if not split:
            return
        target = f"{task_key}/{SPLIT_FILE}"
        if "split" in split:
            data = self.blobs.get_bytes(split["split"])
        else:  # a record of an older run holds its items inline
            data = json.dumps(split["items"]).encode()
        self.blobs.put_bytes(target, data)

    def _fail_run(self, code: int, spec: TaskSpec) -> None:
        final = self.metadata.facts(self.args.flow, self.args.run)["status"] or {}
        if final.get("status") in FINAL_STATUSES:  # a sibling failed first (this task was then refused): its error stands
            return
        found = self.records.read(self.args.run, self.args.step, self.task_id, spec.attempt) or {}
        exc = found.get("exception") or {}
        what = f"{exc.get('type')}: {exc.get('message')}" if exc else f"exit code {code}"
        self.metadata.finish_run(self.args.flow, self.args.run, "failed",
                                 {"error": f"step {self.args.step} failed (task {self.pathspec}, attempt "
                                           f"{spec.attempt}): {what}"})

    def _execute(self, spec: TaskSpec) -> int:
        """Run the task entrypoint on ``spec`` in a forked child (the code is loaded already: no
        second interpreter); its output goes to this job's output and into the stored logs.
        Returns its exit code (-N: killed by signal N)."""
        pipes = {stream: os.pipe() for stream in ("stdout", "stderr")}
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: the step runs here, its output into the pipes
            code = 1
            try:
                for fd, (read, write) in zip((1, 2), pipes.values(), strict=True):
                    os.dup2(write, fd)
                    os.close(read)
                    os.close(write)
                os.environ.update(spec.environment)
                from mfc.runner.task import execute

                code = execute(spec, self.flow_cls, self.graph)
            except BaseException:  # noqa: BLE001 - reported like any task failure, then the child ends
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        writer = self.blobs.log_writer()
        sinks = {stream: writer.open(self.records.log_key(spec.run_id, spec.step, spec.task_id, spec.attempt, stream))
                 for stream in pipes}
        pumps = []
        for stream, (read, write) in pipes.items():
            os.close(write)
            echo = sys.stdout.buffer if stream == "stdout" else sys.stderr.buffer
            pumps.append(threading.Thread(target=_pump, args=(os.fdopen(read, "rb", buffering=0), echo, sinks[stream]),
                                          daemon=True))
        started = time.time()
        for pump in pumps:
            pump.start()
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        for pump in pumps:
            pump.join()
        writer.seal(list(sinks.values()))
        writer.close()
        if code < 0:
            print(f"{self.pathspec}: the task process was killed by signal {-code} after {time.time() - started:.1f}s",
                  file=sys.stderr, flush=True)
        return code


def _pump(source: IO[bytes], echo: IO[bytes], sink: Any) -> None:
    while True:
        data = source.read(65536)
        if not data:
            return
        echo.write(data)
        echo.flush()
        sink.write(data)


def main(argv: list[str] | None = None) -> int:
    try:
        return Task(parse_args(argv)).run()
    except MfcError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
