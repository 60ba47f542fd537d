"""The command of a Step Functions run's ``@exit_hook`` states: ``python -m mfc.sfn.hooks``.

The compiler (:mod:`mfc.sfn.compiler`) runs it after the flow's states, in the flow's image:
``--outcome success`` once they succeeded, ``--outcome error --error NAME`` from the Catch that
ends them (``NAME``: the error Step Functions caught, e.g. ``States.TaskFailed``).

It fetches the run's code package as every task does, then:

1. makes sure the run's final status is recorded before any hook reads it: the end task records
   ``succeeded`` and a task that fails for good records ``failed``, but a job Batch killed or
   could not start, or a state that timed out, leaves no record, and the execution is still
   running while its hooks run (so ``Run.successful`` would read it as running). The error path
   then records ``failed`` with the caught error; the success path records ``succeeded`` if the
   end task's write was lost. A final status already there is left as it is;
2. calls the success or the error hooks in order, each in its own process, with the run's
   pathspec (:func:`mfc.runner.exit_hooks.run_exit_hooks`): their output goes to this job's log
   and, once they are done, to ``<flow>/<run>/_exit_hooks.log`` in the datastore, which
   ``mfc sfn trigger --wait`` prints after the execution ends; a hook that fails is one line.

It exits 0 whatever the hooks do: hooks never change how the run or the execution ends (the
compiled Fail state still fails the execution on the error path). A run that was never recorded
(its start state failed before recording it, say on a bad parameter) calls no hooks, as a local
run that fails before it starts calls none.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from typing import TYPE_CHECKING, TextIO

from mfc.exceptions import MfcError

if TYPE_CHECKING:
    from mfc.stores.metadata import BlobMetadata

OUTCOMES = ("success", "error")


def hook_log_key(flow: str, run_id: str) -> str:
    """Where the hooks' output of a Step Functions run is stored (``_``: no step is named so)."""
    return f"{flow}/{run_id}/_exit_hooks.log"


class _Tee(io.StringIO):
    """What is printed, kept (to be stored) and passed on to ``out``."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self.out = out

    def write(self, text: str) -> int:
        self.out.write(text)
        return super().write(text)

    def flush(self) -> None:
        self.out.flush()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mfc.sfn.hooks",
                                     description="Run the @exit_hook hooks of a Step Functions run.")
    for name in ("root", "flow", "code", "file", "run"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--outcome", required=True, choices=OUTCOMES)
    parser.add_argument("--error", default="", help="the error the execution caught (error path)")
    return parser.parse_args(argv)


def record_outcome(metadata: BlobMetadata, flow: str, run_id: str, succeeded: bool, error: str) -> str | None:
    """Record the run's final status unless it has one (see the module docstring); returns the
    status the run ends with, None when the run was never recorded."""
    facts = metadata.facts(flow, run_id)
    if facts["run"] is None:
        return None
    final = facts["status"] or {}
    if final.get("status") in ("succeeded", "failed", "interrupted"):
        return str(final["status"])
    if succeeded:
        metadata.finish_run(flow, run_id, "succeeded")
        return "succeeded"
    why = f"its Step Functions execution caught {error or 'an error'} before any task recorded why"
    metadata.finish_run(flow, run_id, "failed", {"error": why})
    return "failed"


def run(args: argparse.Namespace) -> int:
    """Record the outcome, then call the hooks (see the module docstring)."""
    from mfc.flowload import flow_class, import_flow_file
    from mfc.pathspec import check_part, check_run_id
    from mfc.runner.bootstrap import code_cache_dir, prepare_code
    from mfc.runner.exit_hooks import run_exit_hooks
    from mfc.runner.taskspec import TaskSpec
    from mfc.stores.blob import open_blob_store
    from mfc.stores.service_metadata import task_metadata

    check_part(args.flow, "flow")
    check_run_id(args.run)
    blobs = open_blob_store(args.root)
    succeeded = args.outcome == "success"
    status = record_outcome(task_metadata(blobs), args.flow, args.run, succeeded, args.error)
    pathspec = f"{args.flow}/{args.run}"
    if status is None:
        print(f"[exit_hook] run {pathspec} was never recorded (its start state failed first): no hooks called",
              flush=True)
        return 0
    probe = TaskSpec(flow_file=args.file, flow_name=args.flow, step="_exit_hooks", run_id=args.run, task_id="0",
                     datastore_root=args.root, inputs=[], code_package={"sha256": args.code, "flow_file": args.file})
    flow_file = prepare_code(probe, blobs)
    # each hook runs in a process of its own: the package root on its path too (dotted hook names)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (os.path.join(code_cache_dir(), args.code), os.environ.get("PYTHONPATH")) if p)
    flow_cls = flow_class(import_flow_file(flow_file), args.flow, flow_file)
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        print(f"[exit_hook] run {pathspec} {status}: calling its {'success' if succeeded else 'error'} hooks",
              flush=True)
        run_exit_hooks(flow_cls, flow_file, pathspec, succeeded, args.root)
    blobs.put_bytes(hook_log_key(args.flow, args.run), tee.getvalue().encode())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except MfcError as exc:  # the hooks cannot be called (no code package, say): said in the job's log
        print(f"[exit_hook] hooks of {args.flow}/{args.run} not called: {exc}", file=sys.stderr, flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())
