"""Schedules and triggers firing for real in the sandbox: the sandbox's clock fires a deployed
flow's schedule (advanced rather than waited for), a published event starts its flow with a
parameter from the payload, and one flow finishing starts another; every run is a real
Step Functions execution whose states are Batch jobs in containers."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sfn_support import sfn_root, trigger
from support import describe, mfc, only, run_info

pytestmark = pytest.mark.docker


def _sfn(sandbox: Any) -> Any:
    from mfc.sandbox.resources import client

    return client("stepfunctions", sandbox.port)


def _machine_arn(sandbox: Any, name: str) -> str:
    machines = _sfn(sandbox).list_state_machines()["stateMachines"]
    return next(m["stateMachineArn"] for m in machines if m["name"] == name)


def _executions(sandbox: Any, name: str) -> list[dict[str, Any]]:
    return list(_sfn(sandbox).list_executions(stateMachineArn=_machine_arn(sandbox, name))["executions"])


def wait_for_run(sandbox: Any, name: str, before: int, timeout: float = 240) -> str:
    """The run id of the first execution of ``name`` after the ``before`` there were, once it ended well."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _executions(sandbox, name)
        if len(found) > before:
            newest = min(found[:len(found) - before], key=lambda e: e["startDate"])
            if newest["status"] == "SUCCEEDED":
                return "sfn-" + newest["name"]
            assert newest["status"] == "RUNNING", newest
        time.sleep(1)
    raise AssertionError(f"no new execution of {name} succeeded within {timeout:.0f}s")


def test_a_rate_schedule_fires_when_the_sandbox_clock_passes_a_minute(deploy, sandbox):
    from mfc.sandbox.control import advance_clock

    deployed = deploy("ticking")
    env = deployed.env
    applied = mfc(None, "schedule", str(deployed.path), "--rate", "1 minute", env=env)
    assert applied.returncode == 0, describe(applied)
    shown = mfc(None, "schedule", str(deployed.path), "--show", env=env)
    assert shown.returncode == 0 and "rate(1 minute)" in shown.stdout, describe(shown)
    assert _executions(sandbox, "TickingFlow") == []
    time.sleep(2)
    assert _executions(sandbox, "TickingFlow") == []  # nothing fires before its time
    advance_clock(61, state_dir=sandbox.state)
    run_id = wait_for_run(sandbox, "TickingFlow", 0)
    assert run_info(sfn_root(), "TickingFlow", run_id)["status"] == "succeeded"
    assert only(sfn_root(), "TickingFlow", run_id, "start")["seen"] == "scheduled"
    status = json.loads(mfc(None, "sandbox", "status", "--json", "--dir", sandbox.state, env=env).stdout)
    assert any("rate(1 minute)" in json.dumps(s) for s in status.get("schedules", [])), status
    deleted = mfc(None, "schedule", str(deployed.path), "--delete", env=env)
    assert deleted.returncode == 0, describe(deleted)
    from mfc.sandbox.resources import client

    assert [r["Name"] for r in client("events", sandbox.port).list_rules()["Rules"] if "TickingFlow" in r["Name"]] == []


def test_a_published_event_starts_its_flow_with_a_parameter_from_the_payload(deploy, sandbox):
    deployed = deploy("on_event")
    published = mfc(None, "event", "publish", "data_ready", "--payload", '{"alpha": "from-event"}', env=deployed.env)
    assert published.returncode == 0, describe(published)
    run_id = wait_for_run(sandbox, "OnEventFlow", 0)
    assert only(sfn_root(), "OnEventFlow", run_id, "start")["seen"] == ("from-event", 3)


def test_a_flow_finishing_starts_the_flow_triggered_on_its_finish(deploy, sandbox):
    upstream = deploy("upstream")
    deploy("downstream")
    before = len(_executions(sandbox, "DownstreamFlow"))
    trigger(upstream)
    run_id = wait_for_run(sandbox, "DownstreamFlow", before)
    assert only(sfn_root(), "DownstreamFlow", run_id, "start")["after"] == "upstream finished"
