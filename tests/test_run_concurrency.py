"""Runs side by side in one datastore, and tasks side by side in one run."""

from __future__ import annotations

import subprocess
import time

from support import (
    artifacts,
    clean_env,
    describe,
    flow_path,
    mfc_executable,
    only,
    run_flow,
    run_status,
    task_records,
)


def test_two_runs_at_once_in_one_datastore(root, tmp_path):
    procs = []
    for label in ("left", "right"):
        id_file = tmp_path / f"{label}.id"
        command = [mfc_executable(), "run", flow_path("fan"), "-q", "--run-id-file", str(id_file),
                   "--n", "3", "--sleep", "0.2", "--label", label]
        procs.append((label, id_file, subprocess.Popen(command, env=clean_env(root), stdout=subprocess.PIPE,
                                                       stderr=subprocess.PIPE, text=True)))
    run_ids = {}
    for label, id_file, proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"{label}: exit {proc.returncode}\n{out}\n{err}"
        run_ids[label] = id_file.read_text().strip()
    assert run_ids["left"] != run_ids["right"]
    for label, run_id in run_ids.items():
        assert run_status(root, "FanFlow", run_id) == "succeeded"
        assert [t["out"] for t in artifacts(root, "FanFlow", run_id, "body")] == [f"{label.upper()}-{i}" for i in range(3)]
        assert only(root, "FanFlow", run_id, "join")["outs"] == [f"{label.upper()}-{i}" for i in range(3)]
        assert only(root, "FanFlow", run_id, "start")["label"] == label


def _body_intervals(root, run_id):
    return [(r["started_at"], r["finished_at"]) for r in task_records(root, "FanFlow", run_id, "body")]


def test_max_workers_bounds_parallelism(root):
    timings = {}
    for workers in (1, 4):
        start = time.monotonic()
        proc, run_id = run_flow(root, flow_path("fan"), "--n", "4", "--sleep", "0.5",
                                extra=("-q", "--max-workers", str(workers)))
        timings[workers] = (time.monotonic() - start, _body_intervals(root, run_id))
        assert len(timings[workers][1]) == 4, describe(proc)
    serial_wall, serial = timings[1]
    parallel_wall, parallel = timings[4]
    # one worker: no two body tasks overlap
    ordered = sorted(serial)
    assert all(prev[1] <= nxt[0] + 0.01 for prev, nxt in zip(ordered, ordered[1:], strict=False)), ordered
    assert serial_wall >= 2.0
    # four workers: all four were running at the same moment
    assert max(s for s, _ in parallel) < min(f for _, f in parallel), parallel
    assert parallel_wall < serial_wall - 0.8, (parallel_wall, serial_wall)
