"""The service's routes, each one's happy path and its refusals, through a real server on
SQLite and PostgreSQL: runs (ids claimed safely by concurrent creators, content compared),
status from facts, tags compare-and-swap, attempts (create-only, idempotent, first final wins),
steps and tasks, logs and cards only from allowed roots, deployments."""

from __future__ import annotations

import os
import threading
import time

import pytest
from service_support import client, db_url, service, unique  # noqa: F401

from mfc.stores.blob import open_blob_store
from mfc.stores.lease import driver_record, lease_record

API = "/api/v1"


def new_run(api, flow: str, info: dict | None = None, run_id: str | None = None) -> str:
    answer = api.post(f"{API}/flows/{flow}/runs", json={"run_id": run_id, "info": info or {"user": "ann"}})
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["run_id"]


def record(ending: str = "ok", **extra) -> dict:
    return {"status": "ok" if ending in ("ok", "caught") else "failed", "ending": ending, "artifacts": {}, **extra}


def test_run_create_read_and_content_comparison(service):  # noqa: F811
    flow = unique()
    with client(service) as api:
        run_id = new_run(api, flow, {"user": "ann", "params": {"a": 1}, "trigger": {"kind": "schedule"}})
        run = api.get(f"{API}/flows/{flow}/runs/{run_id}").json()
        assert run["flow"] == flow and run["run_id"] == run_id and run["user"] == "ann"
        assert run["status"] == "running" and run["trigger"] == {"kind": "schedule"} and run["tags"] == []
        assert run["duration"] >= 0
        given = api.post(f"{API}/flows/{flow}/runs", json={"run_id": "given-1", "info": {"x": 1}})
        assert given.status_code == 201 and given.json() == {"run_id": "given-1", "created": True}
        same = api.post(f"{API}/flows/{flow}/runs", json={"run_id": "given-1", "info": {"x": 1}})
        assert same.status_code == 200 and same.json() == {"run_id": "given-1", "created": False}
        differ = api.post(f"{API}/flows/{flow}/runs", json={"run_id": "given-1", "info": {"x": 2, "y": 3}})
        assert differ.status_code == 409 and differ.json()["differ"] == ["x", "y"]
        assert api.get(f"{API}/flows/{flow}/runs/nosuch").status_code == 404
        assert api.get(f"{API}/flows/{flow}/runs/{run_id}").json()["trigger"]["kind"] == "schedule"
        assert api.get(f"{API}/flows/{flow}/runs/given-1").json()["trigger"] == {"kind": "manual"}
        flows = {f["name"]: f for f in api.get(f"{API}/flows").json()["flows"]}
        assert flows[flow]["runs"] == 2


