"""Switch transitions on Step Functions in the sandbox: the compat suite's switch flow (a switch
on a parameter, a static split inside one case, a switch that repeats its step, a switch in a
foreach body) compiled to Choice states, run by moto with each state a real Batch container, and
compared with a local run of the same flow: the same steps, task ids and artifacts. A value that
no case names fails the execution with the task's one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
from sfn_support import sfn_root, trigger
from support import run_info
from test_sfn_sandbox import assert_same_as_local

pytestmark = pytest.mark.docker

FLOW = str(Path(__file__).parent / "compat" / "flows" / "switch_flow.py")


def test_switch_flow_runs_like_locally(deploy):
    deployed = deploy(FLOW)
    definition = deployed.create.stdout + deployed.create.stderr
    assert "Traceback" not in definition
    params = ("--mode", "fanout", "--rounds", "2")
    proc, run_id = trigger(deployed, *params, timeout=600)
    assert f"Run SwitchFlow/{run_id} succeeded." in proc.stdout
    assert_same_as_local(deployed, "SwitchFlow", run_id, *params)
    assert run_info(sfn_root(), "SwitchFlow", run_id)["status"] == "succeeded"

    proc, failed = trigger(deployed, "--mode", "bogus", expect=1)
    assert "self.route is 'bogus', which is not a case of the switch" in proc.stdout + proc.stderr
    assert run_info(sfn_root(), "SwitchFlow", failed)["status"] == "failed"


def test_switch_shapes_run_like_locally(deploy):
    """A loop inside a foreach body, a switch inside a branch, and ``end`` reached from a switch
    or from the step one of its cases runs (both ran: the later one is end's parent)."""
    deployed = deploy(str(Path(FLOW).with_name("switch_shapes.py")))
    proc, run_id = trigger(deployed, "--pick", "x", timeout=600)
    assert f"Run SwitchShapesFlow/{run_id} succeeded." in proc.stdout
    assert_same_as_local(deployed, "SwitchShapesFlow", run_id, "--pick", "x")
