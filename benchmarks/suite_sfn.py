"""The Step Functions benchmarks: the compiler on a 200-step flow and a 1,000-way foreach
(``bench_sfn_compile.py``, no AWS, no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from figures import Figure
from procs import BenchError, bench_env, run_measured, spread

HERE = Path(__file__).resolve().parent
NO_COUNTERPART = "no counterpart measured (Metaflow's step-functions create calls AWS)"


def bench_sfn_compile(ctx: Any) -> list[Figure]:
    """Compile a 200-step linear flow and a 1,000-way foreach flow to Step Functions."""
    steps, width = (20, 100) if ctx.quick else (200, 1000)
    cmd = [ctx.python, str(HERE / "bench_sfn_compile.py"), "--steps", str(steps), "--width", str(width),
           "--repeat", str(ctx.n(7, 2))]
    measured = run_measured(cmd, ctx.tmp, bench_env(MFC_CONFIG=str(ctx.tmp / "no-config.toml")))
    try:
        results = [json.loads(line) for line in measured.stdout.strip().splitlines()]
    except ValueError:
        raise BenchError(f"bench_sfn_compile.py printed something unexpected: {measured.stdout[:300]!r}") from None
    figures = []
    for result in results:
        figure = Figure(f"sfn compile {result['label']} flow", result["compile_s"], "s", goal=result["goal_s"],
                        metaflow_note=NO_COUNTERPART if ctx.metaflow else ctx.metaflow_note)
        modes = ", ".join(f"{step}: {mode}" for step, mode in sorted(result["modes"].items())) or "no foreach"
        figure.details.append(
            f"graph + settings + compile + JSON, median; {spread(result['compile_all'])}; {result['states']} states, "
            f"{result['bytes']:,} bytes of definition ({modes}); lint {result['lint_s']:.3f} s; "
            f"importing the flow once {result['import_s']:.3f} s")
        figures.append(figure)
    return figures


SFN_BENCHMARKS = {"sfn-compile": bench_sfn_compile}
