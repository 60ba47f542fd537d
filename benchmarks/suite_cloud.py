"""The benchmarks of the container and cloud paths: an unchanged image build, what
``--local-docker`` adds per task over a local process, the S3 store against plain boto3 on a moto
server (``bench_s3.py``), and a 5-step ``--batch`` flow end to end in the sandbox.

Those that need a Docker engine, the ``mfc-base`` image (``make image``) or the registry binary
raise :class:`BenchSkipped` with what to do, so ``make bench`` still runs everywhere else.
Each runs the ``mfc`` command line in a subprocess, as a user would.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from figures import Figure
from flows import write_flow
from procs import BenchError, BenchSkipped, bench_env, median, run_measured, spread

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from moto_server import free_ports  # noqa: E402

NO_COUNTERPART = "no counterpart (Metaflow has no local containers)"


def _project(ctx: Any, kind: str, steps: int) -> Path:
    """A fresh project directory holding ``flow.py`` (a linear flow) for one benchmark."""
    directory = ctx.tmp / "cloud" / kind
    write_flow(directory, "linear", "mfc", steps)
    return directory


def _env(ctx: Any, directory: Path, **extra: str) -> dict[str, str]:
    return bench_env(MFC_DATASTORE_ROOT=str(directory / ".mfc"), MFC_CONFIG=str(ctx.tmp / "no-config.toml"),
                     **extra)


def _mfc(ctx: Any, directory: Path, env: dict[str, str], *args: str) -> float:
    """Run ``mfc ARGS`` in ``directory``; its wall time, or BenchError with its output."""
    measured = run_measured(ctx.mfc_cmd(*args), directory, env)
    return measured.wall_s


def _require_docker_and_base() -> str:
    """The base image's tag, or BenchSkipped saying what is missing."""
    from mfc.builder.engine import docker_available, docker_client
    from mfc.builder.image import default_base

    ok, reason = docker_available()
    if not ok:
        raise BenchSkipped(f"{reason.splitlines()[0]} (`make docker-up`)")
    base = default_base()
    client = docker_client()
    try:
        client.images.get(base)
    except Exception:  # noqa: BLE001 - any lookup failure means: not there
        raise BenchSkipped(f"the base image {base} is not built (`make image`)") from None
    finally:
        client.close()
    return base


def bench_image(ctx: Any) -> list[Figure]:
    """``mfc image build`` of a flow whose image exists: nothing changed, then only its code."""
    _require_docker_and_base()
    directory = _project(ctx, "image", 3)
    env = _env(ctx, directory)
    first = _mfc(ctx, directory, env, "image", "build", "flow.py", "-q")
    unchanged = [_mfc(ctx, directory, env, "image", "build", "flow.py", "-q") for _ in range(ctx.n(5, 1))]
    with open(directory / "flow.py", "a") as fh:
        fh.write("# a code-only change\n")
    code_only = _mfc(ctx, directory, env, "image", "build", "flow.py", "-q")
    figure = Figure("image build, nothing changed", median(unchanged), "s", goal=1.0, metaflow_note=NO_COUNTERPART)
    figure.details.append(f"runs: {spread(unchanged)}; first build {first:.2f} s (image made or found); "
                          f"after a code-only change {code_only:.2f} s (the image is reused)")
    return [figure]


def bench_local_docker(ctx: Any) -> list[Figure]:
    """A 10-step linear flow: ``--local-docker`` against local processes, per task."""
    _require_docker_and_base()
    steps = 10
    directory = _project(ctx, "local-docker", steps)
    env = _env(ctx, directory)
    warm = _mfc(ctx, directory, env, "run", "flow.py", "-q", "--local-docker")  # builds the flow image once
    local, docker = [], []
    for _ in range(ctx.n(3, 1)):  # interleaved, so both sides see the same machine
        local.append(_mfc(ctx, directory, env, "run", "flow.py", "-q"))
        docker.append(_mfc(ctx, directory, env, "run", "flow.py", "-q", "--local-docker"))
    per_task = max(0.0, (median(docker) - median(local)) / steps)
    figure = Figure("--local-docker, added per task", per_task, "s", goal=0.5, metaflow_note=NO_COUNTERPART)
    figure.details.append(f"{steps}-step flow: local processes {spread(local)}, containers {spread(docker)}; "
                          f"first container run {warm:.2f} s (flow image built or found)")
    return [figure]


_SMALL = re.compile(r"small \((\d+) x (\d+) KB, ([\d.]+) ms one-way latency\): sequential boto3 ([\d.]+) s .*"
                    r"put_many\+get_many ([\d.]+) s .*-> ([\d.]+)x")
_LARGE = re.compile(r"put\+get: boto3 ([\d.]+) s, store ([\d.]+) s -> ([\d.]+)x")


