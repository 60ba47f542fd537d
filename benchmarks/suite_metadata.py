"""``Flow.runs()`` over 1,000 runs on the sandbox's S3 (a moto server), issue 9: the runs' records
read in one batch per page of runs (the stores' ``get_many``, parallel on S3) against the access
pattern before it, one GET at a time (run, status, tags per run; the lease too while no final
status). Both in one invocation, interleaved, on the same bucket; then the same behind 10 ms of
one-way latency (a network to S3), with fewer runs."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from figures import Figure
from procs import BenchError, median, spread

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from moto_server import MotoServer, ProxyProcess  # noqa: E402

FLOW = "ManyRunsFlow"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _write_runs(root: str, count: int) -> None:
    from mfc.stores.blob import open_blob_store
    from mfc.stores.metadata import BlobMetadata

    metadata = BlobMetadata(open_blob_store(root))
    base = int(time.time() * 1000) - count

    def one(index: int) -> None:
        run_id = str(base + index)
        metadata.create_run(FLOW, {"user": "bench", "tags": [f"t{index % 7}"], "system_tags": ["user:bench"]}, run_id)
        metadata.finish_run(FLOW, run_id, "succeeded")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(count)))


def _batched(root: str) -> int:
    """What a user runs: ``list(Flow(...).runs())``, every namespace."""
    from mfc.client import Flow, default_namespace, namespace
    from mfc.client.datastore import Datastore

    namespace(None)
    try:
        return len(list(Flow(FLOW, _datastore=Datastore(root, "local")).runs()))
    finally:
        default_namespace()


def _one_at_a_time(root: str) -> int:
    """The reads ``Flow.runs()`` made before issue 9, in the same order, one GET each."""
    from mfc.stores.blob import BlobNotFound, open_blob_store
    from mfc.stores.metadata import BlobMetadata

    blobs = open_blob_store(root)
    metadata = BlobMetadata(blobs)

    def get(run_id: str, name: str) -> bytes | None:
        try:
            return blobs.get_bytes(f"{FLOW}/{run_id}/_{name}.json")
        except BlobNotFound:
            return None

    count = 0
    for run_id in metadata.run_ids(FLOW):
        if get(run_id, "run") is None:
            continue
        if get(run_id, "status") is None:
            get(run_id, "lease")
        get(run_id, "tags")
        count += 1
    return count


def _compare(root: str, count: int, reps: int) -> tuple[list[float], list[float]]:
    """Wall times of ``reps`` batched listings and ``reps`` one-at-a-time ones, alternating."""
    sides: list[tuple[Callable[[str], int], list[float]]] = [(_batched, []), (_one_at_a_time, [])]
    _batched(root)  # warm-up: connections, imports
    for index in range(reps):
        for read, times in sides if index % 2 == 0 else reversed(sides):
            started = time.perf_counter()
            seen = read(root)
            times.append(time.perf_counter() - started)
            if seen != count:
                raise BenchError(f"{read.__name__} listed {seen} runs, not {count}")
    return sides[0][1], sides[1][1]


def _figure(name: str, how: str, batched: list[float], serial: list[float]) -> Figure:
    figure = Figure(name, median(batched), "s", goal=median(serial), metaflow_note="not measured")
    figure.details.append(f"batched ({how}) {median(batched):.3f} s ({spread(batched)}); "
                          f"one GET at a time as before {median(serial):.3f} s ({spread(serial)}): "
                          f"{median(serial) / median(batched):.1f}x faster; interleaved, same bucket")
    return figure


def batched_against_serial(ctx: Any, bucket_name: str, how: str, write: Callable[[str, int], None],
                           compare: Callable[[str, int, int], tuple[list[float], list[float]]],
                           names: tuple[str, str], counts: tuple[int, int]) -> list[Figure]:
    """Two figures for a batched read path against one GET at a time on a moto bucket: ``count``
    items on localhost, then ``slow_count`` behind a proxy 10 ms away. ``names`` are format
    strings taking the count."""
    (count, slow_count), reps = counts, ctx.n(3)
    with MotoServer() as moto:
        bucket = moto.new_bucket(bucket_name)
        env = {**moto.env(), "MFC_CONFIG": str(ctx.tmp / "no-config.toml")}
        root = f"s3://{bucket}/many"
        with _environment(env):
            write(root, count)
            batched, serial = compare(root, count, reps)
        figures = [_figure(names[0].format(count), how, batched, serial)]
        slow_root = f"s3://{bucket}/slow"
        with ProxyProcess(moto.port, delay=0.010) as proxy:
            with _environment({**env, "MFC_S3_ENDPOINT_URL": proxy.endpoint}):
                write(slow_root, slow_count)
                batched, serial = compare(slow_root, slow_count, ctx.n(2, 1))
        figures.append(_figure(names[1].format(slow_count), how, batched, serial))
    return figures


def bench_runs_s3(ctx: Any) -> list[Figure]:
    """``Flow.runs()`` over 1,000 runs on moto S3, batched against one GET at a time."""
    return batched_against_serial(ctx, "bench-runs", "get_many per page of runs", _write_runs, _compare,
                                  ("Flow.runs() over {} runs on moto S3", "Flow.runs() over {} runs, S3 10 ms away"),
                                  (ctx.n(1000, 50), ctx.n(200, 20)))
