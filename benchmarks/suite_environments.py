"""Local runs in a flow's own environment (issue 14): a small flow whose ``@pypi_base`` env is
already built against the same flow without it, interleaved (goal: within 5%), and the first
build of that env (uv: create, install, link mfc)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from figures import Figure
from procs import BenchError, bench_env, median, run_measured, spread

FLOW = '''
from mfc import FlowSpec, pypi_base, step

DECORATOR
class EnvBenchFlow(FlowSpec):
    @step
    def start(self):
        import six

        self.version = six.__version__
        self.next(self.middle)

    @step
    def middle(self):
        self.next(self.end)

    @step
    def end(self):
        assert self.version
'''


def _project(tmp: Path, name: str, decorator: str) -> Path:
    directory = tmp / "environments" / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "flow.py").write_text(FLOW.replace("DECORATOR", decorator))
    return directory


def _run(ctx: Any, directory: Path, env: dict[str, str]) -> tuple[float, str]:
    measured = run_measured(ctx.mfc_cmd("run", "flow.py"), directory, env)
    return measured.wall_s, measured.stderr


def bench_environments(ctx: Any) -> list[Figure]:
    """A cached-env run against a plain run, and the env's first build."""
    cache = ctx.tmp / "environments" / "cache"
    env = bench_env(MFC_ENV_CACHE=str(cache / "envs"), MFC_CACHE_DIR=str(cache / "mfc"),
                    MFC_CONFIG=str(ctx.tmp / "no-config.toml"))
    with_env = _project(ctx.tmp, "pypi", '@pypi_base(packages={"six": "1.16.0"})')
    plain = _project(ctx.tmp, "plain", "")
    first_wall, stderr = _run(ctx, with_env, {**env, "MFC_DATASTORE_ROOT": str(with_env / ".mfc")})
    built = re.search(r"ready in ([0-9.]+)s", stderr)
    if built is None:
        raise BenchError(f"the first run built no environment:\n{stderr[-2000:]}")
    _run(ctx, plain, {**env, "MFC_DATASTORE_ROOT": str(plain / ".mfc")})  # warm-up: bytecode caches
    times: dict[str, list[float]] = {"pypi": [], "plain": []}
    for index in range(ctx.n(8, 2)):
        order = [("pypi", with_env), ("plain", plain)]
        for name, directory in order if index % 2 == 0 else reversed(order):
            wall, stderr = _run(ctx, directory, {**env, "MFC_DATASTORE_ROOT": str(directory / ".mfc")})
            if "environment " in stderr:
                raise BenchError(f"a run with the env cached built it again:\n{stderr[-2000:]}")
            times[name].append(wall)
    note = "no counterpart" if ctx.metaflow else ctx.metaflow_note
    base = median(times["plain"])
    cached = Figure("@pypi run overhead, env cached", median(times["pypi"]) - base, "s", goal=0.05 * base,
                    metaflow_note=note)
    cached.details.append(f"with @pypi_base {median(times['pypi']):.3f} s ({spread(times['pypi'])}), without "
                          f"{base:.3f} s ({spread(times['plain'])}), ratio {median(times['pypi']) / base:.3f}; interleaved; "
                          "goal: within 5%")
    build = Figure("@pypi env first build (uv)", float(built.group(1)), "s", metaflow_note=note)
    build.details.append(f"first run {first_wall:.3f} s in all, of which the env build {built.group(1)} s "
                         "(uv cache warm on this host)")
    return [cached, build]