def test_run_ids_are_unique_under_twenty_concurrent_creators(service):  # noqa: F811
    flow = unique()
    found: list[str] = []
    barrier = threading.Barrier(20)

    def create() -> None:
        with client(service) as api:
            barrier.wait()
            for _ in range(3):
                found.append(new_run(api, flow))

    threads = [threading.Thread(target=create) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(found) == 60 and len(set(found)) == 60
    with client(service) as api:
        listed = api.get(f"{API}/flows/{flow}/run-ids").json()["run_ids"]
    assert sorted(listed) == sorted(found)
    assert listed == sorted(found, key=lambda n: (len(n), n), reverse=True)


def test_listing_by_ids_and_pages(service):  # noqa: F811
    flow = unique()
    with client(service) as api:
        ids = [new_run(api, flow, run_id=f"r{i:03d}") for i in range(25)]
        api.put(f"{API}/flows/{flow}/runs/r003/final", json={"status": "failed"})
        api.post(f"{API}/flows/{flow}/runs/r004/tags", json={"add": ["gold"]})
        by_ids = api.get(f"{API}/flows/{flow}/runs", params={"ids": "r002,nosuch,r001"}).json()["runs"]
        assert [r["run_id"] for r in by_ids] == ["r002", "nosuch", "r001"] and by_ids[1]["run"] is None
        first = api.get(f"{API}/flows/{flow}/runs", params={"limit": 10}).json()["runs"]
        assert [r["run_id"] for r in first] == sorted(ids, reverse=True)[:10]
        second = api.get(f"{API}/flows/{flow}/runs", params={"limit": 10, "before": first[-1]["run_id"]}).json()["runs"]
        assert [r["run_id"] for r in second] == sorted(ids, reverse=True)[10:20]
        failed = api.get(f"{API}/flows/{flow}/runs", params={"status": "failed"}).json()["runs"]
        assert [r["run_id"] for r in failed] == ["r003"]
        running = api.get(f"{API}/flows/{flow}/runs", params={"status": "running", "limit": 100}).json()["runs"]
        assert len(running) == 24
        mixed = [new_run(api, flow, run_id=i) for i in ("r-a", "r.a", "rBa", "r_a", "rza")]
        listed = api.get(f"{API}/flows/{flow}/run-ids").json()["run_ids"]
        assert [i for i in listed if i in mixed] == sorted(mixed, reverse=True)  # byte order, as the local provider
        gold = api.get(f"{API}/flows/{flow}/runs", params={"tag": "gold"}).json()["runs"]
        assert [r["run_id"] for r in gold] == ["r004"]
        assert api.get(f"{API}/flows/{flow}/runs", params={"status": "bogus"}).status_code == 400


def test_status_comes_from_facts(service):  # noqa: F811
    flow = unique()
    now = time.time()
    with client(service) as api:
        # a queued run: its driver's lease is live and no task has started: running, never failed
        alive = driver_record(5.0, 20.0)
        queued = new_run(api, flow, {"driver": alive})
        assert api.get(f"{API}/flows/{flow}/runs/{queued}").json()["status"] == "running"
        # a lease from another machine that has not expired: running; expired: crashed
        remote = {**alive, "host": "elsewhere", "boot_id": "x"}
        live = new_run(api, flow, {"driver": remote})
        assert api.put(f"{API}/flows/{flow}/runs/{live}/lease", json=lease_record(remote)).status_code == 204
        assert api.get(f"{API}/flows/{flow}/runs/{live}").json()["status"] == "running"
        facts = api.get(f"{API}/flows/{flow}/runs/{live}/facts").json()
        assert facts["lease"]["host"] == "elsewhere" and facts["status"] is None and facts["run"]["run_id"] == live
        dead = new_run(api, flow, {"driver": remote})
        api.put(f"{API}/flows/{flow}/runs/{dead}/lease", json=lease_record(remote, now=now - 100))
        crashed = api.get(f"{API}/flows/{flow}/runs/{dead}").json()
        assert crashed["status"] == "crashed" and "lease expired" in crashed["result"]["error"]
        # the final status wins over any lease
        done = api.put(f"{API}/flows/{flow}/runs/{dead}/final", json={"status": "succeeded", "note": "x"})
        assert done.json() == {"written": True}
        after = api.get(f"{API}/flows/{flow}/runs/{dead}").json()
        assert after["status"] == "succeeded" and after["result"]["note"] == "x" and after["finished_at"]
        again = api.put(f"{API}/flows/{flow}/runs/{dead}/final", json={"status": "failed", "if_absent": True})
        assert again.json() == {"written": False}
        assert api.get(f"{API}/flows/{flow}/runs/{dead}").json()["status"] == "succeeded"
        # a local driver whose process is gone: crashed at once
        gone = new_run(api, flow, {"driver": {**alive, "pid": 2**22 + 12345}})
        assert api.get(f"{API}/flows/{flow}/runs/{gone}").json()["status"] == "crashed"
        assert api.delete(f"{API}/flows/{flow}/runs/{live}/lease").status_code == 204
        assert api.get(f"{API}/flows/{flow}/runs/{live}/facts").json()["lease"] is None
        assert api.put(f"{API}/flows/{flow}/runs/nosuch/final", json={"status": "failed"}).status_code == 404
        assert api.put(f"{API}/flows/{flow}/runs/{live}/final", json={"status": "running"}).status_code == 422


def test_tags_compare_and_swap(service):  # noqa: F811
    flow = unique()
    with client(service) as api:
        run_id = new_run(api, flow, {"tags": ["a"]})
        url = f"{API}/flows/{flow}/runs/{run_id}/tags"
        assert api.post(url, json={"add": ["b"], "remove": ["a"]}).json() == {"tags": ["b"]}
        assert api.post(url, json={"add": ["c"], "expect": ["b"]}).json() == {"tags": ["b", "c"]}
        stale = api.post(url, json={"add": ["d"], "expect": ["b"]})
        assert stale.status_code == 409 and stale.json()["tags"] == ["b", "c"]
        assert api.post(url, json={"add": ["bad\ntag"]}).status_code == 400
        assert api.post(url, json={"add": [f"t{i}" for i in range(60)]}).status_code == 400
        assert api.post(f"{API}/flows/{flow}/runs/nosuch/tags", json={"add": ["x"]}).status_code == 404
        assert api.get(f"{API}/flows/{flow}/runs/{run_id}").json()["tags"] == ["b", "c"]


def test_attempts_create_only_idempotent_and_first_final_wins(service):  # noqa: F811
    flow = unique()
    with client(service) as api:
        run_id = new_run(api, flow)
        url = f"{API}/flows/{flow}/runs/{run_id}/attempts"
        version = api.get(f"{API}/flows/{flow}/runs/{run_id}/version").json()["version"]
        started = {"step": "start", "task_id": "1", "attempt": 0, "started_at": 10.0, "host": "h",
                   "logs": {"root": service.root, "stdout": f"{flow}/{run_id}/start/1/0.stdout", "stderr": None}}
        assert api.post(url, json={"attempts": [started]}).json() == {"written": [True]}
        assert api.post(url, json={"attempts": [started]}).json() == {"written": [False]}
        first = {"step": "start", "task_id": "1", "attempt": 0, "finished_at": 11.0, "final": True,
                 "record": record(artifacts={"x": ["b3-" + "a" * 64, 12, "int"]},
                                  cards=[{"id": "default", "type": "default", "key": f"{flow}/{run_id}/card.html"}])}
        body = {"attempts": [first]}
        assert api.post(url, json=body).json() == {"written": [True]}
        assert api.post(url, json=body).json() == {"written": [False]}  # idempotent
        other = {**first, "record": record("failed")}
        assert api.post(url, json={"attempts": [other]}).json() == {"written": [False]}  # create-only
        retry = {**first, "attempt": 1, "final": True}
        api.post(url, json={"attempts": [retry]})
        got = api.get(f"{API}/flows/{flow}/runs/{run_id}/steps/start/tasks/1/attempts/0").json()
        assert got["ending"] == "ok" and got["final"] is True and got["started_at"] == 10.0 and got["host"] == "h"
        assert got["artifacts"] == [{"name": "x", "sha": "b3-" + "a" * 64, "type": "int", "size": 12, "preview": None}]
        assert got["cards"] == [{"id": "default", "type": "default"}]
        assert got["logs"]["stdout"].endswith("0.stdout")
        later = api.get(f"{API}/flows/{flow}/runs/{run_id}/steps/start/tasks/1/attempts/1").json()
        assert later["final"] is False  # attempt 0 claimed the task's final first
        assert api.get(f"{API}/flows/{flow}/runs/{run_id}/version").json()["version"] > version
        assert api.get(f"{API}/flows/{flow}/runs/{run_id}/steps/start/tasks/1/attempts/7").status_code == 404


def test_a_bad_entry_writes_nothing_of_its_batch(service):  # noqa: F811
    flow = unique()
    with client(service) as api:
        run_id = new_run(api, flow)
        url = f"{API}/flows/{flow}/runs/{run_id}/attempts"
        good = {"step": "start", "task_id": "1", "attempt": 0, "record": record()}
        bad = {"step": "start", "task_id": "2", "attempt": 0, "record": {"ending": "no-such-ending", "artifacts": {}}}
        answer = api.post(url, json={"attempts": [good, bad]})
        assert answer.status_code == 400 and "attempts[1]" in answer.json()["detail"]
        assert api.get(f"{API}/flows/{flow}/runs/{run_id}/steps").json() == {"steps": []}
        assert api.post(f"{API}/flows/{flow}/runs/nosuch/attempts", json={"attempts": [good]}).status_code == 404
        too_many = {"attempts": [{**good, "task_id": str(i)} for i in range(1001)]}
        assert api.post(url, json=too_many).status_code == 422


def test_steps_and_tasks(service):  # noqa: F811
    flow = unique()
    with client(service) as api:
        run_id = new_run(api, flow)
        url = f"{API}/flows/{flow}/runs/{run_id}/attempts"
        entries = [{"step": "start", "task_id": "start", "attempt": 0, "started_at": 1.0, "finished_at": 2.0,
                    "record": record(), "final": True}]
        for i in (2, 10, 1):
            entries.append({"step": "each", "task_id": f"each-{i}", "attempt": 0, "started_at": 3.0 + i,
                            "foreach_index": i, "foreach_item": f"item {i}"})
        entries.append({"step": "each", "task_id": "each-1", "attempt": 0, "finished_at": 20.0,
                        "record": record("failed"), "final": True})
        assert all(api.post(url, json={"attempts": entries}).json()["written"])
        steps = api.get(f"{API}/flows/{flow}/runs/{run_id}/steps").json()["steps"]
        assert [s["name"] for s in steps] == ["start", "each"]
        assert steps[0] == {"name": "start", "tasks": 1, "counts": {"ok": 1}, "started_at": 1.0, "finished_at": 2.0}
        assert steps[1]["tasks"] == 3 and steps[1]["counts"] == {"running": 2, "failed": 1}
        tasks = api.get(f"{API}/flows/{flow}/runs/{run_id}/steps/each/tasks").json()["tasks"]
        assert [t["task_id"] for t in tasks] == ["each-1", "each-2", "each-10"]
        assert tasks[0]["foreach_item"] == "item 1" and tasks[0]["attempts"][0]["ending"] == "failed"
        assert api.get(f"{API}/flows/{flow}/runs/nosuch/steps").status_code == 404


def test_logs_and_cards_only_from_allowed_roots(service, tmp_path):  # noqa: F811
    flow = unique()
    with client(service) as api:
        run_id = new_run(api, flow)
        blobs = open_blob_store(service.root)
        key = f"{flow}/{run_id}/start/1/0.stdout"
        blobs.put_bytes(key, ("héllo\n" * 3).encode())
        blobs.put_bytes(f"{flow}/{run_id}/card.html", b"<html><body>card</body></html>")
        outside = tmp_path / "other"
        open_blob_store(str(outside)).put_bytes(key, b"secret")
        url = f"{API}/flows/{flow}/runs/{run_id}/attempts"
        cards = [{"id": "c1", "type": "default", "key": f"{flow}/{run_id}/card.html"}]
        api.post(url, json={"attempts": [
            {"step": "start", "task_id": "1", "attempt": 0, "record": record(cards=cards),
             "logs": {"root": service.root, "stdout": key, "stderr": f"{flow}/{run_id}/start/1/0.stderr"}},
            {"step": "start", "task_id": "2", "attempt": 0, "record": record(cards=cards),
             "logs": {"root": str(outside), "stdout": key}},
            {"step": "start", "task_id": "3", "attempt": 0,
             "logs": {"root": service.root, "stdout": "../../etc/passwd"}}]})
        base = f"{API}/flows/{flow}/runs/{run_id}/steps/start/tasks"
        whole = api.get(f"{base}/1/attempts/0/logs/stdout").json()
        assert whole["text"] == "héllo\n" * 3 and whole["size"] == len(("héllo\n" * 3).encode())
        part = api.get(f"{base}/1/attempts/0/logs/stdout", params={"offset": 0, "limit": 2}).json()
        assert part["text"] == "h" and part["next_offset"] == 1  # never half a character
        rest = api.get(f"{base}/1/attempts/0/logs/stdout", params={"offset": part["next_offset"]}).json()
        assert part["text"] + rest["text"] == whole["text"]
        assert api.get(f"{base}/1/attempts/0/logs/stderr").json()["text"] == ""
        refused = api.get(f"{base}/2/attempts/0/logs/stdout")
        assert refused.status_code == 404 and "not readable by this service" in refused.json()["detail"]
        assert api.get(f"{base}/3/attempts/0/logs/stdout").status_code == 404
        assert api.get(f"{base}/1/attempts/0/logs/other").status_code == 400
        card = api.get(f"{base}/1/attempts/0/cards/c1")
        assert card.status_code == 200 and "card" in card.text and card.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in card.headers["content-security-policy"]
        assert api.get(f"{base}/2/attempts/0/cards/c1").status_code == 404
        assert api.get(f"{base}/1/attempts/0/cards/nosuch").status_code == 404


def test_versions_grow_with_every_change(service):  # noqa: F811
    flow = unique()
    with client(service) as api:
        before = api.get(f"{API}/version").json()["runs_version"]
        run_id = new_run(api, flow)
        middle = api.get(f"{API}/version").json()["runs_version"]
        api.post(f"{API}/flows/{flow}/runs/{run_id}/tags", json={"add": ["x"]})
        after = api.get(f"{API}/version").json()["runs_version"]
        assert before < middle < after
        assert api.get(f"{API}/flows/{flow}/runs/{run_id}/version").json()["version"] == after
        assert api.get(f"{API}/flows/{flow}/runs/nosuch/version").status_code == 404


def test_deployments(service):  # noqa: F811
    flow = unique()
    name = f"{flow}-prod"
    body = {"flow": flow, "state_machine_arn": f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}",
            "region": "us-east-1", "schedule": {"expression": "cron(0 3 * * ? *)", "timezone": "UTC",
                                                "kind": "scheduler", "enabled": True},
            "triggers": [{"kind": "event", "name": "data_ready"}], "parameters": {"alpha": 0.5}, "info": {"image": "x"}}
    with client(service) as api:
        put = api.put(f"{API}/deployments/{name}", json=body)
        assert put.status_code == 200, put.text
        assert len(put.json()["next_fires"]) == 3 and put.json()["next_fires"][0].endswith("03:00:00+00:00")
        listed = api.get(f"{API}/deployments", params={"flow": flow}).json()["deployments"]
        assert [d["name"] for d in listed] == [name] and listed[0]["parameters"] == {"alpha": 0.5}
        off = api.put(f"{API}/deployments/{name}", json={**body, "schedule": {**body["schedule"], "enabled": False}})
        assert off.json()["next_fires"] == []
        assert api.get(f"{API}/deployments/{name}").json()["schedule"]["enabled"] is False
        bad = api.put(f"{API}/deployments/{name}", json={**body, "schedule": {"expression": "cron(99 * * * ? *)"}})
        assert bad.status_code == 400
        unavailable = api.post(f"{API}/deployments/{name}/trigger", json={"parameters": {"alpha": 1}})
        assert unavailable.status_code == 503 and "no AWS configuration" in unavailable.json()["detail"]
        run_id = new_run(api, flow)
        assert api.post(f"{API}/flows/{flow}/runs/{run_id}/terminate").status_code == 409
        assert api.delete(f"{API}/deployments/{name}").status_code == 204
        assert api.get(f"{API}/deployments/{name}").status_code == 404
        assert api.delete(f"{API}/deployments/{name}").status_code == 404


