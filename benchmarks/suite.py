"""The benchmarks: each runs its flows (or worker) with mfc and, when asked, with Metaflow, and
returns its figures. Commands run in a temporary directory, one sub-directory per framework and
flow, each with its own datastore."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from figures import Figure
from flows import OUT_ENV, write_flow
from procs import MB, BenchError, Measured, bench_env, median, run_measured, spread
from suite_cloud import CLOUD_BENCHMARKS
from suite_environments import bench_environments
from suite_inspect import bench_client, bench_resume, bench_verify
from suite_join import bench_join_s3
from suite_liveness import bench_lease
from suite_metadata import bench_runs_s3
from suite_service import SERVICE_BENCHMARKS
from suite_sfn import SFN_BENCHMARKS

HERE = Path(__file__).resolve().parent


@dataclass
class Context:
    """Where and how the benchmarks run."""

    tmp: Path
    metaflow: bool  # run the Metaflow side
    metaflow_note: str | None = None  # shown instead of Metaflow's figure when it does not run
    quick: bool = False  # small sizes and one repetition: a smoke test of the suite itself
    python: str = sys.executable
    _dirs: dict[tuple[str, str], Path] = field(default_factory=dict)

    def n(self, full: int, quick: int = 1) -> int:
        return quick if self.quick else full

    def mfc_cmd(self, *args: str) -> list[str]:
        script = Path(self.python).parent / "mfc"
        if script.exists():
            return [str(script), *args]
        return [self.python, "-c", "import sys; from mfc.cli import main; sys.argv[0] = 'mfc'; main()", *args]

    def flow_dir(self, kind: str, framework: str) -> Path:
        key = (kind, framework)
        if key not in self._dirs:
            directory = self.tmp / framework / kind
            write_flow(directory, kind, framework)
            self._dirs[key] = directory
        return self._dirs[key]

    def env(self, framework: str, directory: Path) -> dict[str, str]:
        extra = {OUT_ENV: str(directory / "out.jsonl")}
        if framework == "mfc":
            extra.update(MFC_DATASTORE_ROOT=str(directory / ".mfc"), MFC_CONFIG=str(self.tmp / "no-config.toml"))
        else:
            extra.update(METAFLOW_DEFAULT_DATASTORE="local", METAFLOW_DEFAULT_METADATA="local",
                         METAFLOW_HOME=str(self.tmp / "metaflow-home"))
        return bench_env(**extra)

    def metaflow_side(self, measure: Callable[[], float]) -> tuple[float | None, str | None]:
        """Metaflow's value, or None and the reason there is none."""
        if not self.metaflow:
            return None, self.metaflow_note
        try:
            return measure(), None
        except BenchError as exc:
            return None, "failed: " + str(exc).splitlines()[0][:200]


def run_flow(ctx: Context, framework: str, kind: str, args: list[str], sample_every: float | None = None,
             extra_env: dict[str, str] | None = None) -> tuple[Measured, list[dict[str, Any]]]:
    """Run a benchmark flow once; returns the measurement and the flow's own report lines."""
    directory = ctx.flow_dir(kind, framework)
    out = directory / "out.jsonl"
    out.unlink(missing_ok=True)
    if framework == "mfc":
        cmd = [*ctx.mfc_cmd("run", "flow.py", "-q"), *args]
    else:
        cmd = [ctx.python, "flow.py", "--no-pylint", "--quiet", "run", *args]
    env = {**ctx.env(framework, directory), **(extra_env or {})}
    measured = run_measured(cmd, directory, env, sample_every=sample_every)
    reports = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    if not reports:
        raise BenchError(f"{framework} {kind} flow finished without writing its report ({' '.join(cmd)})")
    return measured, reports


def _timed_runs(ctx: Context, framework: str, kind: str, args: list[str], reps: int, warmup: int,
                check: Callable[[dict[str, Any]], bool]) -> list[float]:
    times = []
    for index in range(warmup + reps):
        measured, reports = run_flow(ctx, framework, kind, args)
        if not check(reports[-1]):
            raise BenchError(f"{framework} {kind} flow reported a wrong result: {reports[-1]}")
        if index >= warmup:
            times.append(measured.wall_s)
    return times


