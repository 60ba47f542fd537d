"""The Step Functions compiler, offline: a golden definition, byte-identical output across
directories and processes, the structure of every shape, the Map mode choices, container
overrides that do not grow with the flow, and graphs it cannot compile."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from graph_helpers import line_of
from sfn_helpers import (
    CODE,
    FLOWS,
    REFERENCE,
    SHARED_FLOWS,
    compiled,
    linear_flow,
    settings_for,
    states,
    write_flow,
)

from mfc.exceptions import MfcError
from mfc.packager import build_package
from mfc.sfn.build import DeployOptions
from mfc.sfn.compiler import (
    BATCH_SYNC,
    INIT_STATE,
    S3_GET,
    SDK_S3_GET,
    compile_definition,
    compile_with_modes,
    definition_json,
)
from mfc.sfn.lint import overrides_size

GOLDEN = Path(__file__).parent / "golden" / "sfn_branch_foreach.json"
UPDATE_ENV = "MFC_UPDATE_GOLDEN"


@pytest.fixture(autouse=True)
def _no_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFC_CONFIG", os.path.join(os.sep, "nonexistent", "mfc-config.toml"))


def reference_json() -> str:
    options = DeployOptions(tags=["team:ml", "tier:prod"], workflow_timeout=7200)
    graph, settings = settings_for(REFERENCE, options, code=CODE)
    return definition_json(compile_definition(graph, settings))


def scopes(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``{"StartAt", "States"}`` scope: the definition, Parallel branches, Map bodies."""
    found = [definition]
    for placed in states(definition).values():
        state = placed.state
        found += state.get("Branches", [])
        if state["Type"] == "Map":
            found.append(state["ItemProcessor"])
    return found


def assert_well_formed(definition: dict[str, Any]) -> None:
    """Each scope starts at one of its states, every Next stays in its scope, every state is
    reached, state names are unique across scopes, and only the split-list reader keeps a result."""
    names: list[str] = []
    for scope in scopes(definition):
        inner = scope["States"]
        names += list(inner)
        assert scope["StartAt"] in inner
        reached, todo = set(), [scope["StartAt"]]
        while todo:
            name = todo.pop()
            if name in reached:
                continue
            reached.add(name)
            state = inner[name]
            assert ("Next" in state) != bool(state.get("End")), name
            todo += [state["Next"]] if "Next" in state else []
            todo += [c["Next"] for c in state.get("Catch", [])]
        assert reached == set(inner), f"unreachable: {set(inner) - reached}"
    assert len(names) == len(set(names))
    for placed in states(definition).values():
        state = placed.state
        if state["Type"] in ("Parallel", "Map") or state.get("Resource") == BATCH_SYNC:
            assert "ResultPath" in state and state["ResultPath"] is None, placed.name
        elif state.get("Resource") == SDK_S3_GET:
            assert state["ResultPath"] == "$.read"


# -- the golden definition ---------------------------------------------------------------------------
def test_reference_definition_matches_the_golden_file() -> None:
    text = reference_json()
    if os.environ.get(UPDATE_ENV) == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), f"no golden file: run with {UPDATE_ENV}=1 to write {GOLDEN}"
    assert text == GOLDEN.read_text(), (f"the compiled reference definition changed; if that is intended, "
                                        f"run with {UPDATE_ENV}=1 and review the diff of {GOLDEN}")


