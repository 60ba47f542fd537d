"""Time an artifact store's save and load of one large value, in this process, without a flow.

Run by ``benchmarks/run.py`` in a fresh interpreter (so the runner's own state does not count):
``python benchmarks/store_worker.py --framework mfc|metaflow --mb 200 --reps 3 --dir DIR``.
Prints one JSON object: ``{"save_s": [...], "load_s": [...], "size": bytes, "type": name}``; for
mfc also ``unchecked_s``: the same object read back as mfc read it before reads were checked
against the content address (``pickle.load`` of the file), interleaved with the checked loads.
Each repetition writes into a fresh datastore directory (so nothing is deduplicated) and reads
the value back right after writing it (so reads come from the page cache, as in a flow whose
next step reads what the previous one wrote).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def make_blob(mb: float, seed: int) -> Any:
    """About mb MB (10**6 bytes) of incompressible data: a float64 array when numpy exists."""
    size = int(mb * 1_000_000)
    try:
        import numpy
    except ImportError:
        return random.Random(seed).randbytes(size)
    return numpy.random.default_rng(seed).random(size // 8)


def _same(a: Any, b: Any) -> bool:
    if hasattr(a, "nbytes"):
        return a.nbytes == b.nbytes and bool((a[:1000] == b[:1000]).all()) and bool((a[-1000:] == b[-1000:]).all())
    return a == b


def mfc_round_trip(root: Path) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_blob_store

    store = ArtifactStore(open_blob_store(str(root)), "BenchStore")
    return (lambda value: store.save(value, "big").sha), store.load


def mfc_unchecked_load(root: Path, sha: str) -> Any:
    """The read without the integrity check: header byte, then pickle.load of the file."""
    import pickle

    from mfc.stores.artifacts import RAW, data_key

    with open(root / data_key("BenchStore", sha), "rb") as fh:
        if fh.read(1) != RAW:
            raise SystemExit("mfc: the benchmark value was not stored raw")
        return pickle.load(fh)


def metaflow_round_trip(root: Path) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    from metaflow.datastore import FlowDataStore
    from metaflow.plugins.datastores.local_storage import LocalStorage

    flow_store = FlowDataStore("BenchStore", storage_impl=LocalStorage, ds_root=str(root))

    def save(value: Any) -> None:
        task = flow_store.get_task_datastore("1", "start", "1", attempt=0, mode="w")
        task.init_task()
        task.save_artifacts([("big", value)])
        task.done()

    def load(_: Any) -> Any:
        return flow_store.get_task_datastore("1", "start", "1", mode="r")["big"]

    return save, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=["mfc", "metaflow"], required=True)
    parser.add_argument("--mb", type=float, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    value = make_blob(args.mb, 1)
    factory = mfc_round_trip if args.framework == "mfc" else metaflow_round_trip
    saves, loads, unchecked = [], [], []
    for rep in range(args.reps):
        root = args.dir / f"rep{rep}"
        save, load = factory(root)
        started = time.perf_counter()
        key = save(value)
        saves.append(time.perf_counter() - started)
        started = time.perf_counter()
        loaded = load(key)
        loads.append(time.perf_counter() - started)
        if not _same(value, loaded):
            raise SystemExit(f"{args.framework}: the loaded value differs from the saved one")
        del loaded
        if args.framework == "mfc":
            started = time.perf_counter()
            loaded = mfc_unchecked_load(root, key)
            unchecked.append(time.perf_counter() - started)
            del loaded
        shutil.rmtree(root, ignore_errors=True)
    size = getattr(value, "nbytes", None) or len(value)
    result = {"save_s": saves, "load_s": loads, "size": size, "type": type(value).__name__}
    if unchecked:
        result["unchecked_s"] = unchecked
    print(json.dumps(result))


if __name__ == "__main__":
    main()
