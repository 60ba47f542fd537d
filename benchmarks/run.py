"""mfc's benchmarks (``make bench``): one line per figure with its goal and PASS/MISS, and, when
the ``metaflow`` package is importable in this Python, the same flows run with Metaflow and the
ratio metaflow/mfc (how many times more time or memory Metaflow needs).

Usage: ``python benchmarks/run.py [--only NAME[,NAME]] [--no-metaflow] [--quick] [--strict] [--list]``.
Timings are medians of a few runs; on a shared 2-core machine they vary by 10-15%.
Exit status: 0, or 1 when a benchmark failed to run (or, with ``--strict``, missed its goal).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Figure  # noqa: E402
from procs import BenchError, BenchSkipped  # noqa: E402
from suite import BENCHMARKS, Context  # noqa: E402


def _selected(only: list[str] | None) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"error: --only {unknown[0]}: no such benchmark (known: {', '.join(BENCHMARKS)})")
    return names


def _metaflow_version() -> str | None:
    if importlib.util.find_spec("metaflow") is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("metaflow")
    except PackageNotFoundError:
        return "?"


def _warn_if_busy(when: str) -> None:
    """Timings mean little on a machine that other work keeps busy: say so."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return
    cpus = os.cpu_count() or 1
    if load > 0.5 * cpus:
        print(f"note: load average {load:.1f} on {cpus} cpus {when} the benchmarks: other work competes, "
              "figures are pessimistic", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="mfc benchmarks (make bench)")
    parser.add_argument("--only", action="append", metavar="NAME[,NAME]", help="run only these benchmarks (repeatable)")
    parser.add_argument("--no-metaflow", action="store_true", help="do not run the Metaflow comparison")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each: checks the suite works")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a figure misses its goal")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, func in BENCHMARKS.items():
            print(f"{name:18} {(func.__doc__ or '').strip().splitlines()[0]}")
        return 0
    names = _selected(args.only)
    mf_version = None if args.no_metaflow else _metaflow_version()
    if args.no_metaflow:
        note, header = None, "metaflow: not run (--no-metaflow)"
    elif mf_version is None:
        note = "skipped (not importable)"
        header = "metaflow: skipped, not importable here (install it: .venv/bin/pip install 'metaflow>=2.12,<3')"
    else:
        note, header = None, f"metaflow {mf_version}: same flows, only the import line changed"
    print(f"mfc benchmarks on {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cpus; {header}", flush=True)
    _warn_if_busy("before")
    failed = missed = skipped = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mfc-bench-") as tmp:
        ctx = Context(Path(tmp), metaflow=mf_version is not None, metaflow_note=note, quick=args.quick)
        for name in names:
            try:
                figures: list[Figure] = BENCHMARKS[name](ctx)
            except BenchError as exc:
                failed += 1
                print(f"{name}: ERROR {exc}", flush=True)
                continue
            except BenchSkipped as exc:
                skipped += 1
                print(f"{name}: skipped, {exc}", flush=True)
                continue
            for figure in figures:
                missed += figure.passed is False and not args.quick
                print(figure.line(metaflow_column=not args.no_metaflow, verdict=not args.quick), flush=True)
                for detail in figure.details:
                    print(f"    {detail}", flush=True)
    _warn_if_busy("after")
    print(f"done in {time.perf_counter() - started:.0f} s: {failed} failed to run, {skipped} skipped, "
          f"{missed} missed their goal")
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
