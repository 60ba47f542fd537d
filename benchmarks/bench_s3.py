"""S3BlobStore against plain sequential boto3 calls, on a moto server this script starts.

Run: ``.venv/bin/python benchmarks/bench_s3.py [--count 2000] [--size-kb 10] [--large-mb 500]
[--latency-ms 0,10] [--workers 32] [--rounds 3] [--skip-large] [--skip-small]``.

* small: ``count`` artifacts of ``size-kb`` (content-addressed keys, stored form ``R`` + payload):
  ``put_many`` + ``get_many`` against one ``put_object`` then one ``get_object`` per artifact.
  Run once per ``--latency-ms`` value: 0 is moto on localhost (both sides share this machine's
  CPUs, so the ceiling is CPU, not waiting), others put a proxy in front that holds every byte
  that long in each direction, as a network to S3 would (goal: >= 5x).
* large: one ``large-mb`` artifact from a file: ``put_file`` (multipart, parts in parallel) +
  ``open()`` streamed and checked against its sha256 (parallel ranged GETs), against
  ``put_object(Body=file)`` + ``get_object()`` streamed in 1 MiB chunks (goal: >= 1x). On a
  localhost endpoint the store reads one stream; the ranged (parallel) read is timed too. Peak
  memory growth of each is sampled from /proc/self/statm.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from moto_server import MotoServer, ProxyProcess  # noqa: E402

from mfc.stores.artifacts import data_key  # noqa: E402
from mfc.stores.s3 import S3BlobStore  # noqa: E402

MiB = 1024 * 1024
SMALL_GOAL = 5.0
LARGE_GOAL = 1.0


class PeakRss:
    """Samples this process's resident memory while a block runs; ``growth`` in bytes."""

    def __init__(self) -> None:
        self.growth = 0
        self._stop = threading.Event()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakRss:
        self._base = self.rss()
        self._peak = self._base
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, self.rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self.rss())
        self.growth = self._peak - self._base


def configured_store(bucket: str, endpoint: str, workers: int, **options: object) -> S3BlobStore:
    """A store as mfc builds it (its own client, from MFC_S3_ENDPOINT_URL and the environment)."""
    from mfc.aws import s3_settings

    os.environ.update(MFC_S3_ENDPOINT_URL=endpoint, MFC_CONFIG=os.devnull + ".toml")
    store = S3BlobStore(f"s3://{bucket}/ds", settings=s3_settings(), workers=workers, **options)
    store.client  # noqa: B018 - built now, while the environment says where
    return store


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def small(moto: MotoServer, endpoint: str, count: int, size: int, workers: int) -> tuple[float, float]:
    payloads = [os.urandom(size) for _ in range(count)]
    items = {data_key("Bench", hashlib.sha256(p).hexdigest()): b"R" + p for p in payloads}
    keys = list(items)

    bucket = moto.new_bucket("bench-plain")
    plain = moto.client(endpoint=endpoint)

    def sequential() -> None:
        for key, data in items.items():
            plain.put_object(Bucket=bucket, Key=key, Body=data)
        for key in keys:
            assert plain.get_object(Bucket=bucket, Key=key)["Body"].read() == items[key]

    store = configured_store(moto.new_bucket("bench-store"), endpoint, workers)

    def batched() -> None:
        store.put_many(items)
        assert store.get_many(keys) == items

    return timed(sequential), timed(batched)