def _extend(target: list[float], values: list[float]) -> list[float]:
    target.extend(values)
    return values


def bench_linear(ctx: Context) -> list[Figure]:
    """A 10-step linear flow, end to end: the ``run`` command's wall time, interpreter start included."""
    def check(report: dict[str, Any]) -> bool:
        return report.get("count") == 9

    times = _timed_runs(ctx, "mfc", "linear", [], ctx.n(5), warmup=1, check=check)
    mf_times: list[float] = []
    mf, note = ctx.metaflow_side(lambda: median(_extend(mf_times, _timed_runs(ctx, "metaflow", "linear", [], ctx.n(3), 0, check))))
    figure = Figure("linear 10 steps", median(times), "s", goal=0.6, metaflow=mf, metaflow_note=note)
    figure.details.append(f"mfc: `mfc run flow.py -q` wall time, median; {spread(times)} (after 1 warm-up run)")
    if mf_times:
        figure.details.append(f"metaflow: `python flow.py --no-pylint --quiet run`; {spread(mf_times)}")
    return [figure]


def bench_foreach(ctx: Context) -> list[Figure]:
    """A 100-way foreach with ``--max-workers 2``."""
    width = 100

    def check(report: dict[str, Any]) -> bool:
        return report.get("total") == sum(i * i for i in range(width))

    args = ["--max-workers", "2", "--width", str(width)]
    times = _timed_runs(ctx, "mfc", "foreach", args, ctx.n(3), warmup=0, check=check)
    mf_times: list[float] = []
    mf, note = ctx.metaflow_side(lambda: median(_extend(mf_times, _timed_runs(ctx, "metaflow", "foreach", args, 1, 0, check))))
    figure = Figure("foreach 100 tasks, 2 workers", median(times), "s", goal=2.5, metaflow=mf, metaflow_note=note)
    figure.details.append(f"mfc: `mfc run flow.py -q --max-workers 2`; {spread(times)}")
    if mf_times:
        figure.details.append(f"metaflow: {spread(mf_times)} (one run: it is slow)")
    return [figure]


def bench_show(ctx: Context) -> list[Figure]:
    """``mfc show flow.py`` on the 10-step flow."""
    def timed(framework: str, reps: int, warmup: int) -> list[float]:
        directory = ctx.flow_dir("linear", framework)
        cmd = ctx.mfc_cmd("show", "flow.py") if framework == "mfc" else [ctx.python, "flow.py", "--no-pylint", "show"]
        runs = [run_measured(cmd, directory, ctx.env(framework, directory)) for _ in range(warmup + reps)]
        if "start" not in runs[-1].stdout:
            raise BenchError(f"{framework} show printed no steps: {runs[-1].stdout[:200]!r}")
        return [r.wall_s for r in runs[warmup:]]

    times = timed("mfc", ctx.n(7), 1)
    mf, note = ctx.metaflow_side(lambda: median(timed("metaflow", ctx.n(3), 1)))
    figure = Figure("show 10 steps", median(times), "s", goal=0.15, metaflow=mf, metaflow_note=note)
    figure.details.append(f"mfc: `mfc show flow.py`; {spread(times)}; metaflow: `python flow.py --no-pylint show`")
    return [figure]