def test_golden_file_holds_the_reference_features() -> None:
    definition = json.loads(GOLDEN.read_text())
    assert_well_formed(definition)
    found = states(definition)
    assert definition["TimeoutSeconds"] == 7200
    retry = found["left"].state["Retry"]
    assert retry[0]["ErrorEquals"][0].startswith("Batch.") and retry[0]["JitterStrategy"] == "FULL"
    assert retry[1] == {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 60, "MaxAttempts": 2,
                        "BackoffRate": 2.0, "JitterStrategy": "FULL"}
    right = found["right"].state
    assert right["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "right catch"}]
    assert right["Parameters"]["Timeout"] == {"AttemptDurationSeconds": 90}
    fallback = found["right catch"].state["Parameters"]["ContainerOverrides"]["Command.$"]
    assert "'--attempt', '1', '--fallback', $.error.Error)" in fallback
    square = found["square"].state["Parameters"]
    assert square["ContainerOverrides"]["ResourceRequirements"] == [{"Type": "VCPU", "Value": "2"},
                                                                    {"Type": "MEMORY", "Value": "8192"}]
    assert square["JobDefinition"] != found["start"].state["Parameters"]["JobDefinition"]
    command = found["start"].state["Parameters"]["ContainerOverrides"]["Command.$"]
    encoded = command.split("'--run-info', '", 1)[1].split("'", 1)[0]
    assert json.loads(base64.urlsafe_b64decode(encoded))["tags"] == ["team:ml", "tier:prod"]


def test_catch_fallback_is_the_attempt_after_the_last_retry(tmp_path: Path) -> None:
    # a fallback state's own RetryCount starts at 0: as its attempt it reused the first
    # attempt's number, where a local run gives the fallback the attempt after the last retry
    path = write_flow(tmp_path, "caught", """\
        class CaughtFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.work)

            @catch(var="err")
            @retry(times=2, minutes_between_retries=0)
            @step
            def work(self):
                self.next(self.end)

            @step
            def end(self):
                pass
        """)
    found = states(compiled(path)[2])
    command = found["work"].state["Parameters"]["ContainerOverrides"]["Command.$"]
    assert "'--attempt', States.Format('{}', $$.State.RetryCount))" in command
    assert found["work"].state["Retry"][1]["MaxAttempts"] == 2
    fallback = found["work catch"].state["Parameters"]["ContainerOverrides"]["Command.$"]
    assert "'--attempt', '3', '--fallback', $.error.Error)" in fallback and "RetryCount" not in fallback


# -- the same inputs, the same bytes -------------------------------------------------------------------
def _project(directory: Path) -> Path:
    directory.mkdir(parents=True)
    shutil.copy(REFERENCE, directory / REFERENCE.name)
    (directory / "helpers.py").write_text("SCALE = 2\n")
    return directory / REFERENCE.name


_COMPILE_SCRIPT = """
import os, sys
sys.path.insert(0, {tests!r})
from sfn_helpers import settings_for
from mfc.packager import build_package
from mfc.sfn.compiler import compile_definition, definition_json
flow = sys.argv[1]
package = build_package(flow, root=os.path.dirname(flow))
graph, settings = settings_for(flow, code={{"sha256": package.sha256, "flow_file": os.path.basename(flow)}})
sys.stdout.write(definition_json(compile_definition(graph, settings)))
"""


def test_compile_is_byte_identical_across_directories_and_processes(tmp_path: Path) -> None:
    first, second = _project(tmp_path / "one" / "project"), _project(tmp_path / "elsewhere" / "deeper" / "copy")
    package = build_package(first, root=first.parent)
    assert build_package(second, root=second.parent).sha256 == package.sha256
    graph, settings = settings_for(first, code={"sha256": package.sha256, "flow_file": first.name})
    here = definition_json(compile_definition(graph, settings)).encode()
    env = {**os.environ, "PYTHONHASHSEED": "12345", "MFC_CONFIG": "/nonexistent/mfc-config.toml"}
    done = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT.format(tests=str(Path(__file__).parent)),
                           str(second)], capture_output=True, cwd=second.parent, env=env, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == here
    assert package.sha256.encode() in here and str(tmp_path).encode() not in here


def test_code_reference_changes_the_definition() -> None:
    graph, settings = settings_for(REFERENCE, code=CODE)
    other = settings_for(REFERENCE, code={**CODE, "sha256": "f" * 64})[1]
    assert definition_json(compile_definition(graph, settings)) != definition_json(compile_definition(graph, other))


# -- every shape -----------------------------------------------------------------------------------
def _job_states(definition: dict[str, Any]) -> dict[str, Any]:
    return {n: p for n, p in states(definition).items() if p.state.get("Resource") == BATCH_SYNC}