def bench_s3(ctx: Any) -> list[Figure]:
    """``bench_s3.py``: the S3 store's batched and multipart transfers against sequential boto3."""
    count, size_mb = ctx.n(2000, 200), ctx.n(500, 20)
    script = [ctx.python, str(HERE / "bench_s3.py")]
    output = run_measured([*script, "--count", str(count), "--large-mb", str(size_mb), "--rounds", str(ctx.n(2, 1)),
                           "--latency-ms", "0"], ctx.tmp, bench_env()).stdout
    # Behind 10 ms of latency sequential calls take ~37 ms each: fewer objects, the same ratio.
    output += run_measured([*script, "--count", str(ctx.n(500, 100)), "--latency-ms", "10", "--skip-large"],
                           ctx.tmp, bench_env()).stdout
    figures = []
    for match in _SMALL.finditer(output):
        n, kb, latency, seq, par, ratio = match.groups()
        where = "moto on localhost" if float(latency) == 0 else f"{float(latency):g} ms one-way latency"
        figure = Figure(f"S3 {n} x {kb} KB put+get vs boto3, {where}", float(ratio), "x",
                        goal=5.0 if float(latency) else None, higher_is_better=True,
                        metaflow_note="not measured")
        figure.details.append(f"sequential boto3 {float(seq):.2f} s, store put_many+get_many {float(par):.2f} s")
        if not float(latency):
            figure.details.append("(both sides share this machine's 2 cpus, so the ceiling is moto's CPU; the "
                                  "latency row is what a network to S3 looks like)")
        figures.append(figure)
    large = _LARGE.search(output)
    if len(figures) < 2 or not large:
        raise BenchError(f"bench_s3.py printed something unexpected: {output[-400:]!r}")
    boto, store, ratio = large.groups()
    figure = Figure(f"S3 one {size_mb} MB artifact put+get vs boto3", float(ratio), "x", goal=1.0,
                    higher_is_better=True, metaflow_note="not measured")
    figure.details.append(f"boto3 put_object+get_object {float(boto):.2f} s, store put_file+open {float(store):.2f} s")
    return [*figures, figure]


def bench_batch(ctx: Any) -> list[Figure]:
    """A 5-step flow in the sandbox with ``--batch`` and through Step Functions (moto, every task a container)."""
    _require_docker_and_base()
    from mfc.sandbox import registry

    if not registry.find_binary():
        raise BenchSkipped(f"docker-registry is not installed: {registry.INSTALL_HINT}")
    directory = _project(ctx, "batch", 5)
    port, registry_port = free_ports(2)
    state = directory / "sandbox"
    env = bench_env(MFC_CONFIG=str(directory / "config.toml"), MFC_PROFILE="sandbox", MFC_SANDBOX_DIR=str(state),
                    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    try:
        up = _mfc(ctx, directory, env, "sandbox", "up", "--port", str(port), "--registry-port", str(registry_port),
                  "--json")
        first = _mfc(ctx, directory, env, "run", "flow.py", "-q", "--batch")
        create = _mfc(ctx, directory, env, "sfn", "create", "flow.py")
        batch, sfn = [], []
        for _ in range(ctx.n(2, 1)):  # interleaved, so both see the same machine
            batch.append(_mfc(ctx, directory, env, "run", "flow.py", "-q", "--batch"))
            sfn.append(_mfc(ctx, directory, env, "sfn", "trigger", "flow.py", "--wait", "-q"))
    finally:
        run_measured(ctx.mfc_cmd("sandbox", "down", "--forget"), directory, env, check=False)
    figure = Figure("--batch 5-step flow in the sandbox", median(batch), "s", metaflow_note="not measured")
    figure.details.append(f"runs: {spread(batch)}; first run {first:.2f} s (builds and pushes the flow image); "
                          f"sandbox up {up:.1f} s")
    ratio = median(sfn) / median(batch)
    # The goal: the production path is no slower than the laptop-driven one (within the noise, 15%).
    production = Figure("Step Functions 5-step flow in the sandbox", median(sfn), "s", goal=round(median(batch) * 1.15, 2),
                        metaflow_note="not measured (Metaflow's Step Functions runs only on AWS)")
    production.details.append(f"runs: {spread(sfn)}; sfn/--batch {ratio:.2f}x; per state "
                              f"{median(sfn) / 5:.2f} s (--batch {median(batch) / 5:.2f} s per task), "
                              f"overhead {(median(sfn) - median(batch)) / 5:+.2f} s per state; "
                              f"mfc sfn create {create:.1f} s")
    return [figure, production]



_API = re.compile(r"get_many (\d+) objects: boto3 sequential ([\d.]+) s, S3.get_many ([\d.]+) s -> ([\d.]+)x")


def bench_s3_api(ctx: Any) -> list[Figure]:
    """``bench_s3_api.py``: ``S3.get_many`` of small objects beside sequential boto3 ``get_object``."""
    output = run_measured([ctx.python, str(HERE / "bench_s3_api.py"), "--count", str(ctx.n(1000, 100))],
                          ctx.tmp, bench_env()).stdout
    match = _API.search(output)
    if not match:
        raise BenchError(f"bench_s3_api.py printed something unexpected: {output[-400:]!r}")
    count, seq, many, ratio = match.groups()
    figure = Figure(f"S3.get_many of {count} small objects vs sequential boto3, moto on localhost", float(ratio), "x",
                    higher_is_better=True, metaflow_note="not measured")
    figure.details.append(f"sequential boto3 {float(seq):.2f} s, S3.get_many {float(many):.2f} s")
    return [figure]

CLOUD_BENCHMARKS = {
    "image": bench_image,
    "local-docker": bench_local_docker,
    "s3": bench_s3,
    "s3-api": bench_s3_api,
    "batch": bench_batch,
}
