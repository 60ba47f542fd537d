"""Step Functions without AWS: ``mfc sfn compile`` needs no credentials and no network; the
checks made before anything is deployed; how a state's task finds its inputs; the execution
input a trigger sends and the start state reads back."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from support import FLOWS, assert_no_traceback, describe, line_of, mfc, write_flow

from mfc.exceptions import MfcError
from mfc.graph import load_graph
from mfc.runner.taskspec import InputRef
from mfc.sfn.executions import INPUT_LIMIT, execution_arn, execution_input
from mfc.sfn.lineage import parse_indices, task_inputs
from mfc.sfn.runstart import parameter_args, read_input

OFFLINE = {"MFC_DATASTORE_ROOT": "s3://bucket/prefix", "MFC_BATCH_QUEUE": "q", "MFC_IMAGE": "img:1",
           # nothing to reach and nothing to sign with: any AWS call would fail
           "MFC_AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}


@pytest.fixture
def offline(monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    return OFFLINE


def test_compile_needs_no_credentials_and_no_network(offline, tmp_path):
    out = tmp_path / "machine.json"
    proc = mfc(None, "sfn", "compile", str(FLOWS / "mixed_shapes.py"), "--output", str(out), env=offline, timeout=30)
    assert proc.returncode == 0, describe(proc)
    definition = json.loads(out.read_text())
    assert definition["StartAt"] == "mfc init" and "fan foreach" in json.dumps(definition)
    again = mfc(None, "sfn", "compile", str(FLOWS / "mixed_shapes.py"), env=offline, timeout=30)
    assert again.stdout == out.read_text()  # the same bytes, to a file or to stdout


def test_compile_refuses_a_local_datastore_in_one_line(offline, tmp_path):
    proc = mfc(tmp_path, "sfn", "compile", str(FLOWS / "linear.py"), env={**offline, "MFC_DATASTORE_ROOT": str(tmp_path)})
    assert proc.returncode != 0 and "Step Functions runs need an S3 datastore" in proc.stderr
    assert_no_traceback(proc.stderr)


def test_a_scheduled_flow_with_a_required_parameter_and_no_default_is_refused(offline, tmp_path):
    source = (FLOWS / "required_param.py").read_text().replace("class ", "@schedule(daily=True)\nclass ", 1)
    source = source.replace("from mfc import ", "from mfc import schedule, ", 1)
    path = write_flow(tmp_path, source)
    proc = mfc(None, "sfn", "compile", path, env=offline)
    assert proc.returncode != 0, describe(proc)
    line = line_of(path, 'Parameter("needed"')
    assert f"{path}:{line}: parameter 'needed' is required and has no default" in proc.stderr
    assert "@schedule" in proc.stderr
    assert_no_traceback(proc.stderr)


def test_a_value_the_definition_cannot_carry_is_named(offline, tmp_path):
    proc = mfc(None, "sfn", "compile", str(FLOWS / "linear.py"), env={**offline, "MFC_DATASTORE_ROOT": "s3://b/it's"})
    assert proc.returncode != 0 and "cannot go into a state machine definition: it contains '" in proc.stderr
    assert_no_traceback(proc.stderr)


def test_map_mode_names_must_be_known_and_name_a_foreach(offline):
    bad = mfc(None, "sfn", "compile", str(FLOWS / "foreach.py"), "--map-mode", "sideways", env=offline)
    assert bad.returncode != 0 and "the mode is one of auto, inline, distributed" in bad.stderr
    wrong = mfc(None, "sfn", "compile", str(FLOWS / "foreach.py"), "--map-mode", "end=inline", env=offline)
    assert wrong.returncode != 0 and "'end' is not a foreach step" in wrong.stderr


# -- lineage ---------------------------------------------------------------------------------------------------
def test_each_task_finds_its_parents_from_the_graph_and_the_indices():
    graph = load_graph(str(FLOWS / "mixed_shapes.py"))
    splits = {("fan", "fan"): 3}

    def num_splits(step: str, task_id: str) -> int:
        return splits[(step, task_id)]

    assert task_inputs(graph, "start", (), num_splits) == ([InputRef("_parameters", "0", 0)], None)
    assert task_inputs(graph, "item", (2,), num_splits) == ([InputRef("fan", "fan")], 2)
    assert task_inputs(graph, "double", (2,), num_splits) == ([InputRef("item", "item-2")], None)
    assert task_inputs(graph, "item_join", (2,), num_splits) == (
        [InputRef("double", "double-2"), InputRef("square", "square-2")], None)
    assert task_inputs(graph, "fan_join", (), num_splits) == (
        [InputRef("item_join", f"item_join-{k}") for k in range(3)], None)
    assert task_inputs(graph, "join", (), num_splits)[0] == [InputRef("fan_join", "fan_join"), InputRef("plain", "plain")]
    assert parse_indices("") == () and parse_indices("3-12") == (3, 12)
    with pytest.raises(MfcError, match="not numbers"):
        parse_indices("3-x")


# -- execution input -------------------------------------------------------------------------------------------
def _flow_class(name: str):
    from mfc.flowload import flow_class, import_flow_file

    path = str(FLOWS / f"{name}.py")
    return flow_class(import_flow_file(path), None, path)


def test_execution_input_carries_the_given_parameters_checked_like_mfc_run():
    cls = _flow_class("params")
    text = execution_input(cls, ["--count", "7", "--flag", "--text=hi", "--no-verbose"], "me")
    assert json.loads(text) == {"parameters": {"count": "7", "flag": "true", "text": "hi", "verbose": "false"}}
    assert read_input(text)["parameters"] == {"count": "7", "flag": "true", "text": "hi", "verbose": "false"}
    assert parameter_args({"count": 7, "flag": True, "config": {"a": 1}}) == ["--config={\"a\": 1}", "--count=7",
                                                                            "--flag=true"]
    with pytest.raises(MfcError, match="--count"):
        execution_input(cls, ["--count", "many"], "me")
    with pytest.raises(MfcError, match="unknown parameter --nope"):
        execution_input(cls, ["--nope", "1"], "me")


def test_an_execution_input_over_256_kib_is_refused_before_anything_starts():
    cls = _flow_class("params")
    big = "x" * (INPUT_LIMIT // 2)
    with pytest.raises(MfcError, match=r"more than Step Functions' 262144 \(256 KiB\)"):
        execution_input(cls, ["--text", big, "--config", json.dumps({"a": big})], "me")


def test_a_malformed_execution_input_is_one_clear_line():
    for text, message in (("[1]", "must be a JSON object"), ("{\"parameters\": 3}", "must be an object"),
                          ("{\"resume\": {}}", "origin_run_id"), ("{", "not JSON")):
        with pytest.raises(MfcError, match=message):
            read_input(text)


def test_run_ids_name_their_execution():
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:Flow"
    assert execution_arn(machine, "sfn-abc") == "arn:aws:states:us-east-1:123456789012:execution:Flow:abc"
    with pytest.raises(MfcError, match="is not a Step Functions run"):
        execution_arn(machine, "1700000000000")


def test_the_compiled_state_task_is_importable_without_aws():
    """The entrypoint every state runs imports nothing that needs AWS before it runs."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "mfc.sfn.task", "--help"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}, timeout=30)
    assert proc.returncode == 0 and "--execution" in proc.stdout


