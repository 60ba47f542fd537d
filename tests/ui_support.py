"""Helpers of the web UI tests: write runs through the service's API the way real runs do (the
run record with its graph summary and driver, attempts registered when they start and completed
with TaskRecord-shaped records, leases, final status), and a logged-in browser."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
import pytest

from mfc.stores.lease import driver_record
from mfc.stores.taskrecord import Ending, TaskRecord

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".screenshots")

FOREACH_GRAPH = {"start": ["start", ["body"], "letters", False], "body": ["linear", ["join"], None, False],
                 "join": ["join", ["end"], None, True], "end": ["end", [], None, False]}
BRANCH_GRAPH = {"start": ["start", ["a", "b"], None, False], "a": ["linear", ["join"], None, False],
                "b": ["linear", ["join"], None, False], "join": ["join", ["end"], None, True],
                "end": ["end", [], None, False]}


def run_info(graph: dict[str, list], driver: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A run record as ``mfc run`` writes it (driven by this test process unless ``driver`` says)."""
    info: dict[str, Any] = {"user": "tester", "tags": [], "system_tags": ["user:tester"], "parameters": {},
                            "graph": graph, "trigger": {"kind": "manual"},
                            "driver": driver if driver is not None else driver_record(5.0, 60.0)}
    info.update(extra)
    return info


def create_run(c: httpx.Client, flow: str, info: dict[str, Any], run_id: str | None = None) -> str:
    r = c.post(f"/api/v1/flows/{flow}/runs", json={"run_id": run_id, "info": info})
    assert r.status_code in (200, 201), r.text
    return str(r.json()["run_id"])


def record(flow: str, run_id: str, step: str, task_id: str, attempt: int, ending: Ending, started: float,
           finished: float, artifacts: dict[str, list] | None = None, **extra: Any) -> dict[str, Any]:
    """An attempt record as the task entrypoint writes it (:meth:`TaskRecord.to_dict`)."""
    rec = TaskRecord(pathspec=f"{flow}/{run_id}/{step}/{task_id}", attempt=attempt, ending=ending,
                     artifacts=artifacts or {}, started_at=started, finished_at=finished, **extra)
    if ending is Ending.FAILED:
        rec.exception = {"type": "ValueError", "message": "boom", "traceback": "Traceback ...\nValueError: boom"}
    return rec.to_dict()


def start_task(c: httpx.Client, flow: str, run_id: str, step: str, task_id: str, attempt: int = 0,
               index: int | None = None, item: str | None = None, logs: dict[str, str] | None = None,
               started: float | None = None) -> float:
    started = time.time() if started is None else started
    entry = {"step": step, "task_id": task_id, "attempt": attempt, "started_at": started,
             "foreach_index": index, "foreach_item": item, "logs": logs, "host": "testhost"}
    r = c.post(f"/api/v1/flows/{flow}/runs/{run_id}/attempts", json={"attempts": [entry]})
    assert r.status_code == 200, r.text
    return started


def finish_task(c: httpx.Client, flow: str, run_id: str, step: str, task_id: str, attempt: int = 0,
                ending: Ending = Ending.OK, started: float | None = None, final: bool = True,
                index: int | None = None, item: str | None = None, logs: dict[str, str] | None = None,
                **record_fields: Any) -> None:
    """Complete an attempt (registering its start first unless ``started`` says it was)."""
    if started is None:
        started = start_task(c, flow, run_id, step, task_id, attempt, index, item, logs)
    finished = time.time()
    entry = {"step": step, "task_id": task_id, "attempt": attempt, "started_at": started, "finished_at": finished,
             "final": final, "foreach_index": index, "foreach_item": item, "logs": logs, "host": "testhost",
             "record": record(flow, run_id, step, task_id, attempt, ending, started, finished, **record_fields)}
    r = c.post(f"/api/v1/flows/{flow}/runs/{run_id}/attempts", json={"attempts": [entry]})
    assert r.status_code == 200, r.text


def finish_run(c: httpx.Client, flow: str, run_id: str, status: str) -> None:
    r = c.put(f"/api/v1/flows/{flow}/runs/{run_id}/final", json={"status": status})
    assert r.status_code == 200, r.text


def bench_module() -> Any:
    """benchmarks/ui_runs_page.py (its ``fill_runs`` makes the 10,000 runs of the speed test)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "ui_runs_page.py")
    spec = importlib.util.spec_from_file_location("ui_runs_page", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def need_chromium() -> None:
    """Skip without the system browser, unless CI is true (then the test fails)."""
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{CHROMIUM} is needed in CI (apt-get install chromium)", pytrace=False)
    pytest.skip(f"no system browser at {CHROMIUM}")


def screenshot(page: Any, name: str) -> str:
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.join(SCREENSHOTS, f"{name}.png")
    page.screenshot(path=path, full_page=True)
    return path


def log_in(page: Any, url: str, token: str) -> None:
    """Log in through the login form, as a person would."""
    page.goto(f"{url}/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