def bench_artifact_store(ctx: Context) -> list[Figure]:
    """Save and load a 200 MB value with each framework's artifact store, in one process."""
    mb = 20 if ctx.quick else 200

    def worker(framework: str, reps: int) -> dict[str, Any]:
        directory = ctx.tmp / f"store-{framework}"
        directory.mkdir(parents=True, exist_ok=True)
        cmd = [ctx.python, str(HERE / "store_worker.py"), "--framework", framework, "--mb", str(mb),
               "--reps", str(reps), "--dir", str(directory)]
        measured = run_measured(cmd, directory, ctx.env(framework, directory))
        return json.loads(measured.stdout.strip().splitlines()[-1])

    ours = worker("mfc", ctx.n(5))
    theirs: dict[str, Any] = {}

    def metaflow_rate(key: str) -> float:
        if not theirs:
            theirs.update(worker("metaflow", 1))
        return theirs["size"] / MB / median(theirs[key])

    figures = []
    for label, key in (("save", "save_s"), ("load", "load_s")):
        mf, note = ctx.metaflow_side(lambda k=key: metaflow_rate(k))
        figure = Figure(f"artifact store {label} {mb} MB (in-process)", ours["size"] / MB / median(ours[key]), "MB/s",
                        goal=500, higher_is_better=True, metaflow=mf, metaflow_note=note)
        figure.details.append(f"mfc: ArtifactStore.{label}() of a {ours['type']} of {ours['size'] / MB:.0f} MB; "
                              f"{spread(ours[key])}; fresh datastore per run, reads from the page cache")
        if label == "load" and ours.get("unchecked_s"):
            plain = median(ours["unchecked_s"])
            figure.details.append(
                f"mfc: the same read unchecked (pickle.load of the file, no hash), interleaved: "
                f"{ours['size'] / MB / plain:.0f} MB/s; checking the content address costs "
                f"{(median(ours[key]) / plain - 1) * 100:+.0f}% (BLAKE3 on a thread beside the read)")
        if theirs:
            figure.details.append(f"metaflow: TaskDataStore.{'save_artifacts' if label == 'save' else 'load'}; "
                                  f"{spread(theirs[key])}")
        figures.append(figure)
    return figures


def bench_artifact_flow(ctx: Context) -> list[Figure]:
    """Write a 200 MB artifact in one step and read it in the next, inside a flow."""
    mb = 20 if ctx.quick else 200

    def measure(framework: str, reps: int) -> dict[str, Any]:
        small = [run_flow(ctx, framework, "artifact", ["--mb", "0"])[1][-1] for _ in range(reps)]
        big = [run_flow(ctx, framework, "artifact", ["--mb", str(mb)])[1][-1] for _ in range(reps)]
        extra = median([r["gap_s"] for r in big]) - median([r["gap_s"] for r in small])
        if extra <= 0:
            raise BenchError(f"{framework}: a {mb} MB artifact took no longer to hand over than an empty one")
        size = big[-1]["size"]
        return {"write": size / MB / extra, "read": size / MB / median([r["read_s"] for r in big]),
                "extra": extra, "small_gap": median([r["gap_s"] for r in small]),
                "read_s": [r["read_s"] for r in big], "type": big[-1]["type"], "size": size}

    ours = measure("mfc", ctx.n(3))
    theirs: dict[str, Any] = {}

    def metaflow_rate(key: str) -> float:
        if not theirs:
            theirs.update(measure("metaflow", 1))
        return theirs[key]

    figures = []
    for label in ("write", "read"):
        mf, note = ctx.metaflow_side(lambda k=label: metaflow_rate(k))
        figure = Figure(f"artifact {mb} MB in a flow: {label}", ours[label], "MB/s", goal=500, higher_is_better=True,
                        metaflow=mf, metaflow_note=note)
        if label == "write":
            figure.details.append(
                f"mfc: (end of step body -> start of next step body) with {mb} MB minus the same with 0 MB: "
                f"{ours['extra']:.3f} s (empty hand-over {ours['small_gap']:.3f} s); a {ours['type']}")
            if theirs:
                figure.details.append(f"metaflow: {theirs['extra']:.2f} s more than an empty hand-over "
                                      f"({theirs['small_gap']:.2f} s)")
        else:
            figure.details.append(f"mfc: first access of self.big in the next step; {spread(ours['read_s'])}")
        figures.append(figure)
    return figures