def large(moto: MotoServer, size_mb: int, workers: int, rounds: int) -> None:
    staging = tempfile.mkdtemp(prefix="bench-s3-")
    source = os.path.join(staging, "source")
    payload, stored = hashlib.sha256(), hashlib.sha256(b"R")
    with open(source, "wb") as fh:
        fh.write(b"R")
        for _ in range(size_mb):
            block = os.urandom(MiB)
            payload.update(block)
            stored.update(block)
            fh.write(block)
    key, whole = data_key("Bench", payload.hexdigest()), stored.hexdigest()

    bucket = moto.new_bucket("bench-plain")
    plain = moto.client()
    store = configured_store(moto.new_bucket("bench-store"), moto.endpoint, workers)

    def plain_put() -> None:
        with open(source, "rb") as fh:
            plain.put_object(Bucket=bucket, Key=key, Body=fh)

    def plain_get() -> None:
        check = hashlib.sha256()
        for chunk in plain.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(MiB):
            check.update(chunk)
        assert check.hexdigest() == whole

    def store_put() -> None:
        spool = os.path.join(staging, "spool")
        os.link(source, spool)  # put_file consumes its file
        store.put_file(key, spool)

    def store_get(source_store: S3BlobStore = store) -> None:
        check = hashlib.sha256()
        with source_store.open(key) as fh:  # checked against the key's sha256 as it streams
            while chunk := fh.read(MiB):
                check.update(chunk)
        assert check.hexdigest() == whole

    print(f"  store: upload checksum {store._checksum.get('ChecksumAlgorithm', 'botocore default')}, "
          f"content checked by sha256 on read; median of {rounds} rounds")
    steps = (("boto3 put_object", plain_put), ("store put_file", store_put),
             ("boto3 get_object", plain_get), ("store open", store_get))
    times: dict[str, list[float]] = {name: [] for name, _ in steps}
    peaks: dict[str, int] = dict.fromkeys(times, 0)
    for round_ in range(rounds):
        plain.delete_object(Bucket=bucket, Key=key)
        store.delete(key)  # also forgets it, so put_file uploads again
        order = steps if round_ % 2 == 0 else (steps[1], steps[0], steps[3], steps[2])  # no order bias
        for name, fn in order:
            with PeakRss() as peak:
                times[name].append(timed(fn))
            peaks[name] = max(peaks[name], peak.growth)
    ranged = S3BlobStore(store.root, client=store.client, workers=workers, parallel_reads=True)
    with PeakRss() as peak:
        times["store open ranged"] = [timed(lambda: store_get(ranged))]
    peaks["store open ranged"] = peak.growth
    for name, values in times.items():
        seconds = statistics.median(values)
        print(f"  {name:18s} {seconds:6.2f} s  {size_mb / seconds:7.1f} MB/s  peak RSS +{peaks[name] / MiB:5.0f} MiB"
              f"   ({', '.join(f'{v:.2f}' for v in values)})")
    os.unlink(source)
    os.rmdir(staging)
    plain_total = statistics.median(times["boto3 put_object"]) + statistics.median(times["boto3 get_object"])
    store_total = statistics.median(times["store put_file"]) + statistics.median(times["store open"])
    ratio = plain_total / store_total
    verdict = "ok" if ratio >= LARGE_GOAL else "below goal"
    print(f"  put+get: boto3 {plain_total:.2f} s, store {store_total:.2f} s -> {ratio:.2f}x "
          f"(goal >= {LARGE_GOAL:g}x: {verdict})")
    print("  ('store open ranged' forces the parallel ranged GETs used against remote endpoints; moto "
          "reads the whole object for every range, so here it measures moto)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size-kb", type=int, default=10)
    parser.add_argument("--large-mb", type=int, default=500)
    parser.add_argument("--latency-ms", default="0,10", help="one-way latencies to try, comma-separated")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-small", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the large transfer (median)")
    args = parser.parse_args()

    print(f"CPUs: {os.cpu_count()}; moto server in a subprocess on 127.0.0.1")
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    with MotoServer() as moto:
        for latency in ([] if args.skip_small else [float(x) for x in args.latency_ms.split(",")]):
            label = f"{args.count} x {args.size_kb} KB, {latency:g} ms one-way latency"
            if latency:
                with ProxyProcess(moto.port, delay=latency / 1000) as proxy:
                    seq, par = small(moto, proxy.endpoint, args.count, args.size_kb * 1024, args.workers)
            else:
                seq, par = small(moto, moto.endpoint, args.count, args.size_kb * 1024, args.workers)
            ratio = seq / par
            verdict = "ok" if ratio >= SMALL_GOAL else "below goal"
            print(f"small ({label}): sequential boto3 {seq:.2f} s ({2 * args.count / seq:.0f} req/s), "
                  f"put_many+get_many {par:.2f} s ({2 * args.count / par:.0f} req/s) -> {ratio:.1f}x "
                  f"(goal >= {SMALL_GOAL:g}x: {verdict})")
        if not args.skip_large:
            print(f"large (one {args.large_mb} MB artifact, direct to moto):")
            large(moto, args.large_mb, args.workers, args.rounds)


if __name__ == "__main__":
    main()
