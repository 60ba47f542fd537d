"""Run a command and measure it: wall time, the peak RSS of its whole process tree, and
(optionally) its own RSS over time sampled from /proc.

Peak RSS of a tree: ``os.wait4`` returns the child's ``ru_maxrss``, which Linux computes as the
largest peak of the child and of every descendant it (or they) waited for, so one number covers
the orchestrator, a fork server and every task. A forked task's count includes the pages it
shares with the process it was forked from, so it is an upper bound of what the task added.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MB = 1_000_000


class BenchError(Exception):
    """A benchmark command failed or produced the wrong result."""


class BenchSkipped(Exception):
    """A benchmark cannot run on this machine (no Docker engine, no base image...); says why."""


@dataclass
class Sample:
    """The child's own memory at one moment (bytes)."""

    at: float
    rss: int
    hwm: int


@dataclass
class Measured:
    """What one command run cost."""

    wall_s: float
    tree_maxrss: int  # bytes; the largest peak RSS of any process in the tree
    returncode: int
    stdout: str
    stderr: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def own_peak(self) -> int:
        """The sampled peak of the top process (VmHWM; a lower bound between samples)."""
        return max((s.hwm for s in self.samples), default=0)


def _read_status(pid: int) -> tuple[int, int] | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            text = fh.read()
    except OSError:
        return None
    rss = hwm = None
    for line in text.splitlines():
        if line.startswith(b"VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith(b"VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    if rss is None or hwm is None:
        return None  # a zombie: exited, not reaped yet
    return rss, hwm


def _sample(pid: int, interval: float, started: float, out: list[Sample], stop: threading.Event) -> None:
    while not stop.is_set():
        status = _read_status(pid)
        if status is None:
            return
        out.append(Sample(time.perf_counter() - started, status[0], status[1]))
        stop.wait(interval)


def run_measured(cmd: Sequence[str], cwd: Path, env: dict[str, str], sample_every: float | None = None,
                 check: bool = True) -> Measured:
    """Run ``cmd`` to completion; with ``sample_every``, sample its RSS at that interval (s)."""
    samples: list[Sample] = []
    stop = threading.Event()
    started = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = None
    if sample_every:
        sampler = threading.Thread(target=_sample, args=(proc.pid, sample_every, started, samples, stop), daemon=True)
        sampler.start()
    out_chunks: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda n=name, s=stream: out_chunks.__setitem__(n, s.read()), daemon=True)
               for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    for thread in (*readers, *([sampler] if sampler else [])):
        thread.join()
    measured = Measured(wall, usage.ru_maxrss * 1024, proc.returncode,
                        out_chunks.get("stdout", b"").decode(errors="replace"),
                        out_chunks.get("stderr", b"").decode(errors="replace"), samples)
    if check and measured.returncode != 0:
        tail = "\n".join((measured.stderr or measured.stdout).strip().splitlines()[-15:])
        raise BenchError(f"{' '.join(cmd)} (in {cwd}) exited {measured.returncode}:\n{tail}")
    return measured


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], unit: str = "s") -> str:
    """'min .., max .. over n runs' for a detail line."""
    if len(values) == 1:
        return f"{values[0]:.3f} {unit}, 1 run"
    return f"min {min(values):.3f} {unit}, max {max(values):.3f} {unit} over {len(values)} runs"


def bench_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment for benchmark commands: bytecode caching on (as for a user), no user
    config file for either framework, local datastore and metadata for Metaflow."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("USERNAME", env.get("USER") or "bench")
    env.update(extra)
    return env
