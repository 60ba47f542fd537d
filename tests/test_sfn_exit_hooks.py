"""``@exit_hook`` on Step Functions, offline: the compiled wrapper (a one-branch Parallel whose
Catch leads to the error hooks, then a Fail), the flow's own states unchanged inside it, the
hook job, lint, and ``python -m mfc.sfn.hooks`` run for real on a local datastore (the final
status it records before the hooks read it, hooks that raise). The execution in moto and Batch
is in tests/test_sfn_sandbox.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sfn_helpers import IMAGE, SHARED_FLOWS, compiled, config, settings_for

from mfc.decorators import exit_hook
from mfc.exceptions import MfcError
from mfc.flowload import flow_class, import_flow_file
from mfc.flowspec import FlowSpec
from mfc.packager import build_package
from mfc.runner.exit_hooks import hook_names
from mfc.sfn.build import DeployOptions, sfn_settings
from mfc.sfn.compiler import (
    BATCH_SYNC,
    FAIL_STATE,
    FLOW_FAILED,
    FLOW_STATE,
    HOOK_STATES,
    INIT_STATE,
    SUCCEED_STATE,
    definition_json,
    job_definitions,
)
from mfc.sfn.hooks import hook_log_key, record_outcome
from mfc.sfn.lint import lint, overrides_size, required_actions
from mfc.stores.artifacts import ArtifactStore
from mfc.stores.blob import open_blob_store
from mfc.stores.metadata import BlobMetadata

HOOKS = '''
def notify(run=None):
    print("HOOK notify", run.pathspec, run.successful, run.finished)


def broken():
    raise RuntimeError("hook broke")


def plain():
    print("HOOK plain")


'''
DECORATOR = "@exit_hook(on_success=[notify, broken, plain], on_error=[notify, broken, plain])\n"


@pytest.fixture(autouse=True)
def _no_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFC_CONFIG", os.path.join(os.sep, "nonexistent", "mfc-config.toml"))


SWITCH_FLOW = Path(__file__).parent / "compat" / "flows" / "switch_shapes.py"  # a looping switch in a foreach


def flow_path(flow: str) -> Path:
    return SWITCH_FLOW if flow == "switch_shapes" else SHARED_FLOWS / f"{flow}.py"


def hooked(directory: Path, shared_flow: str = "linear") -> Path:
    """tests/flows/<shared_flow>.py (or the switch flow) with the hooks above and ``@exit_hook``
    on its class."""
    source = flow_path(shared_flow).read_text()
    source = source.replace("from mfc import ", "from mfc import exit_hook, ", 1)
    source = source.replace("\nclass ", HOOKS + DECORATOR + "class ", 1)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{shared_flow}.py"
    path.write_text(source)
    return path


def command(state: dict[str, Any]) -> str:
    return str(state["Parameters"]["ContainerOverrides"]["Command.$"])


# -- the compiled wrapper -----------------------------------------------------------------------------------
def test_the_flow_runs_in_a_one_branch_parallel_whose_catch_leads_to_the_error_hooks(tmp_path: Path) -> None:
    _, settings, definition, _ = compiled(hooked(tmp_path))
    top = definition["States"]
    assert definition["StartAt"] == INIT_STATE and top[INIT_STATE]["Next"] == FLOW_STATE
    wrapper = top[FLOW_STATE]
    assert wrapper["Type"] == "Parallel" and len(wrapper["Branches"]) == 1
    assert wrapper["ResultPath"] is None and wrapper["Next"] == HOOK_STATES["success"]
    # the caught error goes beside the state data: $.run (the run id) reaches the error hooks
    assert wrapper["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": HOOK_STATES["error"]}]
    success, error = top[HOOK_STATES["success"]], top[HOOK_STATES["error"]]
    for state, outcome, end in ((success, "success", SUCCEED_STATE), (error, "error", FAIL_STATE)):
        assert state["Type"] == "Task" and state["Resource"] == BATCH_SYNC and state["Next"] == end
        assert "'mfc.sfn.hooks'" in command(state) and "'--run', $.run" in command(state)
        assert f"'--outcome', '{outcome}'" in command(state)
        # a hook job that cannot run still ends the execution as the flow did, keeping $.error
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.hook_error", "Next": end}]
        assert state["Parameters"]["Tags"]["mfc:run.$"] == "$.run"  # `mfc sfn terminate` finds it
        assert state["Parameters"]["JobQueue"] == settings.exit_hook_job.queue
    assert "'--error', $.error.Error" in command(error) and "--error" not in command(success)
    assert top[SUCCEED_STATE] == {"Type": "Succeed"}
    assert top[FAIL_STATE] == {"Type": "Fail", "Error": FLOW_FAILED, "CausePath": "States.JsonToString($.error)"}


def test_the_flows_own_states_are_unchanged_inside_the_wrapper(tmp_path: Path) -> None:
    for flow in ("linear", "mixed_shapes", "switch_shapes"):
        _, _, plain, plain_modes = compiled(flow_path(flow))
        _, _, wrapped, modes = compiled(hooked(tmp_path / flow, flow))
        branch = wrapped["States"][FLOW_STATE]["Branches"][0]
        assert branch["StartAt"] == plain["States"][INIT_STATE]["Next"]
        assert definition_json(branch["States"]) == definition_json(
            {k: v for k, v in plain["States"].items() if k != INIT_STATE})
        assert modes == plain_modes


def test_a_flow_without_exit_hook_has_no_hook_job_and_no_wrapper() -> None:
    _, settings, definition, _ = compiled(SHARED_FLOWS / "linear.py")
    assert settings.exit_hook_job is None
    assert not {FLOW_STATE, SUCCEED_STATE, FAIL_STATE, *HOOK_STATES.values()} & set(definition["States"])


def test_the_wrapped_definition_is_byte_identical_from_any_directory(tmp_path: Path) -> None:
    first = hooked(tmp_path / "a", "mixed_shapes")
    second = hooked(tmp_path / "b", "mixed_shapes")
    texts = {definition_json(compiled(path)[2]) for path in (first, second, first)}
    assert len(texts) == 1


def test_the_hook_job_has_default_resources_in_the_flows_image(tmp_path: Path) -> None:
    source = hooked(tmp_path).read_text()
    heavy = source.replace("    @step\n    def end", "    @resources(cpu=4, memory=16000)\n    @step\n    def end", 1)
    path = tmp_path / "heavy" / "linear.py"
    path.parent.mkdir()
    path.write_text(heavy.replace("from mfc import ", "from mfc import resources, ", 1))
    graph, settings, definition, _ = compiled(path)
    job = settings.exit_hook_job
    assert job is not None and (job.cpu, job.memory, job.image) == (1, 4096, settings.steps["start"].job.image)
    names = {body["jobDefinitionName"] for body in job_definitions(graph, settings)}
    hook_definition = definition["States"][HOOK_STATES["success"]]["Parameters"]["JobDefinition"]
    end_definition = definition["States"][FLOW_STATE]["Branches"][0]["States"]["end"]["Parameters"]["JobDefinition"]
    assert hook_definition != end_definition and {hook_definition, end_definition} <= names


@pytest.mark.parametrize("flow", ["mixed_shapes", "switch_shapes"])
def test_the_wrapper_adds_no_lint_finding(tmp_path: Path, flow: str) -> None:
    graph, settings, definition, modes = compiled(hooked(tmp_path, flow))
    plain_graph, plain_settings, plain, plain_modes = compiled(flow_path(flow))
    found = [(f.level, f.what) for f in lint(graph, settings, definition, modes) if f.level != "info"]
    assert found == [(f.level, f.what) for f in lint(plain_graph, plain_settings, plain, plain_modes)
                     if f.level != "info"]
    assert required_actions(definition) == required_actions(plain)
    size, _ = overrides_size(definition["States"][HOOK_STATES["error"]], 0, settings.max_num_splits)
    assert size < 2_000


# -- @exit_hook applied twice ------------------------------------------------------------------------------
def test_exit_hook_applied_twice_combines_the_hooks_inner_decorator_first() -> None:
    def a() -> None: ...

    def b() -> None: ...

    @exit_hook(on_success=[b], on_error=["b"])
    @exit_hook(on_success=[a], on_error=[a, "pkg.hooks.notify"])
    class TwiceFlow(FlowSpec):
        pass

    assert hook_names(TwiceFlow, True) == ["a", "b"]
    assert hook_names(TwiceFlow, False) == ["a", "pkg.hooks.notify", "b"]


def test_other_flow_decorators_are_still_refused_twice() -> None:
    from mfc.decorators import schedule

    with pytest.raises(MfcError, match="@schedule is applied twice to flow"):
        @schedule(daily=True)
        @schedule(hourly=True)
        class Twice(FlowSpec):
            pass


# -- python -m mfc.sfn.hooks ----------------------------------------------------------------------------------
def _recorded_run(root: Path, flow: str) -> tuple[BlobMetadata, str]:
    metadata = BlobMetadata(open_blob_store(str(root)))
    driver = {"kind": "sfn", "execution": "not-asked"}  # a Step Functions run: no lease, no probe here
    return metadata, metadata.create_run(flow, {"user": "t", "tags": [], "driver": driver})


def test_the_error_path_records_the_run_failed_before_the_hooks_read_it(tmp_path: Path) -> None:
    metadata, run_id = _recorded_run(tmp_path / "ds", "F")
    assert metadata.run("F", run_id)["status"] == "running"  # what a hook would read while the execution runs
    assert record_outcome(metadata, "F", run_id, False, "States.Timeout") == "failed"
    info = metadata.run("F", run_id)
    assert info["status"] == "failed" and "States.Timeout" in info["result"]["error"]


def test_a_recorded_final_status_is_kept_and_an_unrecorded_run_gets_none(tmp_path: Path) -> None:
    metadata, run_id = _recorded_run(tmp_path / "ds", "F")
    metadata.finish_run("F", run_id, "failed", {"error": "step boom failed"})
    assert record_outcome(metadata, "F", run_id, False, "States.TaskFailed") == "failed"
    assert metadata.run("F", run_id)["result"]["error"] == "step boom failed"
    _, other = _recorded_run(tmp_path / "ds", "F")
    assert record_outcome(metadata, "F", other, True, "") == "succeeded"
    assert record_outcome(metadata, "F", "sfn-never", False, "States.TaskFailed") is None
    assert metadata.facts("F", "sfn-never")["status"] is None


def _hooks_command(root: Path, flow_file: Path, run_id: str, *outcome: str) -> subprocess.CompletedProcess:
    package = build_package(flow_file)
    ArtifactStore(open_blob_store(str(root)), "LinearFlow").save_bytes(package.data, sha256=True)
    env = {**os.environ, "MFC_DATASTORE_ROOT": str(root), "MFC_CODE_CACHE": str(root.parent / "code"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    args = ["--root", str(root), "--flow", "LinearFlow", "--code", package.sha256, "--file", flow_file.name,
            "--run", run_id, *outcome]
    return subprocess.run([sys.executable, "-m", "mfc.sfn.hooks", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=root.parent)


def test_the_hooks_command_calls_the_error_hooks_in_order_and_exits_0(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    metadata, run_id = _recorded_run(root, "LinearFlow")
    proc = _hooks_command(root, hooked(tmp_path / "src"), run_id, "--outcome", "error", "--error", "States.TaskFailed")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("HOOK", "[exit_hook] Hook"))]
    assert lines == [f"HOOK notify LinearFlow/{run_id} False True",
                     "[exit_hook] Hook 'broken' failed: RuntimeError: hook broke", "HOOK plain"]
    assert metadata.run("LinearFlow", run_id)["status"] == "failed"
    stored = open_blob_store(str(root)).get_bytes(hook_log_key("LinearFlow", run_id)).decode()
    assert stored.splitlines()[1:] == lines and "calling its error hooks" in stored.splitlines()[0]


def test_the_hooks_command_calls_no_hooks_for_a_run_never_recorded(tmp_path: Path) -> None:
    proc = _hooks_command(tmp_path / "ds", hooked(tmp_path / "src"), "sfn-none", "--outcome", "error")
    assert proc.returncode == 0 and "never recorded" in proc.stdout and "HOOK" not in proc.stdout



def test_without_a_default_queue_or_image_the_hook_job_takes_the_end_steps(tmp_path: Path) -> None:
    source = hooked(tmp_path).read_text().replace(
        "    @step\n", '    @batch(queue="own-q", image="own:1", cpu=8)\n    @step\n')
    path = tmp_path / "own" / "linear.py"
    path.parent.mkdir()
    path.write_text(source.replace("from mfc import ", "from mfc import batch, ", 1))
    graph, settings = settings_for(path, MFC_BATCH_QUEUE="", MFC_BATCH_GPU_QUEUE="")
    job = settings.exit_hook_job
    assert job is not None and (job.queue, job.image, job.cpu, job.gpu) == ("own-q", IMAGE, 1, 0)
    flow_cls = flow_class(import_flow_file(str(path)), graph.name, str(path))
    unbuilt = sfn_settings(flow_cls, graph, config(MFC_BATCH_QUEUE=""), {"sha256": "c0de" * 16, "flow_file": "linear.py"},
                           "", None, DeployOptions())  # no flow image: every step names its own
    assert unbuilt.exit_hook_job is not None and unbuilt.exit_hook_job.image == "own:1"


def test_the_deployed_code_reads_back_from_a_wrapped_definition(tmp_path: Path) -> None:
    from mfc.sfn.deploy import deployed_code

    _, settings, definition, _ = compiled(hooked(tmp_path))
    found = deployed_code({"name": "LinearFlow", "definition": definition_json(definition)})
    assert found == {"datastore_root": settings.datastore_root, "flow_name": "LinearFlow",
                     "code_sha256": settings.code_sha256, "flow_file": settings.flow_file}