def bench_peak_rss(ctx: Context) -> list[Figure]:
    """Peak RSS of the task whose step holds 400 MB of artifacts (two 200 MB values)."""
    mb = 40 if ctx.quick else 400

    def measure(framework: str, reps: int) -> tuple[int, int, int]:
        """(peak of the tree over reps, the orchestrator's own sampled peak, the tree's peak with 0 MB)."""
        base, _ = run_flow(ctx, framework, "hold", ["--mb", "0"])
        runs = [run_flow(ctx, framework, "hold", ["--mb", str(mb)], sample_every=0.05)[0] for _ in range(reps)]
        return max(r.tree_maxrss for r in runs), max(r.own_peak for r in runs), base.tree_maxrss

    peak, own, base = measure("mfc", ctx.n(2))
    spawned, _ = run_flow(ctx, "mfc", "hold", ["--mb", str(mb)], extra_env={"MFC_LOCAL_EXECUTOR": "spawn"})
    theirs: list[int] = []

    def metaflow_peak() -> float:
        theirs.extend(measure("metaflow", 1))
        return theirs[0] / MB

    mf, note = ctx.metaflow_side(metaflow_peak)
    figure = Figure(f"peak RSS, step holding {mb} MB", peak / MB, "MB", goal=1.5 * mb, metaflow=mf, metaflow_note=note)
    figure.details.append(
        f"mfc: {peak / (mb * MB):.2f}x the artifacts; the same flow with 0 MB peaks at {base / MB:.0f} MB; "
        f"the orchestrator's own peak (VmHWM sampled every 50 ms) {own / MB:.0f} MB, so the peak is the task's")
    figure.details.append(
        "method: ru_maxrss from wait4() on the `run` process = the largest peak of any process in its tree "
        "(orchestrator, fork server, tasks); a forked task's RSS includes pages shared with the fork server; "
        f"cross-check with MFC_LOCAL_EXECUTOR=spawn (each task a fresh interpreter): {spawned.tree_maxrss / MB:.0f} MB")
    if theirs:
        figure.details.append(f"metaflow: {theirs[0] / (mb * MB):.2f}x the artifacts; with 0 MB {theirs[2] / MB:.0f} MB")
    return [figure]


def bench_orchestrator_rss(ctx: Context) -> list[Figure]:
    """The orchestrator's own RSS over a 1,000-way foreach, sampled from /proc."""
    width = 200 if ctx.quick else 1000
    args = ["--width", str(width), "--max-num-splits", str(width)]
    measured, reports = run_flow(ctx, "mfc", "foreach", args, sample_every=0.05)
    if reports[-1].get("total") != sum(i * i for i in range(width)):
        raise BenchError(f"mfc {width}-way foreach reported a wrong result: {reports[-1]}")
    samples = measured.samples
    if len(samples) < 3:
        raise BenchError(f"only {len(samples)} RSS samples of the orchestrator")
    start = next((s for s in samples if s.at >= 0.1 * measured.wall_s), samples[0])
    middle = next((s for s in samples if s.at >= 0.5 * measured.wall_s), samples[-1])
    end = samples[-1]
    peak = max(s.hwm for s in samples)
    figure = Figure(f"orchestrator RSS, {width}-way foreach (peak)", peak / MB, "MB", goal=100,
                    metaflow_note="not run (a 1,000-way foreach takes Metaflow minutes)" if ctx.metaflow else ctx.metaflow_note)
    figure.details.append(
        f"mfc: RSS at 10% of the run {start.rss / MB:.0f} MB, at 50% {middle.rss / MB:.0f} MB, last sample "
        f"{end.rss / MB:.0f} MB, peak (VmHWM) {peak / MB:.0f} MB; {len(samples)} samples of /proc/<pid>/status "
        f"every 50 ms; the run took {measured.wall_s:.1f} s with the default max workers")
    return [figure]


