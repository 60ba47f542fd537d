"""Load: 20 runs at once, each posting 50 tasks the way tasks do (a started entry, then a
finished one, in separate requests), through HTTP. Every record must be there afterwards; the
p50/p95 request latencies are printed (``-s`` shows them)."""

from __future__ import annotations

import statistics
import threading
import time

from service_support import client, db_url, service, unique  # noqa: F401

RUNS, TASKS = 20, 50


def test_twenty_concurrent_runs_of_fifty_tasks(service, db_url):  # noqa: F811
    flow = unique("Load")
    latencies: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(RUNS)
    run_ids: list[str] = []

    def timed(api, method: str, path: str, body: dict) -> dict:
        t0 = time.perf_counter()
        answer = api.request(method, path, json=body)
        latencies.append(time.perf_counter() - t0)
        if answer.status_code >= 300:
            errors.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
        return answer.json()

    def one_run() -> None:
        with client(service) as api:
            barrier.wait()
            run_id = timed(api, "POST", f"/api/v1/flows/{flow}/runs", {"info": {"user": "load"}})["run_id"]
            run_ids.append(run_id)
            url = f"/api/v1/flows/{flow}/runs/{run_id}/attempts"
            for i in range(TASKS):
                task = {"step": "work", "task_id": f"work-{i}", "attempt": 0}
                timed(api, "POST", url, {"attempts": [{**task, "started_at": time.time()}]})
                timed(api, "POST", url, {"attempts": [{**task, "finished_at": time.time(), "final": True,
                                                       "record": {"status": "ok", "ending": "ok",
                                                                  "artifacts": {"n": ["b3-" + "0" * 64, 4, "int"]}}}]})
            timed(api, "PUT", f"/api/v1/flows/{flow}/runs/{run_id}/final", {"status": "succeeded"})

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one_run) for _ in range(RUNS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    wall = time.perf_counter() - t0
    assert errors == []
    assert len(set(run_ids)) == RUNS
    with client(service) as api:
        for run_id in run_ids:
            assert api.get(f"/api/v1/flows/{flow}/runs/{run_id}").json()["status"] == "succeeded"
            tasks = api.get(f"/api/v1/flows/{flow}/runs/{run_id}/steps/work/tasks").json()["tasks"]
            assert len(tasks) == TASKS
            assert all(t["attempts"][0]["ending"] == "ok" and t["attempts"][0]["final"] for t in tasks)
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    print(f"\nload ({backend}): {len(latencies)} requests from {RUNS} runs x {TASKS} tasks in {wall:.1f}s: "
          f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")


def test_a_page_of_a_flow_with_ten_thousand_runs_is_fast(service, db_url):  # noqa: F811
    from mfc.service.schema import runs

    flow = unique("Many")
    now = time.time()
    rows = [{"flow": flow, "run_id": str(1_700_000_000_000 + i), "created_at": now, "user": "u",
             "info": {"flow": flow, "run_id": str(1_700_000_000_000 + i), "created_at": now, "user": "u"},
             "tags": [], "version": 1, "updated_at": now,
             "final": {"status": "succeeded", "finished_at": now}, "final_status": "succeeded", "finished_at": now}
            for i in range(10_000)]
    with service.db.write() as conn:
        conn.execute(runs.insert(), rows)
    with client(service) as api:
        t0 = time.perf_counter()
        first = api.get(f"/api/v1/flows/{flow}/runs", params={"limit": 50}).json()["runs"]
        deep = api.get(f"/api/v1/flows/{flow}/runs", params={"limit": 50, "before": "1700000000100"}).json()["runs"]
        elapsed = (time.perf_counter() - t0) / 2
    assert [r["run_id"] for r in first] == [str(1_700_000_000_000 + i) for i in range(9999, 9949, -1)]
    assert [r["run_id"] for r in deep] == [str(1_700_000_000_000 + i) for i in range(99, 49, -1)]
    print(f"\na page of 50 among 10,000 runs ({db_url.split(':')[0]}): {elapsed * 1000:.0f} ms")
    assert elapsed < 2.0
