"""The metadata service (issue 12): a 100-way foreach recorded through ``--metadata service``
beside the same run on the local provider (interleaved, one invocation; the overhead per task
is the difference over the run's task count), and the web UI's runs page of a flow with 10,000
runs (rows written straight into the service's SQLite database, then the page fetched)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from figures import Figure
from procs import BenchError, median, spread

WIDTH = 100
TASKS = WIDTH + 3  # start, the items, join, end
PAGE_RUNS = 10_000
PAGE_FLOW = "ManyRunsFlow"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """``mfc service`` in a subprocess on a fresh SQLite database, with a token."""

    def __init__(self, ctx: Any, name: str) -> None:
        self.dir = ctx.tmp / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = f"sqlite:///{self.dir / 'service.db'}"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ctx = ctx
        self.proc: subprocess.Popen | None = None
        self.token = ""

    def _env(self) -> dict[str, str]:
        return {**{k: v for k, v in os.environ.items() if not k.startswith("MFC_")},
                "MFC_CONFIG": str(self.ctx.tmp / "no-config.toml"), "MFC_DATASTORE_ROOT": str(self.dir / ".mfc")}

    def __enter__(self) -> Service:
        made = subprocess.run(self.ctx.mfc_cmd("service", "token", "create", "--db", self.db), env=self._env(),
                              capture_output=True, text=True, timeout=60)
        tokens = [w for w in made.stdout.split() if w.startswith("mfc_")]
        if made.returncode != 0 or not tokens:
            raise BenchError(f"mfc service token create failed: {made.stderr.strip() or made.stdout.strip()}")
        self.token = tokens[0]
        self.proc = subprocess.Popen(self.ctx.mfc_cmd("service", "--db", self.db, "--port", str(self.port)),
                                     env=self._env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=1).read()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise BenchError(f"mfc service exited: {self.proc.stderr.read() if self.proc.stderr else ''}") from None
                time.sleep(0.2)
        raise BenchError("mfc service did not answer /health within 30 s")

    def __exit__(self, *_: Any) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def env(self) -> dict[str, str]:
        return {"MFC_METADATA": "service", "MFC_SERVICE_URL": self.url, "MFC_SERVICE_TOKEN": self.token}

    def get(self, path: str) -> tuple[float, bytes]:
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"Bearer {self.token}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read()
        return time.perf_counter() - started, body


def bench_service(ctx: Any) -> list[Figure]:
    """--metadata service overhead per task (100-way foreach) and the UI's runs page with 10,000 runs."""
    return [_foreach_overhead(ctx), _runs_page(ctx)]


def _foreach_overhead(ctx: Any) -> Figure:
    from suite import run_flow

    total = sum(i * i for i in range(WIDTH))
    args = ["--max-workers", "2", "--width", str(WIDTH)]
    with_service: list[float] = []
    local: list[float] = []
    with Service(ctx, "service-foreach") as service:
        run_flow(ctx, "mfc", "foreach", args, extra_env=service.env())  # warm-up: bytecode caches, the database
        for index in range(ctx.n(3)):
            order = ((service.env(), with_service), (None, local))
            for env, times in order if index % 2 == 0 else reversed(order):
                measured, reports = run_flow(ctx, "mfc", "foreach", args, extra_env=env)
                if reports[-1].get("total") != total:
                    raise BenchError(f"mfc foreach flow reported a wrong result: {reports[-1]}")
                times.append(measured.wall_s)
    per_task = (median(with_service) - median(local)) / TASKS
    figure = Figure("metadata service overhead per task (100-way foreach)", per_task, "s", goal=0.010,
                    metaflow_note="no counterpart" if ctx.metaflow else ctx.metaflow_note)
    figure.details.append(f"--metadata service {median(with_service):.3f} s ({spread(with_service)}), local provider "
                          f"{median(local):.3f} s ({spread(local)}), {TASKS} tasks, 2 workers, interleaved; "
                          "service: mfc service on SQLite on this machine")
    return figure


def _write_runs(db_url: str, count: int) -> None:
    """``count`` runs shaped as ``mfc run`` records them, straight into the service's database
    (``ui_runs_page.fill_runs``: finished, failed, crashed and running ones, with attempts)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ui_runs_page import fill_runs

    from mfc.service.db import open_database

    database = open_database(db_url)
    fill_runs(database, PAGE_FLOW, count)
    database.engine.dispose()


def _runs_page(ctx: Any) -> Figure:
    count = ctx.n(PAGE_RUNS, 500)
    with Service(ctx, "service-page") as service:
        _write_runs(service.db, count)
        service.get(f"/flows/{PAGE_FLOW}")  # warm-up
        times = [service.get(f"/flows/{PAGE_FLOW}")[0] for _ in range(ctx.n(10, 2))]
        _, body = service.get(f"/flows/{PAGE_FLOW}")
    if PAGE_FLOW.encode() not in body:
        raise BenchError("the runs page does not show the flow")
    figure = Figure(f"web UI runs page, flow with {count:,} runs", median(times), "s", goal=0.200,
                    metaflow_note="no counterpart" if ctx.metaflow else ctx.metaflow_note)
    figure.details.append(f"GET /flows/{PAGE_FLOW} (first page of 50), median of {len(times)} ({spread(times)}), "
                          "SQLite, server-rendered")
    return figure


def bench_cards(ctx: Any) -> list[Figure]:
    """@card's cost per task: a 20-task foreach with and without a default card (interleaved)."""
    from cards import TASKS as CARD_TASKS
    from cards import measure

    result = measure(ctx.n(5, 1))
    plain, carded = result["without @card"], result["with @card"]
    figure = Figure("@card, added per task (20-task foreach)", (carded - plain) / CARD_TASKS, "s", goal=0.010,
                    metaflow_note="no counterpart" if ctx.metaflow else ctx.metaflow_note)
    figure.details.append(f"without @card {plain:.3f} s, with a default card on every task {carded:.3f} s (medians, "
                          "interleaved); a task without @card does no card work at all")
    return [figure]


SERVICE_BENCHMARKS = {"service": bench_service, "cards": bench_cards}
