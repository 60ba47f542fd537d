"""``S3.get_many`` (Metaflow's S3 API on mfc's transfer layer) against sequential boto3
``get_object`` of the same keys, on a moto server this script starts.

Run: ``.venv/bin/python benchmarks/bench_s3_api.py [--count 1000] [--size 100] [--rounds 3]``;
prints one line: ``get_many N objects: boto3 sequential X s, S3.get_many Y s -> Rx`` (the best
of the rounds of each, run in turn).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from moto_server import MotoServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100, help="bytes per object")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, interleaved; the best of each counts")
    args = parser.parse_args()
    with MotoServer() as server:
        os.environ.update(MFC_S3_ENDPOINT_URL=server.endpoint, MFC_CONFIG=os.devnull + ".toml",
                          AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
        import boto3

        from mfc import S3

        client = boto3.client("s3", endpoint_url=server.endpoint)
        client.create_bucket(Bucket="bench")
        keys = [f"obj/{i:05d}" for i in range(args.count)]
        many = sequential = float("inf")
        with S3(s3root="s3://bench/api") as s3:
            s3.put_many([(key, os.urandom(args.size)) for key in keys])
            for _ in range(args.rounds):  # interleaved, best of each: other load on the machine hits both alike
                t0 = time.perf_counter()
                got = s3.get_many(keys)
                many = min(many, time.perf_counter() - t0)
                assert len(got) == len(keys) and all(obj.size == args.size for obj in got)
                t0 = time.perf_counter()
                for key in keys:
                    client.get_object(Bucket="bench", Key=f"api/{key}")["Body"].read()
                sequential = min(sequential, time.perf_counter() - t0)
    print(f"get_many {args.count} objects: boto3 sequential {sequential:.2f} s, S3.get_many {many:.2f} s "
          f"-> {sequential / many:.2f}x")


if __name__ == "__main__":
    main()