def test_an_include_file_parameter_is_refused_naming_its_line(offline, tmp_path):
    path = write_flow(tmp_path, '''
from mfc import FlowSpec, IncludeFile, step


class IncFlow(FlowSpec):
    data = IncludeFile("data", default="data.txt")

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
''')
    proc = mfc(None, "sfn", "compile", path, env=offline)
    assert proc.returncode != 0
    assert f"{path}:{line_of(path, 'IncludeFile(')}: IncludeFile parameter 'data'" in proc.stderr
    assert_no_traceback(proc.stderr)


def test_project_names_the_machine_and_the_workflow_timeout_bounds_it(offline, tmp_path):
    source = (FLOWS / "linear.py").read_text().replace("class ", '@project(name="fraud")\nclass ', 1)
    path = write_flow(tmp_path, source.replace("from mfc import ", "from mfc import project, ", 1))
    proc = mfc(None, "sfn", "compile", path, "--workflow-timeout", "3600", env={**offline, "MFC_USER": "ana"})
    assert proc.returncode == 0, describe(proc)
    definition = json.loads(proc.stdout)
    assert definition["TimeoutSeconds"] == 3600
    tags = definition["States"]["start"]["Parameters"]["Tags"]
    assert tags["mfc:state-machine"] == "fraud.user.ana.LinearFlow" and tags["mfc:flow"] == "LinearFlow"


def test_missing_credentials_are_one_line_before_anything_is_created(offline, tmp_path):
    env = {k: v for k, v in offline.items() if k != "MFC_AWS_ENDPOINT_URL"}
    env.update(MFC_SFN_ROLE="arn:aws:iam::123456789012:role/r", AWS_EC2_METADATA_DISABLED="true")
    proc = mfc(None, "sfn", "create", str(FLOWS / "linear.py"), env=env, timeout=60)
    assert proc.returncode != 0 and "no AWS credentials" in proc.stderr, describe(proc)
    assert_no_traceback(proc.stderr)


def test_an_exit_hook_flow_compiles_with_its_hook_states(offline, tmp_path):
    source = (FLOWS / "linear.py").read_text().replace("class ", "def done():\n    pass\n\n\n@exit_hook(on_success=[done])\nclass ", 1)
    path = write_flow(tmp_path, source.replace("from mfc import ", "from mfc import exit_hook, ", 1))
    proc = mfc(None, "sfn", "compile", path, env=offline)
    assert proc.returncode == 0, describe(proc)
    top = json.loads(proc.stdout)["States"]
    assert sorted(top) == ["mfc exit hooks", "mfc exit hooks (error)", "mfc failed", "mfc flow", "mfc init",
                           "mfc succeeded"]
    assert "start" in top["mfc flow"]["Branches"][0]["States"]


def test_a_task_failing_after_a_sibling_leaves_the_first_error(tmp_path):
    from mfc.runner.taskspec import TaskSpec
    from mfc.sfn.task import Task, parse_args
    from mfc.stores.blob import open_blob_store
    from mfc.stores.metadata import BlobMetadata

    root = str(tmp_path / "ds")
    metadata = BlobMetadata(open_blob_store(root))
    run_id = metadata.create_run("F", {"user": "t", "tags": [], "driver": {"kind": "sfn", "execution": "x"}})
    task = Task(parse_args(["--root", root, "--flow", "F", "--code", "c0de" * 16, "--file", "f.py", "--step", "body",
                            "--run", run_id, "--ix", "1"]))
    spec = TaskSpec(flow_file="f.py", flow_name="F", step="body", run_id=run_id, task_id=task.task_id,
                    datastore_root=root, inputs=[])
    metadata.finish_run("F", run_id, "failed", {"error": "step body failed (task F/r/body/body-0): ValueError: first"})
    task._fail_run(3, spec)
    assert metadata.run("F", run_id)["result"]["error"].endswith("ValueError: first")
    other = metadata.create_run("F", {"user": "t", "tags": [], "driver": {"kind": "sfn", "execution": "x"}})
    task.args.run = other
    task._fail_run(1, dataclasses.replace(spec, run_id=other))
    assert metadata.run("F", other)["status"] == "failed"
