"""A run's status from its facts: the pure status function on each combination of facts, the
probe of the driving process, and what readers (``mfc runs``, the client) show for crashed runs
and for runs recorded before leases existed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import describe, flow_path, metadata, mfc

from mfc.client import Run, default_namespace, namespace
from mfc.client import metadata as client_metadata
from mfc.graph import load_graph
from mfc.runner.resume import Clone, unfinished_steps
from mfc.stores.lease import HostIdentity, driver_record, here, lease_record, probe, process_start
from mfc.stores.runstatus import LEGACY_GRACE_SECONDS, run_state

NOW = 1_800_000_000.0
DRIVER = {"host": "h1", "boot_id": "b", "pid_ns": "pid:[1]", "pid": 123, "pid_start": "99", "interval": 5.0,
          "timeout": 20.0}


def lease(refreshed_at: float, **extra) -> dict:
    return {**lease_record(DRIVER, now=refreshed_at, beat=3), **extra}


# -- the pure function ---------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["succeeded", "failed", "interrupted"])
@pytest.mark.parametrize("process", ["alive", "gone", None])
def test_a_final_status_wins_over_any_lease(status, process):
    state = run_state({"status": status, "finished_at": NOW - 5}, lease(NOW - 100), DRIVER, NOW - 200, NOW, process)
    assert (state.status, state.ended_at, state.reason) == (status, NOW - 5, None)


@pytest.mark.parametrize("process", ["alive", None])
def test_a_fresh_lease_is_running(process):
    state = run_state(None, lease(NOW - 3), DRIVER, NOW - 60, NOW, process)
    assert (state.status, state.ended_at, state.ended) == ("running", None, False)


def test_a_gone_driver_is_crashed_at_once_with_when_and_why():
    state = run_state(None, lease(NOW - 3), DRIVER, NOW - 60, NOW, "gone")
    assert state.status == "crashed" and state.ended
    assert state.ended_at == NOW - 3  # its last heartbeat: the duration stops growing there
    assert "the process driving it (pid 123 on host h1) is gone" in state.reason
    assert "last heartbeat at " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(NOW - 3)) in state.reason


def test_a_reused_pid_is_crashed():
    state = run_state(None, lease(NOW - 3), DRIVER, NOW - 60, NOW, "reused")
    assert state.status == "crashed" and "is now another process" in state.reason


def test_an_expired_lease_seen_from_another_host_is_crashed():
    state = run_state(None, lease(NOW - 25), DRIVER, NOW - 60, NOW, None)
    assert state.status == "crashed" and state.ended_at == NOW - 25
    assert "its lease expired at" in state.reason and "pid 123 on host h1" in state.reason


def test_an_expired_lease_of_a_live_local_process_is_still_running():
    # on the same machine the process itself is the proof, whatever delayed its heartbeat
    assert run_state(None, lease(NOW - 25), DRIVER, NOW - 60, NOW, "alive").status == "running"


def test_before_the_first_heartbeat_the_run_record_driver_holds_until_its_timeout():
    assert run_state(None, None, DRIVER, NOW - 10, NOW, None).status == "running"
    late = run_state(None, None, DRIVER, NOW - 30, NOW, None)
    assert late.status == "crashed" and late.ended_at == NOW - 30
    gone = run_state(None, None, DRIVER, NOW - 1, NOW, "gone")
    assert gone.status == "crashed" and gone.ended_at == NOW - 1


def test_without_a_heartbeat_only_the_local_process_can_tell():
    driver = {**DRIVER, "interval": 0, "timeout": None}
    assert run_state(None, None, driver, NOW - 9999, NOW, None).status == "running"
    assert run_state(None, None, driver, NOW - 9999, NOW, "gone").status == "crashed"


def test_a_run_recorded_without_a_lease():
    assert run_state(None, None, None, NOW - 60, NOW, None).status == "running"
    old = run_state(None, None, None, NOW - LEGACY_GRACE_SECONDS - 60, NOW, None)
    assert old.status == "crashed" and old.ended_at == NOW - LEGACY_GRACE_SECONDS - 60
    assert "no lease" in old.reason
    active = run_state(None, None, None, NOW - 3 * LEGACY_GRACE_SECONDS, NOW, None, last_activity=NOW - 60)
    assert active.status == "running"
    stale = run_state(None, None, None, NOW - 3 * LEGACY_GRACE_SECONDS, NOW, None, last_activity=NOW - 2 * LEGACY_GRACE_SECONDS)
    assert stale.status == "crashed" and stale.ended_at == NOW - 2 * LEGACY_GRACE_SECONDS


def test_a_final_record_without_a_known_status_does_not_hide_the_lease():
    assert run_state({"finished_at": NOW}, lease(NOW - 3), DRIVER, NOW - 60, NOW, "gone").status == "crashed"


# -- the probe -------------------------------------------------------------------------------------

def test_probe_of_this_process_a_dead_one_a_reused_pid_and_another_host():
    me = driver_record(5.0, 20.0)
    assert me["pid"] == os.getpid() and me["pid_start"] == process_start(os.getpid())
    assert probe(me) == "alive"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = driver_record(5.0, 20.0, pid=child.pid)
    child.wait()
    assert probe(dead) == "gone"
    assert probe({**me, "pid_start": str(int(me["pid_start"]) + 1)}) == "reused"
    assert probe({**me, "host": here().host + "-other"}) is None
    assert probe({**me, "pid_ns": "pid:[0]"}) is None  # a container with the host's name: pids mean nothing
    assert probe(me, HostIdentity(here().host, "another-boot", here().pid_ns)) is None


def test_a_zombie_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    record = driver_record(5.0, 20.0, pid=child.pid)
    deadline = time.monotonic() + 10
    while process_start(child.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.02)  # exited, not reaped: /proc still lists it, as a zombie
    assert Path(f"/proc/{child.pid}").exists()
    assert probe(record) == "gone"
    child.wait()


# -- what readers show -----------------------------------------------------------------------------

def write_run(root: Path, flow: str, run_id: str, record: dict, status: dict | None = None,
              lease_doc: dict | None = None) -> None:
    run_dir = root / flow / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "_run.json").write_text(json.dumps({"flow": flow, "run_id": run_id, "user": "ann", "tags": [],
                                                   "system_tags": ["user:ann"], **record}))
    if status is not None:
        (run_dir / "_status.json").write_text(json.dumps(status))
    if lease_doc is not None:
        (run_dir / "_lease.json").write_text(json.dumps(lease_doc))


def test_runs_lists_a_run_whose_lease_expired_elsewhere_as_crashed(root):
    now = time.time()
    driver = {**DRIVER, "host": here().host + "-elsewhere"}
    write_run(root, "LeaseFlow", "100", {"created_at": now - 120, "driver": driver},
              lease_doc=lease_record(driver, now=now - 60))
    write_run(root, "LeaseFlow", "200", {"created_at": now - 10, "driver": driver},
              lease_doc=lease_record(driver, now=now - 1))
    first = mfc(root, "runs", "LeaseFlow", "--json")
    assert first.returncode == 0, describe(first)
    rows = {r["run_id"]: r for r in json.loads(first.stdout)}
    assert rows["100"]["status"] == "crashed" and rows["200"]["status"] == "running"
    assert "its lease expired" in rows["100"]["error"]
    assert rows["100"]["finished_at"] == pytest.approx(now - 60, abs=0.01)
    table = mfc(root, "runs", "LeaseFlow", "--status", "crashed")
    assert table.returncode == 0, describe(table)
    [row] = table.stdout.splitlines()[1:]
    assert row.split()[:2] == ["100", "crashed"] and row.split()[4] == "60.0s"  # not growing: 60 s, then it died


@pytest.fixture
def client_root(root):
    client_metadata(str(root))
    namespace(None)
    yield root
    client_metadata(None)
    default_namespace()


def test_client_shows_a_crashed_run_as_finished_and_unsuccessful(client_root):
    root = client_root
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    driver = driver_record(5.0, 20.0, pid=child.pid)
    child.wait()
    now = time.time()
    write_run(root, "GoneFlow", "300", {"created_at": now - 30, "driver": driver},
              lease_doc=lease_record(driver, now=now - 2))
    run = Run("GoneFlow/300")
    assert run.status == "crashed" and run.finished and not run.successful
    assert f"(pid {child.pid} on host {driver['host']}) is gone" in run.error
    assert run.finished_at is not None and abs(run.finished_at.timestamp() - (now - 2)) < 0.01


def test_runs_recorded_before_leases_still_list(root):
    now = time.time()
    write_run(root, "OldFlow", "10", {"created_at": now - 2 * LEGACY_GRACE_SECONDS})
    write_run(root, "OldFlow", "20", {"created_at": now - 30})
    write_run(root, "OldFlow", "30", {"created_at": now - 3 * LEGACY_GRACE_SECONDS},
              status={"status": "succeeded", "finished_at": now - 3 * LEGACY_GRACE_SECONDS + 5})
    write_run(root, "OldFlow", "40", {"created_at": now - 3 * LEGACY_GRACE_SECONDS})
    task = root / "OldFlow" / "40" / "start" / "1"
    task.mkdir(parents=True)
    (task / "0.json").write_text(json.dumps({"status": "ok", "artifacts": {}, "started_at": now - 100, "finished_at": now - 90}))
    proc = mfc(root, "runs", "OldFlow", "--json")
    assert proc.returncode == 0, describe(proc)
    rows = {r["run_id"]: r for r in json.loads(proc.stdout)}
    assert {k: r["status"] for k, r in rows.items()} == {"10": "crashed", "20": "running", "30": "succeeded",
                                                         "40": "running"}
    assert "no lease" in rows["10"]["error"]
    table = mfc(root, "runs", "OldFlow")
    assert table.returncode == 0 and "crashed" in table.stdout, describe(table)


# -- resume planning --------------------------------------------------------------------------------

def test_steps_an_ended_run_left_unfinished():
    graph = load_graph(flow_path("foreach"), "ForeachFlow")
    start = Clone("start", "1", {"status": "ok", "foreach_stack": [],
                                 "foreach": {"var": "letters", "num_splits": 4, "items": ["a", "b", "c", "d"]}})

    def body(task_id: str, index: int) -> Clone:
        frame = {"step": "start", "var": "letters", "num_splits": 4, "index": index, "input": "x"}
        return Clone("body", task_id, {"status": "ok", "foreach_stack": [frame], "foreach": None})

    assert unfinished_steps(graph, []) == {"start"}
    assert unfinished_steps(graph, [start]) == {"body"}  # crashed before any item started
    assert unfinished_steps(graph, [start, body("2", 0), body("3", 1)]) == {"body"}
    every = [start] + [body(str(i + 2), i) for i in range(4)]
    assert unfinished_steps(graph, every) == {"join"}
    join = Clone("join", "6", {"status": "ok", "foreach_stack": [], "foreach": None})
    end = Clone("end", "7", {"status": "ok", "foreach_stack": [], "foreach": None})
    assert unfinished_steps(graph, [*every, join, end]) == set()


def test_metadata_state_reads_the_newest_heartbeat(root):
    now = time.time()
    driver = {**DRIVER, "host": here().host + "-elsewhere"}
    write_run(root, "BeatFlow", "1", {"created_at": now - 100, "driver": driver})
    meta = metadata(root)
    assert meta.state("BeatFlow", "1").status == "crashed"  # the record's driver expired long ago
    meta.write_lease("BeatFlow", "1", lease_record(driver, now=now))
    assert meta.state("BeatFlow", "1").status == "running"
    meta.finish_run("BeatFlow", "1", "failed", {"error": "x"})
    assert meta.state("BeatFlow", "1").status == "failed"


# -- the keeper ---------------------------------------------------------------------------------------

class _FlakyMetadata:
    """Fails the first two heartbeat writes, then records them."""

    def __init__(self) -> None:
        self.failures = 2
        self.leases: list[dict] = []

    def write_lease(self, flow: str, run_id: str, lease_doc: dict) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("the store is away")
        self.leases.append(lease_doc)


def test_the_keeper_survives_failed_heartbeats_warns_once_and_stops(capsys):
    from mfc.runner.lease import LeaseKeeper

    meta = _FlakyMetadata()
    keeper = LeaseKeeper(meta, "F", "1", driver_record(0.02, 0.1))  # type: ignore[arg-type]
    keeper.start()
    deadline = time.monotonic() + 10
    while len(meta.leases) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    keeper.stop()
    assert time.monotonic() - started < 0.5
    count = len(meta.leases)
    time.sleep(0.1)
    assert len(meta.leases) == count  # stopped means stopped
    assert [lease["beat"] for lease in meta.leases[:3]] == [2, 3, 4]
    warnings = capsys.readouterr().err.strip().splitlines()
    assert warnings == ["mfc: warning: could not refresh the lease of run F/1 (retrying): the store is away"]


def test_measure_refresh_reports_a_heartbeat_write(tmp_path):
    from mfc.runner.lease import measure_refresh

    seconds = measure_refresh(str(tmp_path / "ds"), beats=5)
    assert 0 < seconds < 1
    assert not list((tmp_path / "ds").rglob("_lease.json"))