def test_linear_is_a_chain_of_batch_tasks() -> None:
    _, _, definition, modes = compiled(SHARED_FLOWS / "linear.py")
    assert_well_formed(definition)
    top = definition["States"]
    assert definition["StartAt"] == INIT_STATE and top[INIT_STATE]["Type"] == "Pass"
    assert top[INIT_STATE]["Parameters"] == {"run.$": "States.Format('sfn-{}', $$.Execution.Name)", "ix": ""}
    assert [top[INIT_STATE]["Next"], top["start"]["Next"], top["middle"]["Next"]] == ["start", "middle", "end"]
    assert top["end"]["End"] is True and set(top) == {INIT_STATE, "start", "middle", "end"} and modes == {}
    for name in ("start", "middle", "end"):
        parameters = top[name]["Parameters"]
        assert top[name]["Resource"] == BATCH_SYNC and parameters["JobName"] == f"LinearFlow-{name}"
        assert f"'--step', '{name}'" in parameters["ContainerOverrides"]["Command.$"]
    assert "--execution" in top["start"]["Parameters"]["ContainerOverrides"]["Command.$"]
    assert "--execution" not in top["middle"]["Parameters"]["ContainerOverrides"]["Command.$"]


def test_branch_is_a_parallel_then_the_join() -> None:
    _, _, definition, _ = compiled(FLOWS / "branch.py")
    assert_well_formed(definition)
    top = definition["States"]
    assert top["start"]["Next"] == "start branches"
    parallel = top["start branches"]
    assert parallel["Type"] == "Parallel" and parallel["Next"] == "join"
    assert [b["StartAt"] for b in parallel["Branches"]] == ["a", "b", "c"]
    assert all(b["States"][b["StartAt"]]["End"] is True for b in parallel["Branches"])
    assert top["join"]["Next"] == "end"


