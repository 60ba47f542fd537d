"""Flows compiled to Step Functions and run end to end in the sandbox: moto executes the state
machine, Batch runs each state's job as a real container of the image in the sandbox's registry.

Every shape is compared with a local run of the same flow: the same steps, task ids and
artifacts. Everything goes through the CLI a user types (``mfc sfn create``, ``trigger --wait``,
``runs``, ``resume``, ``terminate``), and the results are read with the client's own functions.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sfn_support import sfn_root, trigger
from support import (
    FLOWS,
    artifacts,
    assert_no_traceback,
    attempt_records,
    clean_env,
    describe,
    mfc,
    mfc_executable,
    records,
    run_info,
    task_records,
)

pytestmark = pytest.mark.docker


def local_run(deployed: SimpleNamespace, *params: str) -> tuple[Path, str]:
    root = deployed.where / "local-ds"
    id_file = deployed.where / "local-run-id"
    proc = mfc(root, "run", str(deployed.path), "--run-id-file", str(id_file), "-q", *params, cwd=deployed.where)
    assert proc.returncode == 0, describe(proc)
    return root, id_file.read_text().strip()


def assert_same_as_local(deployed: SimpleNamespace, flow: str, run_id: str, *params: str) -> None:
    """The Step Functions run has the same steps, task ids and artifacts as a local run."""
    root, local_id = local_run(deployed, *params)
    local_steps = records(root, flow).steps(local_id)
    assert records(sfn_root(), flow).steps(run_id) == local_steps
    for step in local_steps:
        local = [r["task_id"] for r in task_records(root, flow, local_id, step)]
        remote = [r["task_id"] for r in task_records(sfn_root(), flow, run_id, step)]
        assert remote == local, step
        assert comparable(artifacts(sfn_root(), flow, run_id, step)) == comparable(artifacts(root, flow, local_id, step)), step


def comparable(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Artifacts as compared across runs: a caught exception by its type and message (its
    traceback names the directory the code ran from)."""
    from mfc.exceptions import CaughtException

    return [{k: (v.type, v.exception, v.where) if isinstance(v, CaughtException) else v for k, v in t.items()} for t in tasks]


# -- shapes ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flow, name", [
    ("linear", "LinearFlow"), ("branch", "BranchFlow"), ("foreach", "ForeachFlow"),
    ("nested_foreach", "NestedForeachFlow"), ("mixed_shapes", "MixedShapesFlow"),
])
def test_each_shape_runs_like_locally(deploy, flow, name):
    deployed = deploy(flow)
    proc, run_id = trigger(deployed)
    assert f"Run {name}/{run_id} succeeded." in proc.stdout
    assert "Task finished successfully." in proc.stdout
    assert run_id.startswith("sfn-")
    assert_same_as_local(deployed, name, run_id)
    info = run_info(sfn_root(), name, run_id)
    assert info["status"] == "succeeded" and info["driver"]["kind"] == "sfn"


