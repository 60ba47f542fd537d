"""Benchmarks of inspecting and resuming runs (issue 3): resume of a 20-step flow that failed at
step 15, ``Flow(...).runs()`` over 1,000 runs, loading one artifact in a fresh process; and
(issue 8) ``mfc verify`` of a 1,000-task run."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from figures import Figure
from procs import BenchError, bench_env, median, spread

RESUME_FLOW = '''
import os
from mfc import FlowSpec, step


class ResumeBenchFlow(FlowSpec):
    @step
    def start(self):
        self.x = 0
        self.next(self.s1)
{steps}
    @step
    def end(self):
        pass
'''

STEP = '''
    @step
    def s{i}(self):
        if {i} == 15 and os.environ.get("FAIL_AT_15") == "1":
            raise ValueError("step 15 fails")
        self.x += 1
        self.next(self.{next})
'''


def _mfc(ctx, directory: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(ctx.mfc_cmd(*args), cwd=directory, capture_output=True, text=True,
                          env={**ctx.env("mfc", directory), **env})


def bench_resume(ctx) -> list[Figure]:
    """Time from `mfc resume` starting to step 15's task starting, after a failure at step 15."""
    directory = ctx.tmp / "mfc" / "resume"
    directory.mkdir(parents=True, exist_ok=True)
    steps = "".join(STEP.format(i=i, next=f"s{i + 1}" if i < 18 else "end") for i in range(1, 19))
    (directory / "flow.py").write_text(RESUME_FLOW.format(steps=steps))
    times = []
    for _ in range(ctx.n(3)):
        failed = _mfc(ctx, directory, "run", "flow.py", "-q", FAIL_AT_15="1")
        if failed.returncode != 1:
            raise BenchError(f"the failing run exited {failed.returncode}: {failed.stderr[-300:]}")
        started = time.time()
        resumed = _mfc(ctx, directory, "resume", "flow.py", "-q", "--run-id-file", "rid")
        if resumed.returncode != 0:
            raise BenchError(f"resume failed: {resumed.stderr[-300:]}")
        run_id = (directory / "rid").read_text().strip()
        record = json.loads((directory / ".mfc" / "ResumeBenchFlow" / run_id / "s15" / "s15" / "0.json").read_text())
        times.append(record["started_at"] - started)
    figure = Figure("resume 20 steps at step 15: back at step 15", median(times), "s", goal=0.5)
    figure.details.append(f"from launching `mfc resume` to s15's task start (its record); {spread(times)}")
    return [figure]


def _write_runs(root: Path, flow: str, count: int) -> None:
    from mfc.stores.blob import open_blob_store
    from mfc.stores.metadata import BlobMetadata

    metadata = BlobMetadata(open_blob_store(str(root)))
    for index in range(count):
        run_id = metadata.create_run(flow, {"user": "bench", "tags": [f"t{index % 7}"], "system_tags": ["user:bench"]})
        metadata.finish_run(flow, run_id, "succeeded")


def bench_client(ctx) -> list[Figure]:
    """`Flow(name).runs()` over 1,000 runs, and one artifact of the latest run from a fresh process."""
    directory = ctx.tmp / "mfc" / "client"
    root = directory / ".mfc"
    directory.mkdir(parents=True, exist_ok=True)
    _write_runs(root, "ManyRunsFlow", ctx.n(1000, 50))
    env = bench_env(MFC_DATASTORE_ROOT=str(root), MFC_CONFIG=str(ctx.tmp / "no-config.toml"), MFC_USER="bench")
    listing = ("import time; from mfc import Flow; t = time.perf_counter(); n = len(list(Flow('ManyRunsFlow').runs())); "
               "print(n, time.perf_counter() - t)")
    runs_times = []
    for _ in range(ctx.n(3)):
        out = subprocess.run([ctx.python, "-c", listing], cwd=directory, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise BenchError(out.stderr[-300:])
        count, seconds = out.stdout.split()
        runs_times.append(float(seconds))
    runs = Figure(f"Flow.runs() over {count} runs", median(runs_times), "s", goal=1.0)
    runs.details.append(f"in-process time of list(Flow(...).runs()); {spread(runs_times)}")

    flow_dir = ctx.flow_dir("linear", "mfc")
    done = _mfc(ctx, flow_dir, "run", "flow.py", "-q")
    if done.returncode != 0:
        raise BenchError(done.stderr[-300:])
    load = "from mfc import Flow; print(Flow('BenchLinearFlow').latest_run['end'].task.data.count)"
    load_times = []
    for _ in range(ctx.n(5)):
        started = time.perf_counter()
        out = subprocess.run([ctx.python, "-c", load], cwd=flow_dir, env={**ctx.env("mfc", flow_dir), "MFC_USER": ""},
                             capture_output=True, text=True)
        load_times.append(time.perf_counter() - started)
        if out.returncode != 0:
            raise BenchError(out.stderr[-300:])
    artifact = Figure("one artifact from a fresh process", median(load_times), "s", goal=0.3)
    artifact.details.append(f"`python -c 'from mfc import Flow; ...data.count'`, interpreter start included; {spread(load_times)}")
    return [runs, artifact]


def bench_verify(ctx) -> list[Figure]:
    """`mfc verify` of a run with 1,000 tasks (a 998-way foreach): every record, object and log."""
    width = ctx.n(998, 98)
    directory = ctx.flow_dir("foreach", "mfc")
    done = _mfc(ctx, directory, "run", "flow.py", "-q", "--width", str(width), "--max-num-splits", str(width),
                "--run-id-file", "verify-rid")
    if done.returncode != 0:
        raise BenchError(f"the {width}-way foreach failed: {done.stderr[-300:]}")
    run_id = (directory / "verify-rid").read_text().strip()
    times, line = [], ""
    for _ in range(ctx.n(5, 1)):
        started = time.perf_counter()
        out = _mfc(ctx, directory, "verify", f"BenchForeachFlow/{run_id}")
        times.append(time.perf_counter() - started)
        if out.returncode != 0:
            raise BenchError(f"mfc verify found damage in a fresh run: {(out.stdout + out.stderr)[-300:]}")
        line = out.stdout.strip().splitlines()[-1]
    figure = Figure(f"verify a {width + 3}-task run", median(times), "s", goal=2.0,
                    metaflow_note="no counterpart (Metaflow has no verify)" if ctx.metaflow else ctx.metaflow_note)
    figure.details.append(f"`mfc verify Flow/run`, interpreter start included; {spread(times)}; it said: {line}")
    return [figure]