def test_foreach_is_an_inline_map_over_the_split_list() -> None:
    _, _, definition, modes = compiled(FLOWS / "foreach.py")
    assert_well_formed(definition)
    top = definition["States"]
    assert modes == {"start": "inline"}
    assert top["start"]["Next"] == "start items"
    reader = top["start items"]
    assert reader["Resource"] == SDK_S3_GET and reader["Parameters"]["Bucket"] == "bucket"
    assert reader["Parameters"]["Key.$"] == ("States.Format('{}/{}/{}/{}/split.json', 'prefix/SfnForeachFlow', "
                                             "$.run, 'start', 'start')")
    assert reader["ResultSelector"] == {"items.$": "States.StringToJson($.Body)"} and reader["Next"] == "start foreach"
    mapped = top["start foreach"]
    assert mapped["ItemSelector"] == {"run.$": "$.run", "ix.$": "States.Format('{}', $$.Map.Item.Index)"}
    assert mapped["ItemsPath"] == "$.read.items" and mapped["MaxConcurrency"] == 16 and "ItemReader" not in mapped
    assert mapped["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}
    body = mapped["ItemProcessor"]["States"]
    assert list(body) == ["square"] and body["square"]["End"] is True
    assert body["square"]["Parameters"]["JobName.$"] == "States.Format('{}-{}', 'SfnForeachFlow-square', $.ix)"
    assert "'--ix', $.ix" in body["square"]["Parameters"]["ContainerOverrides"]["Command.$"]
    assert "'--max-splits', '100'" in top["start"]["Parameters"]["ContainerOverrides"]["Command.$"]
    assert mapped["Next"] == "join" and "--ix" not in top["join"]["Parameters"]["ContainerOverrides"]["Command.$"]


def test_nested_foreach_is_a_map_inside_a_map_with_joined_indices() -> None:
    _, _, definition, modes = compiled(SHARED_FLOWS / "nested_foreach.py", MFC_MAX_NUM_SPLITS="10")
    assert_well_formed(definition)
    assert modes == {"start": "inline", "outer_body": "inline"}
    outer = definition["States"]["start foreach"]["ItemProcessor"]["States"]
    assert set(outer) == {"outer_body", "outer_body items", "outer_body foreach", "inner_join"}
    inner = outer["outer_body foreach"]
    assert inner["ItemSelector"]["ix.$"] == "States.Format('{}-{}', $.ix, $$.Map.Item.Index)"
    assert "States.Format('{}-{}', 'outer_body', $.ix)" in outer["outer_body items"]["Parameters"]["Key.$"]
    assert list(inner["ItemProcessor"]["States"]) == ["inner_body"]
    assert inner["Next"] == "inner_join" and outer["inner_join"]["End"] is True
    found = states(definition)
    assert found["inner_body"].depth == 2 and found["inner_join"].depth == 1 and found["outer_join"].depth == 0


def test_branch_inside_foreach_is_a_parallel_inside_the_map() -> None:
    _, _, definition, _ = compiled(FLOWS / "branch_in_foreach.py")
    assert_well_formed(definition)
    body = definition["States"]["start foreach"]["ItemProcessor"]["States"]
    assert set(body) == {"item", "item branches", "item_join"}
    parallel = body["item branches"]
    assert parallel["Type"] == "Parallel" and [b["StartAt"] for b in parallel["Branches"]] == ["double", "square"]
    double = parallel["Branches"][0]["States"]["double"]["Parameters"]
    assert "JobName.$" in double and "'--ix', $.ix" in double["ContainerOverrides"]["Command.$"]


def test_foreach_inside_branch_is_a_map_inside_a_parallel_branch() -> None:
    _, _, definition, modes = compiled(FLOWS / "foreach_in_branch.py")
    assert_well_formed(definition)
    parallel = definition["States"]["start branches"]
    fan, plain = parallel["Branches"]
    assert fan["StartAt"] == "fan" and plain["StartAt"] == "plain" and parallel["Next"] == "join"
    assert set(fan["States"]) == {"fan", "fan items", "fan foreach", "fan_join"}
    assert fan["States"]["fan foreach"]["Type"] == "Map" and fan["States"]["fan_join"]["End"] is True
    assert modes == {"fan": "inline"}
    # outside any foreach, the foreach's own task id is its step name
    assert "'fan', 'fan')" in fan["States"]["fan items"]["Parameters"]["Key.$"]


# -- Map modes ---------------------------------------------------------------------------------------
def _assert_distributed(mapped: dict[str, Any], label: str) -> None:
    assert mapped["ItemReader"]["Resource"] == S3_GET and mapped["ItemReader"]["ReaderConfig"] == {"InputType": "JSON"}
    assert mapped["ItemReader"]["Parameters"]["Bucket"] == "bucket"
    assert mapped["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    # no ToleratedFailurePercentage: 0 is AWS's default (and moto refuses the field)
    assert "ItemsPath" not in mapped and "ToleratedFailurePercentage" not in mapped and mapped["Label"] == label
    assert mapped["ItemSelector"]["run.$"] == "$.run"


def test_map_mode_flag_forces_distributed() -> None:
    _, _, definition, modes = compiled(FLOWS / "foreach.py", DeployOptions(map_modes=["distributed"]))
    assert_well_formed(definition)
    assert modes == {"start": "distributed"}
    top = definition["States"]
    assert "start items" not in top and top["start"]["Next"] == "start foreach"
    _assert_distributed(top["start foreach"], "start")


def test_map_mode_per_step_on_a_nested_foreach() -> None:
    options = DeployOptions(map_modes=["distributed", "outer_body=inline"])
    _, _, definition, modes = compiled(SHARED_FLOWS / "nested_foreach.py", options)
    assert modes == {"start": "distributed", "outer_body": "inline"}
    _assert_distributed(definition["States"]["start foreach"], "start")
    outer = definition["States"]["start foreach"]["ItemProcessor"]["States"]
    assert outer["outer_body foreach"]["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}


def test_map_mode_of_a_step_that_is_no_foreach_is_refused() -> None:
    with pytest.raises(MfcError, match="'end' is not a foreach step"):
        settings_for(FLOWS / "foreach.py", DeployOptions(map_modes=["end=inline"]))


@pytest.mark.parametrize(("splits", "mode"), [(100, "inline"), (625, "inline"), (626, "distributed"),
                                              (100_000, "distributed")])
def test_max_num_splits_picks_the_map_mode(splits: int, mode: str) -> None:
    # one Batch task per iteration: 6 events + 2 for the iteration; inline up to 5,000 events
    _, _, definition, modes = compiled(FLOWS / "foreach.py", MFC_MAX_NUM_SPLITS=str(splits))
    assert modes == {"start": mode}
    assert ("ItemReader" in definition["States"]["start foreach"]) == (mode == "distributed")
    assert f"'--max-splits', '{splits}'" in definition["States"]["start"]["Parameters"]["ContainerOverrides"]["Command.$"]


def test_nested_foreach_auto_mode_judges_the_whole_iteration() -> None:
    # the inner foreach is small enough inline; the outer one's iterations each hold it, so not
    _, _, definition, modes = compiled(SHARED_FLOWS / "nested_foreach.py", MFC_MAX_NUM_SPLITS="100")
    assert modes == {"start": "distributed", "outer_body": "inline"}
    inner = definition["States"]["start foreach"]["ItemProcessor"]["States"]["outer_body foreach"]
    assert inner["ItemProcessor"]["ProcessorConfig"]["Mode"] == "INLINE"


def test_max_workers_is_each_maps_concurrency() -> None:
    _, _, definition, _ = compiled(SHARED_FLOWS / "nested_foreach.py", MFC_MAX_WORKERS="3")
    maps = [p.state for p in states(definition).values() if p.state["Type"] == "Map"]
    assert len(maps) == 2 and all(m["MaxConcurrency"] == 3 for m in maps)


# -- sizes that do not grow ----------------------------------------------------------------------------
def test_overrides_of_a_200_step_flow_are_as_small_as_a_2_step_flows(tmp_path: Path) -> None:
    sizes = {}
    for steps in (2, 200):
        path = linear_flow(tmp_path / str(steps), steps, name="flow")
        path.write_text(path.read_text().replace(f"class Linear{steps}Flow", "class LongFlow"))
        graph, settings = settings_for(path)
        definition = compile_definition(graph, settings)
        jobs = _job_states(definition)
        assert len(jobs) == steps
        sizes[steps] = {name: overrides_size(p.state, p.depth, settings.max_num_splits)[0]
                        for name, p in jobs.items()}
        assert json.dumps(jobs["end"].state["Parameters"]["ContainerOverrides"])  # present in both
    assert sizes[200]["end"] == sizes[2]["end"] and sizes[200]["start"] == sizes[2]["start"]
    assert max(sizes[200].values()) == max(sizes[2].values()) < 2048


# -- what cannot be compiled -------------------------------------------------------------------------------
def test_split_without_a_join_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "nojoin", """\
        class NoJoinFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.a, self.b)

            @step
            def a(self):
                self.next(self.end)

            @step
            def b(self):
                self.next(self.end)

            @step
            def end(self):
                pass
        """)
    graph, settings = settings_for(path, validate=False)
    with pytest.raises(MfcError) as caught:
        compile_with_modes(graph, settings)
    message = str(caught.value)
    assert f"{path}:{line_of(str(path), 'def start')}:" in message and "no join" in message


def test_a_local_datastore_cannot_back_a_state_machine() -> None:
    with pytest.raises(MfcError, match="Step Functions runs need an S3 datastore"):
        compiled(SHARED_FLOWS / "linear.py", MFC_DATASTORE_ROOT="/tmp/local-datastore")


def test_deployed_code_is_read_back_from_the_definition() -> None:
    from mfc.sfn.deploy import deployed_code

    _, settings, definition, _ = compiled(REFERENCE)
    machine = {"name": "BranchForeachFlow", "definition": definition_json(definition)}
    assert deployed_code(machine) == {"datastore_root": settings.datastore_root, "flow_name": settings.flow_name,
                                      "code_sha256": CODE["sha256"], "flow_file": "branch_foreach.py"}
    with pytest.raises(MfcError, match="'other' does not run an mfc flow"):
        deployed_code({"name": "other", "definition": json.dumps({"StartAt": "x", "States": {"x": {"Type": "Pass"}}})})
