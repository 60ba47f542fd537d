"""The service metadata provider (``--metadata service``), end to end: real runs (``mfc run`` in a
subprocess) recording into a real metadata service (uvicorn on a free port, SQLite and
PostgreSQL), then read back through the service's API, the CLI and the client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from service_support import running_service
from support import clean_env, describe, flow_path, mfc, mfc_executable, run_flow

from mfc.stores.blob import open_blob_store
from mfc.stores.records import TaskRecords
from mfc.stores.service_client import ServiceClient

FOREACH_ITEMS = 4  # tests/flows/foreach.py's letters


def _env(service, **extra: str) -> dict[str, str]:
    return {"MFC_METADATA": "service", "MFC_SERVICE_URL": service.url, "MFC_SERVICE_TOKEN": service.token, **extra}


def _client(service) -> ServiceClient:
    return ServiceClient(service.url, service.token, retries=1)


def _attempt(client: ServiceClient, flow: str, run_id: str, step: str, task_id: str, attempt: int) -> dict:
    return client.get(f"/api/v1/flows/{flow}/runs/{run_id}/steps/{step}/tasks/{task_id}/attempts/{attempt}")


def _blob_tasks(root: Path, flow: str, run_id: str) -> dict[tuple[str, str, int], dict]:
    records = TaskRecords(open_blob_store(str(root)), flow)
    found = {}
    for step in records.steps(run_id):
        for task_id in records.tasks(run_id, step):
            for attempt in records.attempts(run_id, step, task_id):
                record = records.read(run_id, step, task_id, attempt)
                if record is not None:
                    found[(step, task_id, attempt)] = record
    return found


def test_a_run_records_in_the_service_the_records_the_datastore_holds(db_url, tmp_path, root):
    with running_service(db_url, tmp_path) as service:
        _, run_id = run_flow(root, flow_path("foreach"), env=_env(service))
        client = _client(service)
        run = client.get(f"/api/v1/flows/ForeachFlow/runs/{run_id}")
        assert run["status"] == "succeeded" and run["trigger"] == {"kind": "manual"}
        in_datastore = _blob_tasks(root, "ForeachFlow", run_id)
        assert len(in_datastore) == FOREACH_ITEMS + 3  # start, the items, join, end
        for (step, task_id, attempt), record in in_datastore.items():
            if step.startswith("_"):
                continue
            found = _attempt(client, "ForeachFlow", run_id, step, task_id, attempt)
            assert found["record"] == record, (step, task_id)
            assert found["final"] is True and found["ending"] == "ok"
            names = {a["name"] for a in found["artifacts"]}
            assert names == set(record["artifacts"]), (step, names)
        tasks = client.get(f"/api/v1/flows/ForeachFlow/runs/{run_id}/steps/body/tasks")["tasks"]
        assert sorted(t["foreach_index"] for t in tasks) == list(range(FOREACH_ITEMS))
        assert all(t["foreach_item"] is not None for t in tasks)


def test_runs_are_listed_and_read_through_the_service(db_url, tmp_path, root):
    with running_service(db_url, tmp_path) as service:
        _, first = run_flow(root, flow_path("linear"), env=_env(service))
        _, second = run_flow(root, flow_path("linear"), env=_env(service))
        listed = mfc(root, "runs", flow_path("linear"), env=_env(service))
        assert listed.returncode == 0, describe(listed)
        assert listed.stdout.index(second) < listed.stdout.index(first)
        code = ("from mfc import Flow, namespace\nnamespace(None)\n"
                "print([(r.id, r.successful) for r in Flow('LinearFlow').runs()][:2])")
        proc = subprocess.run([sys.executable, "-c", code], env=clean_env(root, _env(service)),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, describe(proc)
        assert proc.stdout.strip() == repr([(second, True), (first, True)])


def test_a_failed_step_is_failed_in_the_service(db_url, tmp_path, root):
    with running_service(db_url, tmp_path) as service:
        _, run_id = run_flow(root, flow_path("failing"), env=_env(service), expect=1)
        client = _client(service)
        run = client.get(f"/api/v1/flows/FailingFlow/runs/{run_id}")
        assert run["status"] == "failed"
        steps = {s["name"]: s for s in client.get(f"/api/v1/flows/FailingFlow/runs/{run_id}/steps")["steps"]}
        failed = [name for name, s in steps.items() if s["counts"].get("failed")]
        assert failed, steps


def test_an_unreachable_service_fails_the_run_at_start_in_one_line(root, tmp_path):
    env = {"MFC_METADATA": "service", "MFC_SERVICE_URL": "http://127.0.0.1:9", "MFC_SERVICE_RETRIES": "1"}
    proc, run_id = run_flow(root, flow_path("linear"), env=env, expect=2)
    assert run_id is None
    lines = proc.stderr.strip().splitlines()
    assert "metadata service at http://127.0.0.1:9" in lines[0] and "connection refused" in lines[0], describe(proc)
    assert "Traceback" not in proc.stderr
    assert not (root / "LinearFlow").exists()


def test_a_wrong_token_fails_the_run_at_start(db_url, tmp_path, root):
    with running_service(db_url, tmp_path) as service:
        env = {**_env(service), "MFC_SERVICE_TOKEN": "mfc_nope_nope"}
        proc, _ = run_flow(root, flow_path("linear"), env=env, expect=2)
        assert "401" in proc.stderr and "Traceback" not in proc.stderr, describe(proc)
        assert not (root / "LinearFlow").exists()


def test_service_fallback_records_in_the_datastore_only_after_a_warning(root):
    env = {"MFC_METADATA": "service", "MFC_SERVICE_URL": "http://127.0.0.1:9", "MFC_SERVICE_RETRIES": "1",
           "MFC_SERVICE_FALLBACK": "1"}
    proc, run_id = run_flow(root, flow_path("linear"), env=env)
    assert "recording in the datastore only" in proc.stderr, describe(proc)
    listed = mfc(root, "runs", flow_path("linear"))
    assert run_id in listed.stdout and "succeeded" in listed.stdout


def test_a_service_down_when_a_task_starts_fails_the_task_clearly(db_url, tmp_path, root):
    flow = tmp_path / "slowstart.py"
    flow.write_text(
        "import time\nfrom mfc import FlowSpec, step\n\n\nclass SlowStartFlow(FlowSpec):\n"
        "    @step\n    def start(self):\n        time.sleep(4)\n        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n        pass\n\n\nif __name__ == '__main__':\n    SlowStartFlow()\n")
    with running_service(db_url, tmp_path) as service:
        env = clean_env(root, _env(service, MFC_SERVICE_RETRIES="3"))
        proc = subprocess.Popen([mfc_executable(), "run", str(flow)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        client = _client(service)
        deadline = time.monotonic() + 30
        started: list = []
        while time.monotonic() < deadline and not started:
            time.sleep(0.2)
            run_ids = client.get("/api/v1/flows/SlowStartFlow/run-ids")["run_ids"] if client.get("/api/v1/flows")["flows"] else []
            if run_ids:
                started = client.get(f"/api/v1/flows/SlowStartFlow/runs/{run_ids[0]}/steps/start/tasks")["tasks"]
        assert started
    # the service is stopped while start sleeps: the end task cannot register and gives up
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "error: task SlowStartFlow/" in err and "/end/end failed: ServiceError: metadata service at" in err, err
    assert "cannot connect" in err and "after 3 tries" in err, err


def test_a_killed_run_is_crashed_in_the_service_never_running(db_url, tmp_path, root):
    with running_service(db_url, tmp_path) as service:
        env = clean_env(root, _env(service, MFC_LEASE_INTERVAL="0.5", MFC_LEASE_TIMEOUT="2"))
        proc = subprocess.Popen([mfc_executable(), "run", flow_path("sleeper"), "--pidfile", str(tmp_path / "pid")], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        client = _client(service)
        run_ids: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not run_ids:
            try:
                run_ids = client.get("/api/v1/flows/SleeperFlow/run-ids")["run_ids"]
            except Exception:  # noqa: BLE001 - the flow is not there yet
                time.sleep(0.2)
        assert run_ids
        assert client.get(f"/api/v1/flows/SleeperFlow/runs/{run_ids[0]}")["status"] == "running"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        status = "running"
        while time.monotonic() < deadline and status == "running":
            time.sleep(0.5)
            status = client.get(f"/api/v1/flows/SleeperFlow/runs/{run_ids[0]}")["status"]
        assert status == "crashed"


def test_concurrent_runs_lose_no_record(db_url, tmp_path, root):
    runs, width = 4, 10
    with running_service(db_url, tmp_path) as service:
        env = clean_env(root, _env(service))
        procs = [subprocess.Popen([mfc_executable(), "run", flow_path("fan"), "--n", str(width),
                                   "--max-workers", "2", "--quiet"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(runs)]
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, (out, err)
        client = _client(service)
        run_ids = client.get("/api/v1/flows/FanFlow/run-ids")["run_ids"]
        assert len(run_ids) == runs
        for run_id in run_ids:
            in_datastore = {k for k in _blob_tasks(root, "FanFlow", run_id) if not k[0].startswith("_")}
            in_service = set()
            for entry in client.get(f"/api/v1/flows/FanFlow/runs/{run_id}/steps")["steps"]:
                if entry["name"].startswith("_"):
                    continue
                for task in client.get(f"/api/v1/flows/FanFlow/runs/{run_id}/steps/{entry['name']}/tasks")["tasks"]:
                    in_service |= {(entry["name"], task["task_id"], a["attempt"]) for a in task["attempts"]
                                   if a["ending"] is not None}
            assert in_service == in_datastore and len(in_service) == width + 3


def test_tags_change_in_the_service_too(db_url, tmp_path, root):
    with running_service(db_url, tmp_path) as service:
        _, run_id = run_flow(root, flow_path("linear"), env=_env(service))
        proc = mfc(root, "tag", "add", f"LinearFlow/{run_id}", "golden", env=_env(service))
        assert proc.returncode == 0, describe(proc)
        assert "golden" in _client(service).get(f"/api/v1/flows/LinearFlow/runs/{run_id}")["tags"]
        reader = {**_env(service), "MFC_SERVICE_TOKEN": service.read_only_token}
        listed = mfc(root, "runs", flow_path("linear"), env=reader)
        assert listed.returncode == 0 and run_id in listed.stdout, describe(listed)
        refused = mfc(root, "tag", "add", f"LinearFlow/{run_id}", "silver", env=reader)
        assert refused.returncode == 2 and "403" in refused.stderr and "Traceback" not in refused.stderr, describe(refused)
        shown = mfc(root, "tag", "list", f"LinearFlow/{run_id}")  # the datastore's own tags: unchanged
        assert "golden" in shown.stdout and "silver" not in shown.stdout, describe(shown)


def test_config_show_does_not_print_the_token(tmp_path):
    proc = mfc(None, "config", "show", env={"MFC_SERVICE_TOKEN": "mfc_abcdefgh_secretsecret"})
    assert proc.returncode == 0, describe(proc)
    assert "secretsecret" not in proc.stdout and "(set)" in proc.stdout
    json.dumps(proc.stdout)