def bench_foreach_10k(ctx: Context) -> list[Figure]:
    """A 10,000-way foreach with tiny step bodies: the bytes its tasks read from the datastore
    (each task counts them: ``MFC_COUNT_READS``) and the run's wall time. Each child reads its
    own item of the split file, so the total grows with N, not N squared."""
    width = 500 if ctx.quick else 10_000
    counts = ctx.tmp / f"reads-{width}.txt"
    counts.unlink(missing_ok=True)
    args = ["--width", str(width), "--max-num-splits", str(width)]
    measured, reports = run_flow(ctx, "mfc", "foreach", args, extra_env={"MFC_COUNT_READS": str(counts)})
    if reports[-1].get("total") != sum(i * i for i in range(width)):
        raise BenchError(f"mfc {width}-way foreach reported a wrong result: {reports[-1]}")
    lines = [line.split(" ", 2) for line in counts.read_text().splitlines()]
    if len(lines) != width + 3:
        raise BenchError(f"{len(lines)} tasks reported their reads, not {width + 3}")
    total = sum(int(n) for n, _, _ in lines)
    bodies = [int(n) for n, _, path in lines if path.split("/")[2] == "body"]
    join = next(int(n) for n, _, path in lines if path.split("/")[2] == "join")
    note = "not run (a 10,000-way foreach takes Metaflow many minutes)" if ctx.metaflow else ctx.metaflow_note
    size = Figure(f"foreach {width:,} tasks: bytes read by its tasks", total / MB, "MB",
                  goal=round(width * 20_000 / MB, 1), metaflow_note=note)
    size.details.append(
        f"mfc: {total:,} bytes over {len(lines)} tasks ({sum(int(r) for _, r, _ in lines):,} reads): a body task "
        f"reads {median([float(b) for b in bodies]):,.0f} bytes (median, max {max(bodies):,}), the join {join:,}; "
        f"goal: 20 kB a task (before split files a child read the whole split list: 6.7 GB at 10,000)")
    wall = Figure(f"foreach {width:,} tasks: wall time", measured.wall_s, "s", goal=width * 0.05, metaflow_note=note)
    wall.details.append(f"mfc: `mfc run flow.py -q --width {width} --max-num-splits {width}`, default max workers")
    return [size, wall]


def bench_package(ctx: Context) -> list[Figure]:
    """``benchmarks/bench_package.py``: build the code package of a 2,000-file project."""
    cmd = [ctx.python, str(HERE / "bench_package.py"), "--repeat", str(ctx.n(5, 2))]
    if ctx.quick:
        cmd += ["--files", "200"]
    measured = run_measured(cmd, ctx.tmp, bench_env())
    lines = measured.stdout.strip().splitlines()
    match = re.match(r"package (\d+) files: ([\d.]+) s \(goal <= ([\d.]+) s\)", lines[0] if lines else "")
    if not match:
        raise BenchError(f"bench_package.py printed something unexpected: {measured.stdout[:300]!r}")
    figure = Figure(f"package {match.group(1)} files", float(match.group(2)), "s", goal=float(match.group(3)),
                    metaflow_note="no counterpart measured" if ctx.metaflow else ctx.metaflow_note)
    figure.details.extend(line.strip() for line in lines[1:])
    return [figure]


BENCHMARKS: dict[str, Callable[[Context], list[Figure]]] = {
    "linear": bench_linear,
    "foreach": bench_foreach,
    "show": bench_show,
    "artifact-store": bench_artifact_store,
    "artifact-flow": bench_artifact_flow,
    "peak-rss": bench_peak_rss,
    "orchestrator-rss": bench_orchestrator_rss,
    "foreach-10k": bench_foreach_10k,
    "package": bench_package,
    "resume": bench_resume,
    "client": bench_client,
    "runs-s3": bench_runs_s3,
    "join-s3": bench_join_s3,
    "lease": bench_lease,
    "environments": bench_environments,
    "verify": bench_verify,
    **CLOUD_BENCHMARKS,
    **SFN_BENCHMARKS,
    **SERVICE_BENCHMARKS,
}