def test_health_and_openapi(service):  # noqa: F811
    with client(service, token=None) as anonymous:
        health = anonymous.get("/health").json()
        assert health["status"] == "ok" and health["schema"] == "0001" and health["version"]
        document = anonymous.get("/openapi.json").json()
    assert "/api/v1/flows/{flow}/runs/{run_id}/attempts" in document["paths"]
    assert "AttemptEntry" in document["components"]["schemas"]


@pytest.mark.skipif(not os.path.exists("/proc/self"), reason="needs /proc to see the driving process")
def test_queued_run_with_live_local_driver_is_running_even_when_old(service):  # noqa: F811
    flow = unique()
    with client(service) as api:
        driver = {**driver_record(5.0, 20.0)}
        run_id = new_run(api, flow, {"driver": driver})
        api.put(f"{API}/flows/{flow}/runs/{run_id}/lease", json=lease_record(driver, now=time.time() - 3600))
        assert api.get(f"{API}/flows/{flow}/runs/{run_id}").json()["status"] == "running"


def test_values_that_cannot_be_stored_or_read_back_are_refused(service):  # noqa: F811
    flow = unique()
    headers = {"Content-Type": "application/json"}
    with client(service) as api:
        run_id = new_run(api, flow)
        run = f"{API}/flows/{flow}/runs/{run_id}"
        for body in (b'{"expires_at": 1e300}', b'{"refreshed_at": -Infinity}', b'{"host": "a\\u0000"}'):
            answer = api.put(f"{run}/lease", content=body, headers=headers)
            assert answer.status_code == 422, body
        assert api.post(f"{API}/flows/{flow}/runs", content=b'{"info": {"x": NaN}}', headers=headers).status_code == 422
        driver = {"info": {"driver": {"pid": 1, "host": "h", "timeout": -1e300}}}
        assert api.post(f"{API}/flows/{flow}/runs", json=driver).status_code == 422
        assert api.get(run).status_code == 200
