"""The cost of a run's lease (issue 8): the 10-step linear flow with and without heartbeats,
interleaved in one invocation, and the time one heartbeat write takes on a local datastore."""

from __future__ import annotations

from typing import Any

from figures import Figure
from procs import BenchError, median, spread

NO_LEASE = {"MFC_LEASE_INTERVAL": "0"}


def bench_lease(ctx: Any) -> list[Figure]:
    """The lease's overhead on the 10-step linear flow, and one heartbeat write."""
    from suite import run_flow

    from mfc.runner.lease import measure_refresh

    with_lease: list[float] = []
    without: list[float] = []
    run_flow(ctx, "mfc", "linear", [])  # warm-up: bytecode caches
    for index in range(ctx.n(6)):
        order = ((None, with_lease), (NO_LEASE, without)) if index % 2 == 0 else ((NO_LEASE, without), (None, with_lease))
        for env, times in order:
            measured, reports = run_flow(ctx, "mfc", "linear", [], extra_env=env)
            if reports[-1].get("count") != 9:
                raise BenchError(f"mfc linear flow reported a wrong result: {reports[-1]}")
            times.append(measured.wall_s)
    base = median(without)
    overhead = median(with_lease) - base
    figure = Figure("lease overhead, linear 10 steps", overhead, "s", goal=0.05 * base,
                    metaflow_note="no counterpart" if ctx.metaflow else ctx.metaflow_note)
    figure.details.append(f"with the lease {median(with_lease):.3f} s ({spread(with_lease)}), "
                          f"without (MFC_LEASE_INTERVAL=0) {base:.3f} s ({spread(without)}); runs interleaved; "
                          "goal: within 5% of the run without")
    refresh = measure_refresh(str(ctx.tmp / "lease-refresh" / ".mfc"), beats=ctx.n(200, 20))
    beat = Figure("lease refresh (one heartbeat write)", refresh, "s", goal=0.005,
                  metaflow_note="no counterpart" if ctx.metaflow else ctx.metaflow_note)
    beat.details.append(f"{refresh * 1000:.3f} ms: median of heartbeat writes to a local datastore, from a daemon thread in a real run "
                        "(every lease_interval, default 5 s), never on the scheduling thread")
    return [figure, beat]