def test_nested_foreach_picks_a_distributed_outer_map_and_an_inline_inner_one(deploy):
    deployed = deploy("nested_foreach", "--max-num-splits", "400")
    definition = json.loads(mfc(None, "sfn", "compile", str(deployed.path), "--image", deployed.image,
                                "--max-num-splits", "400", env=deployed.env, cwd=deployed.where).stdout)
    outer = definition["States"]["start foreach"]
    inner = outer["ItemProcessor"]["States"]["outer_body foreach"]
    assert outer["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert inner["ItemProcessor"]["ProcessorConfig"]["Mode"] == "INLINE"


def test_a_fifty_way_foreach_through_a_distributed_map(deploy):
    deployed = deploy("fan", "--map-mode", "distributed")
    proc, run_id = trigger(deployed, "--n", "50")
    assert_same_as_local(deployed, "FanFlow", run_id, "--n", "50")
    assert len(task_records(sfn_root(), "FanFlow", run_id, "body")) == 50


def test_parameters_take_defaults_and_overrides_checked_like_mfc_run(deploy):
    deployed = deploy("params", "--tag", "team:ml")
    _, defaults = trigger(deployed)
    assert_same_as_local(deployed, "ParamsFlow", defaults)
    assert run_info(sfn_root(), "ParamsFlow", defaults)["tags"] == ["team:ml"]  # every run of the machine
    tagged = mfc(None, "tag", "add", f"ParamsFlow/{defaults}", "checked", env=deployed.env)
    assert tagged.returncode == 0, describe(tagged)
    assert run_info(sfn_root(), "ParamsFlow", defaults)["tags"] == ["checked", "team:ml"]
    _, given = trigger(deployed, "--count", "7", "--text", "hi there", "--flag", "--config", '{"b": 2}')
    assert_same_as_local(deployed, "ParamsFlow", given, "--count", "7", "--text", "hi there", "--flag",
                         "--config", '{"b": 2}')
    bad = mfc(None, "sfn", "trigger", str(deployed.path), "--count", "many", env=deployed.env, cwd=deployed.where)
    local = mfc(deployed.where / "ds", "run", str(deployed.path), "--count", "many", cwd=deployed.where)
    assert bad.returncode == local.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == local.stderr.strip().splitlines()[-1]
    assert "unknown parameter --nope" in mfc(None, "sfn", "trigger", str(deployed.path), "--nope", "1",
                                             env=deployed.env, cwd=deployed.where).stderr


# -- retries, catch, failure ---------------------------------------------------------------------------------
def test_a_step_that_fails_then_succeeds_on_retry(deploy):
    deployed = deploy("retrying")
    _, run_id = trigger(deployed)
    assert_same_as_local(deployed, "RetryFlow", run_id)
    attempts = attempt_records(sfn_root(), "RetryFlow", run_id, "flaky", "flaky")
    assert [(r["attempt"], r["status"]) for r in attempts] == [(0, "failed"), (1, "failed"), (2, "ok")]


def test_catch_records_the_exception_also_for_a_killed_task(deploy):
    deployed = deploy("catching")
    _, run_id = trigger(deployed)
    assert_same_as_local(deployed, "CatchFlow", run_id)


def test_a_failing_step_fails_the_execution_and_the_run_with_its_error_and_logs(deploy):
    deployed = deploy("failing")
    proc, run_id = trigger(deployed, expect=1)
    assert_no_traceback(proc.stderr)
    assert "execution failed" in proc.stderr and "[" + run_id + "/boom/boom] about to fail" in proc.stdout
    info = run_info(sfn_root(), "FailingFlow", run_id)
    assert info["status"] == "failed"
    assert "ValueError: bad value 42" in info["result"]["error"]
    logs = mfc(None, "logs", f"FailingFlow/{run_id}/boom", env=deployed.env, cwd=deployed.where)
    assert "about to fail" in logs.stdout and "ValueError: bad value 42" in logs.stdout + logs.stderr
    runs = json.loads(mfc(None, "sfn", "runs", str(deployed.path), "--json", env=deployed.env).stdout)
    assert [r["status"] for r in runs if r["run_id"] == run_id] == ["FAILED"]


def test_sfn_resume_reruns_from_the_failed_step_with_the_fixed_code(deploy):
    deployed = deploy("fixable")
    _, failed = trigger(deployed, expect=1)
    deployed.path.write_text(deployed.path.read_text().replace("BROKEN = True", "BROKEN = False"))
    created = mfc(None, "sfn", "create", str(deployed.path), "--image", deployed.image, env=deployed.env,
                  cwd=deployed.where, timeout=300)
    assert created.returncode == 0 and "its code package" in created.stdout, describe(created)
    proc = mfc(None, "sfn", "resume", str(deployed.path), failed, "--wait", env=deployed.env, cwd=deployed.where,
               timeout=300)
    assert proc.returncode == 0, describe(proc)
    resumed = proc.stdout.split("Run FixableFlow/", 1)[1].split()[0]
    info = run_info(sfn_root(), "FixableFlow", resumed)
    assert info["status"] == "succeeded" and info["origin_run_id"] == failed and info["resume_step"] == "check"
    cloned = task_records(sfn_root(), "FixableFlow", resumed, "body")
    assert [r.get("origin_run_id") for r in cloned] == [failed] * 3
    assert artifacts(sfn_root(), "FixableFlow", resumed, "end")[0]["result"] == (14, True)
    rerun = task_records(sfn_root(), "FixableFlow", resumed, "check")
    assert rerun[0]["status"] == "ok" and rerun[0].get("origin_pathspec") is None  # it ran, not cloned


def test_terminate_aborts_the_execution_and_its_batch_jobs(deploy, sandbox):
    deployed = deploy("sleeper")
    follower = subprocess.Popen([mfc_executable(), "sfn", "trigger", str(deployed.path), "--wait", "--pidfile",
                                 "/tmp/nap.pid", "--seconds", "120"], env=clean_env(None, deployed.env),
                                cwd=deployed.where, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = ""
    assert follower.stdout is not None
    while "/nap/nap] napping" not in out:  # the nap step's job is running, its log followed here
        line = follower.stdout.readline()
        assert line, f"the follower ended early: {out}"
        out += line
    follower.send_signal(signal.SIGINT)  # Ctrl-C stops the following, not the run
    _, err = follower.communicate(timeout=60)
    assert follower.returncode == 130 and "it goes on running in Step Functions" in err, err
    assert_no_traceback(err)
    run_id = out.split("Run SleeperFlow/", 1)[1].split()[0]
    status = mfc(None, "sfn", "status", str(deployed.path), run_id, env=deployed.env)
    assert f"SleeperFlow/{run_id}: RUNNING" in status.stdout, describe(status)
    stopped = mfc(None, "sfn", "terminate", str(deployed.path), run_id, env=deployed.env)
    assert stopped.returncode == 0 and "terminated" in stopped.stdout, describe(stopped)
    runs = json.loads(mfc(None, "sfn", "runs", str(deployed.path), "--json", env=deployed.env).stdout)
    assert [r["status"] for r in runs if r["run_id"] == run_id] == ["ABORTED"]
    assert run_info(sfn_root(), "SleeperFlow", run_id)["status"] == "failed"
    from mfc.sandbox.resources import client

    batch = client("batch", sandbox.port)
    running = batch.list_jobs(jobQueue="mfc-cpu", jobStatus="RUNNING")["jobSummaryList"]
    assert not [j for j in running if j["jobName"].startswith("SleeperFlow-nap")]


# -- bad input ----------------------------------------------------------------------------------------------
def test_never_deployed_flow_is_one_clear_line(sandbox, tmp_path):
    env = {"MFC_CONFIG": str(sandbox.config), "MFC_PROFILE": "sandbox"}
    path = tmp_path / "hello.py"
    path.write_text((FLOWS / "linear.py").read_text().replace("LinearFlow", "NeverDeployedFlow"))
    for command in (["trigger"], ["runs"], ["status"], ["delete"]):
        proc = mfc(None, "sfn", *command, str(path), env=env)
        assert proc.returncode != 0 and "NeverDeployedFlow is not deployed to Step Functions" in proc.stderr
        assert_no_traceback(proc.stderr)


def test_unknown_queue_role_and_unreachable_aws_fail_before_anything_is_created(sandbox, tmp_path):
    env = {"MFC_CONFIG": str(sandbox.config), "MFC_PROFILE": "sandbox"}
    path = tmp_path / "linear.py"
    path.write_text((FLOWS / "linear.py").read_text().replace("LinearFlow", "NeverCreatedFlow"))
    cases = [
        (["--queue", "nope"], {}, "job queue 'nope' does not exist"),
        ([], {"MFC_SFN_ROLE": "arn:aws:iam::123456789012:role/missing"}, "sfn_role arn:aws:iam::123456789012:role/missing: no such IAM role"),
        ([], {"MFC_AWS_ENDPOINT_URL": "http://127.0.0.1:9", "MFC_S3_ENDPOINT_URL": "http://127.0.0.1:9"}, "cannot reach"),
        (None, {"DOCKER_HOST": "tcp://127.0.0.1:9"}, "Docker"),  # no image given, no engine to build one
    ]
    for args, extra, message in cases:
        image = ["--image", "mfc-base:0.1.0"] if args is not None else []
        proc = mfc(None, "sfn", "create", str(path), *image, *(args or []), env={**env, **extra}, timeout=120)
        assert proc.returncode != 0 and message in proc.stderr, describe(proc)
        assert_no_traceback(proc.stderr)
    from mfc.sandbox.resources import client

    names = [m["name"] for m in client("stepfunctions", sandbox.port).list_state_machines()["stateMachines"]]
    assert "NeverCreatedFlow" not in names



# -- @exit_hook ----------------------------------------------------------------------------------------------
def _hook_marks(run_id: str) -> dict[str, str]:
    """What the hooks of tests/flows_sfn/hooked.py wrote into the run's S3 root, by hook."""
    from mfc.stores.blob import open_blob_store

    blobs = open_blob_store(sfn_root())
    keys = {name: f"data/HookedFlow/{run_id}/hooks/{name}" for name in ("success", "error")}
    found = blobs.get_many(keys.values())
    return {name: found[key].decode() for name, key in keys.items() if key in found}


def test_exit_hooks_run_after_the_execution_with_the_runs_final_status(deploy):
    deployed = deploy("hooked")
    proc, ok = trigger(deployed)
    assert run_info(sfn_root(), "HookedFlow", ok)["status"] == "succeeded"
    assert _hook_marks(ok) == {"success": f"HookedFlow/{ok} successful=True finished=True"}
    prefix = f"[{ok}/exit hooks] "
    shown = [line.removeprefix(prefix) for line in proc.stdout.splitlines() if line.startswith(prefix)]
    assert shown[1:] == ["HOOK success True", "[exit_hook] Hook 'broken' failed: RuntimeError: hook broke",
                         "HOOK last"], describe(proc)
    proc, failed = trigger(deployed, "--fail", expect=1)
    # the execution still fails, with the flow's own error in its cause
    assert "execution failed: mfc.FlowFailed" in proc.stderr and "States.TaskFailed" in proc.stderr, describe(proc)
    info = run_info(sfn_root(), "HookedFlow", failed)
    assert info["status"] == "failed" and "failing on purpose" in info["result"]["error"]
    assert _hook_marks(failed) == {"error": f"HookedFlow/{failed} successful=False finished=True"}
    runs = json.loads(mfc(None, "sfn", "runs", str(deployed.path), "--json", env=deployed.env).stdout)
    assert {r["run_id"]: r["status"] for r in runs if r["run_id"] in (ok, failed)} == {ok: "SUCCEEDED", failed: "FAILED"}
