"""Time ``build_package`` on a 2,000-file project tree (goal: <= 0.5 s).

Run: ``.venv/bin/python benchmarks/bench_package.py [--files N] [--repeat R]``. The tree holds
nested packages of Python modules of realistic size (1-12 KB), plus what a real checkout has
and must be pruned: a virtualenv, caches, a .git directory, data files and a .gitignore.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from mfc.packager import build_package, unpack_package

GOAL_S = 0.5

_SNIPPETS = [
    "def {name}(data, *, limit={n}):\n    \"\"\"Return the first {n} items of data, filtered.\"\"\"\n"
    "    result = []\n    for item in data:\n        if item is not None and len(result) < limit:\n"
    "            result.append(item)\n    return result\n\n\n",
    "class {Name}:\n    \"\"\"Holds state for {name}.\"\"\"\n\n    def __init__(self, value: int = {n}) -> None:\n"
    "        self.value = value\n        self.history: list[int] = []\n\n    def step(self) -> int:\n"
    "        self.history.append(self.value)\n        self.value = (self.value * 31 + {n}) % 1000003\n"
    "        return self.value\n\n\n",
    "{NAME}_CONFIG = {{\n    \"name\": \"{name}\",\n    \"retries\": {n},\n    \"timeout_s\": {n}.5,\n"
    "    \"tags\": [\"{name}\", \"batch\", \"v{n}\"],\n}}\n\n\n",
]


def _module_text(rng: random.Random, target_size: int) -> str:
    parts = ["\"\"\"Generated module for the packaging benchmark.\"\"\"\n\nimport os\nimport sys\n\n\n"]
    size = len(parts[0])
    while size < target_size:
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(5, 14)))
        text = rng.choice(_SNIPPETS).format(name=name, Name=name.title(), NAME=name.upper(), n=rng.randint(1, 9999))
        parts.append(text)
        size += len(text)
    return "".join(parts)


def make_tree(root: Path, files: int, seed: int = 7) -> Path:
    """Create a project of ``files`` Python files under ``root``; return the flow file."""
    rng = random.Random(seed)
    (root / "pyproject.toml").write_text("[project]\nname = 'bench'\nversion = '0'\n")
    (root / ".gitignore").write_text("*.log\n/data/\nscratch/\n!keep.py\n")
    flow = root / "flow.py"
    flow.write_text(_module_text(rng, 3000))
    for index in range(files - 1):
        depth = rng.randint(0, 3)
        parts = [f"pkg{rng.randint(0, 9)}"] + [f"sub{rng.randint(0, 4)}" for _ in range(depth)]
        directory = root.joinpath(*parts)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"mod_{index}.py").write_text(_module_text(rng, rng.randint(1000, 12000)))
    # What must be pruned without being walked file by file.
    for noise_dir in (".venv/lib/python3.11/site-packages/x", ".git/objects/ab", "pkg0/__pycache__", "data"):
        directory = root / noise_dir
        directory.mkdir(parents=True, exist_ok=True)
        for index in range(200):
            (directory / f"n{index}.py").write_text("x = 1\n")
    (root / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    for index in range(100):
        (root / "pkg1" / f"notes_{index}.log").write_text("log line\n" * 50)
    return flow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        flow = make_tree(root, args.files)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            package = build_package(flow)
            times.append(time.perf_counter() - start)
        count = len(package.manifest["files"])
        if count != args.files:
            raise SystemExit(f"expected {args.files} files in the package, got {count}")
        start = time.perf_counter()
        unpack_package(package.data, Path(tmp) / "out", expected_sha256=package.sha256)
        unpack_s = time.perf_counter() - start
        raw = sum(entry["size"] for entry in package.manifest["files"])
    best, median = min(times), statistics.median(times)
    print(f"package {count} files: {median:.2f} s (goal <= {GOAL_S} s)")
    print(f"  first {times[0]:.3f} s, best {best:.3f} s, median {median:.3f} s over {args.repeat} runs; "
          f"{raw / 1024**2:.1f} MB of source -> {package.size / 1024**2:.2f} MB tar.gz; "
          f"unpack {unpack_s:.3f} s; cpus {os.cpu_count()}")


if __name__ == "__main__":
    main()
