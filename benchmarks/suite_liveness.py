"""The cost of a run's lease (issue 8): the 10-step linear flow and the 100-way foreach with and
without heartbeats, interleaved in one invocation, and the time one heartbeat write takes on a
local datastore."""

from __future__ import annotations

from typing import Any

from figures import Figure
from procs import BenchError, median, spread

NO_LEASE = {"MFC_LEASE_INTERVAL": "0"}
WIDTH = 100


def _with_and_without(ctx: Any, kind: str, args: list[str], reps: int, ok: Any) -> tuple[list[float], list[float]]:
    """Wall times of ``reps`` runs with the lease and ``reps`` without, alternating which goes first."""
    from suite import run_flow

    with_lease: list[float] = []
    without: list[float] = []
    run_flow(ctx, "mfc", kind, args)  # warm-up: bytecode caches
    for index in range(reps):
        order = ((None, with_lease), (NO_LEASE, without))
        for env, times in order if index % 2 == 0 else reversed(order):
            measured, reports = run_flow(ctx, "mfc", kind, args, extra_env=env)
            if not ok(reports[-1]):
                raise BenchError(f"mfc {kind} flow reported a wrong result: {reports[-1]}")
            times.append(measured.wall_s)
    return with_lease, without


def _overhead(ctx: Any, name: str, with_lease: list[float], without: list[float]) -> Figure:
    base = median(without)
    figure = Figure(name, median(with_lease) - base, "s", goal=0.05 * base,
                    metaflow_note="no counterpart" if ctx.metaflow else ctx.metaflow_note)
    figure.details.append(f"with the lease {median(with_lease):.3f} s ({spread(with_lease)}), without "
                          f"(MFC_LEASE_INTERVAL=0) {base:.3f} s ({spread(without)}); interleaved; goal: within 5%")
    return figure


def bench_lease(ctx: Any) -> list[Figure]:
    """The lease's overhead on the linear and foreach flows, and one heartbeat write."""
    from mfc.runner.lease import measure_refresh

    linear = _with_and_without(ctx, "linear", [], ctx.n(6), lambda r: r.get("count") == 9)
    total = sum(i * i for i in range(WIDTH))
    foreach = _with_and_without(ctx, "foreach", ["--max-workers", "2", "--width", str(WIDTH)], ctx.n(3),
                                lambda r: r.get("total") == total)
    refresh = measure_refresh(str(ctx.tmp / "lease-refresh" / ".mfc"), beats=ctx.n(200, 20))
    beat = Figure("lease refresh (one heartbeat write)", refresh, "s", goal=0.005,
                  metaflow_note="no counterpart" if ctx.metaflow else ctx.metaflow_note)
    beat.details.append(f"{refresh * 1000:.3f} ms: median of heartbeat writes to a local datastore; a run writes one "
                        "every lease_interval (default 5 s) from a daemon thread, never on the scheduling thread")
    return [_overhead(ctx, "lease overhead, linear 10 steps", *linear),
            _overhead(ctx, "lease overhead, foreach 100 tasks", *foreach), beat]
