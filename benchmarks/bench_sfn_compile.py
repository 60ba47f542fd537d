"""Time the Step Functions compiler on a generated 200-step linear flow and a 1,000-way foreach
flow (``max_num_splits`` 1,000; goal: each <= 0.2 s).

Run: ``.venv/bin/python benchmarks/bench_sfn_compile.py [--steps N] [--width N] [--repeat R]``.
Each timed compile is what ``mfc sfn compile`` does after importing the flow: read and check the
graph, resolve the settings, compile, write the JSON. Lint is timed beside it. Prints one JSON
object per flow.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flows import write_flow  # noqa: E402

GOAL_S = 0.2
ENV = {"MFC_DATASTORE_ROOT": "s3://bench-bucket/data", "MFC_BATCH_QUEUE": "bench-queue", "MFC_USER": "bench"}
CODE = {"sha256": "0" * 64, "flow_file": "flow.py"}


def measure(path: Path, label: str, repeat: int, **env: str) -> dict[str, Any]:
    """Median seconds of compiling ``path`` (and of linting it), and what was compiled."""
    from mfc.config import Config
    from mfc.flowload import flow_class, import_flow_file
    from mfc.graph import load_graph
    from mfc.sfn.build import DeployOptions, sfn_settings
    from mfc.sfn.compiler import compile_with_modes, definition_json
    from mfc.sfn.lint import lint, walk

    started = time.perf_counter()
    flow_cls = flow_class(import_flow_file(str(path)), None, str(path))
    imported = time.perf_counter() - started
    config = Config(env={**ENV, **env})
    compiles, lints = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        graph = load_graph(str(path))
        settings = sfn_settings(flow_cls, graph, config, CODE, "bench/image:1", None, DeployOptions())
        definition, modes = compile_with_modes(graph, settings)
        text = definition_json(definition)
        compiles.append(time.perf_counter() - started)
        started = time.perf_counter()
        findings = lint(graph, settings, definition, modes)
        lints.append(time.perf_counter() - started)
    errors = [f.what for f in findings if f.level == "error"]
    if errors:
        raise SystemExit(f"error: lint found errors in the {label} flow: {errors[0]}")
    return {"label": label, "compile_s": statistics.median(compiles), "compile_all": compiles,
            "lint_s": statistics.median(lints), "import_s": imported, "bytes": len(text.encode()),
            "states": sum(1 for _ in walk(definition["States"])), "modes": modes, "goal_s": GOAL_S}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mfc-bench-sfn-") as tmp:
        linear = write_flow(Path(tmp) / "linear", "linear", "mfc", args.steps)
        foreach = write_flow(Path(tmp) / "foreach", "foreach", "mfc")
        results = [measure(linear, f"{args.steps}-step linear", args.repeat),
                   measure(foreach, f"{args.width:,}-way foreach", args.repeat,
                           MFC_MAX_NUM_SPLITS=str(args.width))]
    for result in results:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
