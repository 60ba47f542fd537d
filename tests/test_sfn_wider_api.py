"""Metaflow's wider API on Step Functions in the sandbox, each state a real Batch container run by
moto: the compat suite's switch flows (a switch on a parameter, a static split inside one case, a
switch that repeats its step, a switch in a foreach body or a branch) compiled to Choice states
and compared with a local run of the same flow (the same steps, task ids and artifacts; a value
that no case names fails the execution with the task's one-line error), and ``@secrets`` with
``S3(run=self)`` in the states' jobs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sfn_support import sfn_root, trigger
from support import artifacts, run_info
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


def test_secrets_and_run_s3_in_state_machine_jobs(deploy):
    """The secret (in moto's Secrets Manager) is the decorated steps' environment in their Batch
    jobs; each step reads what the one before put under the run's ``S3(run=self)`` prefix."""
    from mfc.aws import client
    from mfc.config import Config

    password = "pw-" + os.urandom(8).hex()
    secrets = client("secretsmanager", Config(None, env=dict(os.environ)))
    secrets.create_secret(Name="mfc-test/db-creds", SecretString=json.dumps({"DB_USER": "alice", "DB-PASSWORD": password}))
    try:
        deployed = deploy(str(Path(__file__).parent / "flows_batch" / "secrets_s3.py"))
        proc, run_id = trigger(deployed, timeout=600)
    finally:
        secrets.delete_secret(SecretId="mfc-test/db-creds", ForceDeleteWithoutRecovery=True)
    assert f"Run CloudSecretsFlow/{run_id} succeeded." in proc.stdout
    assert password not in proc.stdout + proc.stderr
    values = {step: artifacts(sfn_root(), "CloudSecretsFlow", run_id, step)[0] for step in ("start", "middle", "end")}
    assert values["start"]["start_user"] == "alice" and values["start"]["start_job"]  # a Batch job
    middle, end = values["middle"], values["end"]
    assert (middle["middle_user"], middle["middle_password_length"]) == ("alice", len(password))
    assert middle["from_start"] == "start saw alice" and end["from_middle"] == "middle saw alice"
    assert end["end_user"] is None


def test_pypi_step_runs_in_the_image_of_its_lock(deploy):
    """``mfc sfn create`` without ``--image`` builds the flow image from the lock (wheels fetched on
    the host) and pushes it to the sandbox's registry; the state's Batch job imports the package."""
    deployed = deploy("pypi_flow", image=None)
    assert "Traceback" not in deployed.create.stderr
    proc, run_id = trigger(deployed, timeout=600)
    assert f"Run SfnPypiFlow/{run_id} succeeded." in proc.stdout
    assert artifacts(sfn_root(), "SfnPypiFlow", run_id, "start")[0]["version"] == "0.9.0"


def test_sfn_resume_of_a_switch_flow_clones_the_loop(deploy):
    """Resume on Step Functions after a failure past a looping switch: every repetition is cloned
    (its Choice reads the clone's case), the failed step reruns with the fixed code."""
    from support import describe, mfc, task_records

    deployed = deploy("fixable_switch")
    _, failed = trigger(deployed, expect=1)
    deployed.path.write_text(deployed.path.read_text().replace("BROKEN = True", "BROKEN = False"))
    created = mfc(None, "sfn", "create", str(deployed.path), "--image", deployed.image, env=deployed.env,
                  cwd=deployed.where, timeout=300)
    assert created.returncode == 0, describe(created)
    proc = mfc(None, "sfn", "resume", str(deployed.path), failed, "--wait", env=deployed.env, cwd=deployed.where,
               timeout=300)
    assert proc.returncode == 0, describe(proc)
    resumed = proc.stdout.split("Run FixableSwitchFlow/", 1)[1].split()[0]
    assert run_info(sfn_root(), "FixableSwitchFlow", resumed)["status"] == "succeeded"
    loops = task_records(sfn_root(), "FixableSwitchFlow", resumed, "loop")
    assert sorted(r["task_id"] for r in loops) == ["loop.0", "loop.1", "loop.2"]
    assert all(r.get("origin_run_id") == failed for r in loops)
    assert artifacts(sfn_root(), "FixableSwitchFlow", resumed, "check")[0]["checked"] == 3
