"""Time the web UI's runs page of a flow with 10,000 runs (goal: under 200 ms).

Run: ``.venv/bin/python benchmarks/ui_runs_page.py [--db URL] [--runs N] [--repeat R]``. The runs
are inserted straight into the service's tables (one bulk insert), shaped as ``mfc run`` records
them: most finished, some still running, a few crashed, with tags and a few attempts each for the
newest ones; the page is then fetched over HTTP from a real uvicorn server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from typing import Any

GOAL_S = 0.2
GRAPH = {"start": ["start", ["body"], "items", False], "body": ["linear", ["join"], None, False],
         "join": ["join", ["end"], None, True], "end": ["end", [], None, False]}


def fill_runs(db: Any, flow: str, count: int, attempts_for: int = 200) -> None:
    """``count`` runs of ``flow`` in one bulk insert, and the attempts of the newest ``attempts_for``."""
    from sqlalchemy import insert, select

    from mfc.service.schema import attempts, runs
    from mfc.stores.lease import driver_record

    me = driver_record(5.0, 60.0)
    base = time.time() - count * 60
    rows = []
    for i in range(count):
        created = base + i * 60
        run_id = str(int(created * 1000))
        kind = "running" if i >= count - 3 else ("crashed" if i % 997 == 0 else ("failed" if i % 10 == 0 else "ok"))
        driver = me if kind == "running" else dict(me, pid=2**22 + 7)
        final = None if kind in ("running", "crashed") else {
            "status": "failed" if kind == "failed" else "succeeded", "finished_at": created + 42.0}
        info = {"user": f"user{i % 7}", "tags": [], "system_tags": [f"user:user{i % 7}"], "graph": GRAPH,
                "parameters": {"alpha": i}, "driver": driver, "flow": flow, "run_id": run_id, "created_at": created,
                "trigger": {"kind": "schedule", "name": "nightly"} if i % 3 == 0 else {"kind": "manual"}}
        rows.append({"flow": flow, "run_id": run_id, "created_at": created, "user": info["user"], "info": info,
                     "tags": ["nightly"] if i % 3 == 0 else [], "trigger": info["trigger"], "final": final,
                     "final_status": final["status"] if final else None,
                     "finished_at": final["finished_at"] if final else None, "lease": None, "lease_at": None,
                     "version": 1, "updated_at": created})
    with db.write() as conn:
        conn.execute(insert(runs), rows)
        newest = conn.execute(select(runs.c.id, runs.c.created_at).where(runs.c.flow == flow)
                              .order_by(runs.c.created_at.desc()).limit(attempts_for)).all()
        conn.execute(insert(attempts), [
            {"run": pk, "step": step, "task_id": step, "attempt": 0, "started_at": created + n,
             "finished_at": created + n + 1, "ending": "ok", "final": True, "record": None, "logs": None,
             "foreach_index": None, "foreach_item": None, "host": "h"}
            for pk, created in newest for n, step in enumerate(("start", "end"))])


def _clean(db: Any, flow: str, token: str) -> None:
    """Remove what the benchmark wrote (a --db given is left as it was found, tables aside)."""
    from sqlalchemy import delete

    from mfc.service.schema import attempts, runs, tokens

    with db.write() as conn:
        ids = [r.id for r in conn.execute(runs.select().where(runs.c.flow == flow)).all()]
        conn.execute(delete(attempts).where(attempts.c.run.in_(ids)))
        conn.execute(delete(runs).where(runs.c.flow == flow))
        conn.execute(delete(tokens).where(tokens.c.token_id == token.split("_")[1]))


def measure(url: str, token: str, flow: str, repeat: int) -> list[float]:
    import httpx

    took = []
    with httpx.Client(base_url=url, cookies={"mfc_token": token}, timeout=60) as c:
        c.get(f"/flows/{flow}").raise_for_status()
        for _ in range(repeat):
            started = time.perf_counter()
            c.get(f"/flows/{flow}").raise_for_status()
            took.append(time.perf_counter() - started)
    return took


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (default: a SQLite file in a temporary directory)")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)

    import socket

    import uvicorn

    from mfc.service.app import create_app
    from mfc.service.auth import create_token
    from mfc.service.db import open_database

    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(args.db or f"sqlite:///{os.path.join(tmp, 'service.db')}")
        flow = f"Bench{int(time.time())}"
        fill_runs(db, flow, args.runs)
        token = create_token(db, read_only=True, label="bench")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(db), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        try:
            took = measure(f"http://127.0.0.1:{port}", token, flow, args.repeat)
        finally:
            server.should_exit = True
            thread.join(10)
            _clean(db, flow, token)
            db.engine.dispose()
    median = statistics.median(took)
    print(f"ui runs page, {args.runs} runs ({db.dialect}): median {median * 1000:.0f} ms, "
          f"best {min(took) * 1000:.0f} ms (goal {GOAL_S * 1000:.0f} ms)")
    return median


if __name__ == "__main__":
    main()
