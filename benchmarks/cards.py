"""What ``@card`` costs: a 20-task foreach run without ``@card`` beside the same run with a default
card on every foreach task (each appending a Markdown and a Table).

Usage: ``python benchmarks/cards.py [--repeat N]``; prints the median wall time of each run
(``mfc run`` in a subprocess, on a fresh temporary datastore) and the difference per task.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TASKS = 20

_FLOW = '''
from mfc import FlowSpec, card, current, step


class CardBenchFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range({tasks}))
        self.next(self.body, foreach="items")

    {decorator}
    @step
    def body(self):
        self.value = [self.input] * 100
        if {with_card}:
            from mfc.cards import Markdown, Table

            current.card.append(Markdown(f"# item {{self.input}}"))
            current.card.append(Table([[i, i * i] for i in range(20)], headers=["i", "square"]))
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(len(i.value) for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CardBenchFlow()
'''


def _flow_file(directory: Path, with_card: bool) -> Path:
    path = directory / f"card_bench_{'card' if with_card else 'plain'}.py"
    source = _FLOW.format(tasks=TASKS, decorator="@card" if with_card else "", with_card=with_card)
    path.write_text(textwrap.dedent(source))
    return path


def _mfc() -> str:
    beside = Path(sys.executable).parent / "mfc"
    return str(beside) if beside.exists() else "mfc"


def time_run(flow: Path, root: Path) -> float:
    """Seconds one ``mfc run -q`` of ``flow`` takes on datastore ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFC_")}
    env.update(MFC_DATASTORE_ROOT=str(root), MFC_CONFIG=os.path.join(os.sep, "nonexistent", "mfc.toml"))
    t0 = time.perf_counter()
    proc = subprocess.run([_mfc(), "run", str(flow), "-q"], env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{flow.name} failed (exit {proc.returncode}):\n{proc.stderr}")
    return elapsed


def measure(repeat: int = 3) -> dict[str, float]:
    """Median seconds of the run without and with ``@card`` (runs interleaved, fresh roots)."""
    times: dict[str, list[float]] = {"without @card": [], "with @card": []}
    with tempfile.TemporaryDirectory(prefix="mfc-card-bench-") as tmp:
        base = Path(tmp)
        flows = {"without @card": _flow_file(base, False), "with @card": _flow_file(base, True)}
        for i in range(repeat):
            for label, flow in flows.items():
                times[label].append(time_run(flow, base / f"ds-{label[:4]}-{i}"))
    return {label: statistics.median(values) for label, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    """Print the two medians and the cost of a card per task."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each flow (median reported)")
    args = parser.parse_args(argv)
    result = measure(args.repeat)
    plain, carded = result["without @card"], result["with @card"]
    print(f"{TASKS}-task foreach, median of {args.repeat}: without @card {plain:.2f} s, with @card {carded:.2f} s "
          f"({(carded - plain) / TASKS * 1000:+.0f} ms per task)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
