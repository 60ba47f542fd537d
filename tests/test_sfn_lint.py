"""``mfc sfn lint``: every finding, triggered and not; definitions are compiled from real flows
where a flow can cause the finding, and edited by hand where no valid flow can."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
from graph_helpers import line_of
from sfn_helpers import (
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
from mfc.sfn import intrinsics
from mfc.sfn.build import DeployOptions
from mfc.sfn.compiler import compile_definition, compile_with_modes, definition_json
from mfc.sfn.lint import (
    DEFINITION_LIMIT,
    EXECUTION_INPUT_LIMIT,
    Finding,
    allows,
    execution_input_problem,
    format_findings,
    lint,
    overrides_size,
    policy_actions,
    required_actions,
)
from mfc.sfn.settings import state_machine_name


@pytest.fixture(autouse=True)
def _no_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFC_CONFIG", os.path.join(os.sep, "nonexistent", "mfc-config.toml"))


def findings_of(flow: str | Path, options: DeployOptions | None = None, role_policy: Any = None,
                edit: Any = None, **env: str) -> list[Finding]:
    graph, settings, definition, modes = compiled(flow, options, **env)
    if edit is not None:
        definition = copy.deepcopy(definition)
        edit(definition)
    return lint(graph, settings, definition, modes, role_policy)


def errors(findings: list[Finding], fragment: str = "") -> list[Finding]:
    return [f for f in findings if f.level == "error" and fragment in f.what]


def test_reference_flow_has_no_errors_or_warnings() -> None:
    findings = findings_of(REFERENCE)
    assert [f for f in findings if f.level != "info"] == []
    assert all(f.what and f.fix for f in findings)


# -- definition size --------------------------------------------------------------------------------------
def test_definition_over_1_mib(tmp_path: Path) -> None:
    # about 1.8 KB of state per step: a 600-step flow is over the limit, a 200-step one is not
    big = findings_of(linear_flow(tmp_path / "big", 600))
    [error] = errors(big, "the definition is")
    assert f"over Step Functions' {DEFINITION_LIMIT:,}" in error.what and "split the flow" in error.fix
    assert errors(findings_of(linear_flow(tmp_path / "small", 200)), "the definition is") == []


# -- names ------------------------------------------------------------------------------------------------
def test_state_machine_name_over_80_characters_gets_the_hashed_name() -> None:
    long_name = "team.feature-branch." + "VeryLongFlowName" * 5
    [error] = errors(findings_of(REFERENCE, DeployOptions(name=long_name)), "state machine name")
    assert f"is {len(long_name)} characters, over Step Functions' 80" in error.what
    hashed = state_machine_name(long_name)
    assert len(hashed) == 80 and repr(hashed) in error.fix
    assert errors(findings_of(REFERENCE, DeployOptions(name=hashed)), "state machine name") == []
    assert errors(findings_of(REFERENCE, DeployOptions(name="x" * 80)), "state machine name") == []


def test_state_machine_name_with_refused_characters() -> None:
    [error] = errors(findings_of(REFERENCE, DeployOptions(name="my flow/prod")), "state machine name")
    assert "characters Step Functions refuses" in error.what and "'my-flow-prod'" in error.fix


def test_state_names_unique_across_every_scope() -> None:
    def duplicate(definition: dict[str, Any]) -> None:
        # a state in a Parallel branch and one in the Map body named like a top-level state
        branch = definition["States"]["start branches"]["Branches"][0]
        branch["States"]["end"] = branch["States"].pop("left")
        branch["StartAt"] = "end"
        body = definition["States"]["join_sides foreach"]["ItemProcessor"]
        body["States"]["end"] = body["States"].pop("square")
        body["StartAt"] = "end"

    [error] = errors(findings_of(REFERENCE, edit=duplicate), "state name")
    assert "'end' is used 3 times" in error.what and "Parallel branches and Map bodies" in error.what
    assert errors(findings_of(REFERENCE), "state name") == []


def test_state_name_over_80_characters() -> None:
    long_name = "s" * 90

    def rename(definition: dict[str, Any]) -> None:
        body = definition["States"]["join_sides foreach"]["ItemProcessor"]
        body["States"][long_name] = body["States"].pop("square")
        body["StartAt"] = long_name

    [error] = errors(findings_of(REFERENCE, edit=rename), "characters, over Step Functions' 80")
    assert "is 90 characters" in error.what and "'" + "s" * 71 + "-" in error.fix


def test_compiled_state_names_stay_within_80_characters(tmp_path: Path) -> None:
    step = "a_step_with_a_name_long_enough_that_its_state_names_need_the_hash_" + "x" * 20
    path = write_flow(tmp_path, "longstep", f"""\
        class LongStepFlow(FlowSpec):
            @step
            def start(self):
                self.items = [1, 2]
                self.next(self.{step}, foreach="items")

            @catch(var="err")
            @step
            def {step}(self):
                self.next(self.join)

            @step
            def join(self, inputs):
                self.next(self.end)

            @step
            def end(self):
                pass
        """)
    findings = findings_of(path)
    assert errors(findings) == [] and all(len(name) <= 80 for name in states(compiled(path)[2]))


def test_distributed_map_labels_are_unique_and_short(tmp_path: Path) -> None:
    # two foreach steps whose names share their first 40 characters: the compiler once cut both
    # labels to the same 40 characters
    head = "fan_out_over_every_item_of_the_catalogue_"
    path = write_flow(tmp_path, "labels", f"""\
        class LabelFlow(FlowSpec):
            @step
            def start(self):
                self.items = [1, 2]
                self.next(self.{head}first)

            @step
            def {head}first(self):
                self.next(self.body_a, foreach="items")

            @step
            def body_a(self):
                self.next(self.join_a)

            @step
            def join_a(self, inputs):
                self.items = [1, 2]
                self.next(self.{head}second)

            @step
            def {head}second(self):
                self.next(self.body_b, foreach="items")

            @step
            def body_b(self):
                self.next(self.join_b)

            @step
            def join_b(self, inputs):
                self.next(self.end)

            @step
            def end(self):
                pass
        """)
    options = DeployOptions(map_modes=["distributed"])
    graph, settings, definition, modes = compiled(path, options)
    labels = [p.state["Label"] for p in states(definition).values() if p.state["Type"] == "Map"]
    assert len(labels) == 2 and len(set(labels)) == 2 and all(len(label) <= 40 for label in labels)
    assert errors(lint(graph, settings, definition, modes)) == []

    def same_label(d: dict[str, Any]) -> None:
        for placed in states(d).values():
            if placed.state["Type"] == "Map":
                placed.state["Label"] = head[:40]

    [error] = errors(findings_of(path, options, edit=same_label), "share the Label")
    assert repr(head[:40]) in error.what

    def bad_label(d: dict[str, Any]) -> None:
        d["States"][f"{head}first foreach"]["Label"] = "has spaces and is far longer than forty characters"

    assert errors(findings_of(path, options, edit=bad_label), "must be at most 40")


# -- container overrides ---------------------------------------------------------------------------------------
def test_overrides_size_counts_the_command_at_its_longest() -> None:
    state = {"Parameters": {"ContainerOverrides": {"Command.$": "States.Array('a', $.run, $.ix)"}}}
    size, command = overrides_size(state, depth=2, max_num_splits=1000)
    # the run id up to 84 characters, two indices below 1000 joined by '-': 7
    assert command == len(json.dumps(["a", "x" * 84, "x" * 7], separators=(",", ":")))
    assert size == len('{"Command":}') + command


def test_container_overrides_over_8_kib() -> None:
    # every tag goes into the start task's run info
    tags = [f"tag{i}:" + "v" * 60 for i in range(130)]
    findings = findings_of(REFERENCE, DeployOptions(tags=tags))
    [error] = errors(findings, "container overrides")
    assert error.what.startswith("state 'start': its container overrides can reach ")
    assert "over AWS Batch's 8,192 (8 KiB)" in error.what and "fewer or shorter --tag values" in error.fix
    assert errors(findings_of(REFERENCE, DeployOptions(tags=tags[:70])), "container overrides") == []


def test_container_overrides_of_every_compiled_state_are_small() -> None:
    graph, settings, definition, _ = compiled(SHARED_FLOWS / "nested_foreach.py", MFC_MAX_NUM_SPLITS="100000")
    for placed in states(definition).values():
        if "ContainerOverrides" in placed.state.get("Parameters", {}):
            assert overrides_size(placed.state, placed.depth, settings.max_num_splits)[0] < 2048, placed.name


# -- Batch job names ---------------------------------------------------------------------------------------
def test_job_name_with_refused_characters() -> None:
    def rename(d: dict[str, Any]) -> None:
        d["States"]["end"]["Parameters"]["JobName"] = "-end step!"

    [error] = errors(findings_of(REFERENCE, edit=rename), "Batch job name")
    assert "state 'end'" in error.what and "'-end step!'" in error.what and "letters, digits, - and _" in error.what


def test_job_name_too_long_with_its_foreach_indices() -> None:
    def lengthen(d: dict[str, Any]) -> None:
        square = d["States"]["join_sides foreach"]["ItemProcessor"]["States"]["square"]
        square["Parameters"]["JobName.$"] = f"States.Format('{{}}-{{}}', '{'j' * 125}', $.ix)"

    # 125 + '-' + an index below 100 (2 characters) = 128: fits
    assert errors(findings_of(REFERENCE, edit=lengthen), "Batch job name") == []
    [error] = errors(findings_of(REFERENCE, edit=lengthen, MFC_MAX_NUM_SPLITS="1000"), "Batch job name")
    assert "can reach 129 characters" in error.what and "<$.ix>" in error.what


def test_compiled_job_names_leave_room_for_deep_indices(tmp_path: Path) -> None:
    # the compiler kept 24 characters for the indices whatever the depth: three levels of
    # indices below 10**8 need 1 + 3 * 8 + 2 = 27
    name = "Deep" + "F" * 96 + "Flow"
    path = write_flow(tmp_path, "deep", f"""\
        class {name}(FlowSpec):
            @step
            def start(self):
                self.a = [1]
                self.next(self.l1, foreach="a")

            @step
            def l1(self):
                self.next(self.l2, foreach="a")

            @step
            def l2(self):
                self.next(self.leaf, foreach="a")

            @step
            def leaf(self):
                self.next(self.j2)

            @step
            def j2(self, inputs):
                self.next(self.j1)

            @step
            def j1(self, inputs):
                self.next(self.j0)

            @step
            def j0(self, inputs):
                self.next(self.end)

            @step
            def end(self):
                pass
        """)
    findings = findings_of(path, MFC_MAX_NUM_SPLITS=str(10**8))
    assert errors(findings, "Batch job name") == []
    leaf = states(compiled(path, MFC_MAX_NUM_SPLITS=str(10**8))[2])["leaf"]
    assert leaf.depth == 3 and "JobName.$" in leaf.state["Parameters"]


# -- history events and Map modes --------------------------------------------------------------------------------
def test_inline_map_too_wide_for_the_history() -> None:
    findings = findings_of(FLOWS / "foreach.py", DeployOptions(map_modes=["inline"]), MFC_MAX_NUM_SPLITS="5000")
    [error] = errors(findings, "history events")
    assert error.what.startswith("an execution may need about 40,034 history events with 5,000-way foreaches")
    assert "over Step Functions' 25,000" in error.what
    # 34 events outside the Map, 8 per item: 3,120 items fit
    assert error.fix == "--map-mode start=distributed or --max-num-splits 3120"
    [info] = [f for f in findings if f.what.startswith("foreach start:")]
    assert "inline Map (--map-mode inline): up to 5,000 items" in info.what and "= 40,000" in info.what
    fitting = findings_of(FLOWS / "foreach.py", DeployOptions(map_modes=["inline"]), MFC_MAX_NUM_SPLITS="3120")
    assert errors(fitting) == []


def test_auto_mode_keeps_a_wide_foreach_within_the_history() -> None:
    findings = findings_of(FLOWS / "foreach.py", MFC_MAX_NUM_SPLITS="100000")
    assert errors(findings) == []
    [info] = [f for f in findings if f.what.startswith("foreach start:")]
    assert "Distributed Map (chosen automatically): each of up to 100,000 items" in info.what
    assert "child execution of about 10 history events" in info.what
    [total] = [f for f in findings if f.what.startswith("an execution needs about")]
    assert "(Step Functions stops one at 25,000)" in total.what


def test_child_execution_too_big_for_its_history() -> None:
    options = DeployOptions(map_modes=["start=distributed", "outer_body=inline"])
    findings = findings_of(SHARED_FLOWS / "nested_foreach.py", options, MFC_MAX_NUM_SPLITS="5000")
    [error] = errors(findings, "history events")
    assert error.what.startswith("each child execution of 'start foreach' may need about ")
    assert error.fix.startswith("--map-mode outer_body=distributed or --max-num-splits ")
    assert errors(findings_of(SHARED_FLOWS / "nested_foreach.py", MFC_MAX_NUM_SPLITS="5000")) == []


def test_history_fix_names_the_map_modes_that_suffice() -> None:
    # both foreaches inline at 200 items: the outer one holds 200 x 200 inner iterations
    findings = findings_of(SHARED_FLOWS / "nested_foreach.py", DeployOptions(map_modes=["inline"]), MFC_MAX_NUM_SPLITS="200")
    [error] = errors(findings, "history events")
    assert error.fix == "--map-mode outer_body=distributed or --map-mode start=distributed or --max-num-splits 54"
    # at 40 items the same two inline Maps fit
    assert errors(findings_of(SHARED_FLOWS / "nested_foreach.py", DeployOptions(map_modes=["inline"]),
                              MFC_MAX_NUM_SPLITS="40"), "history events") == []


def test_history_fix_when_only_all_maps_together_suffice(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "twice", """\
        class TwiceFlow(FlowSpec):
            @step
            def start(self):
                self.items = [1]
                self.next(self.first, foreach="items")

            @step
            def first(self):
                self.next(self.join_first)

            @step
            def join_first(self, inputs):
                self.items = [1]
                self.next(self.second, foreach="items")

            @step
            def second(self):
                self.next(self.join_second)

            @step
            def join_second(self, inputs):
                self.next(self.end)

            @step
            def end(self):
                pass
        """)
    # 52 events besides the two Maps, 8 per item in each: at 3,119 items neither Map made
    # distributed alone brings the execution within 25,000 events, both together do
    findings = findings_of(path, DeployOptions(map_modes=["inline"]), MFC_MAX_NUM_SPLITS="3119")
    [error] = errors(findings, "history events")
    assert error.fix == "--map-mode join_first=distributed --map-mode start=distributed or --max-num-splits 1559"
    [error] = errors(findings_of(path, DeployOptions(map_modes=["inline"]), MFC_MAX_NUM_SPLITS="3118"),
                     "history events")
    assert error.fix == "--map-mode join_first=distributed or --map-mode start=distributed or --max-num-splits 1559"


def test_inline_map_concurrency_above_40() -> None:
    findings = findings_of(FLOWS / "foreach.py", MFC_MAX_WORKERS="64")
    [warning] = [f for f in findings if f.level == "warning"]
    assert warning.what == ("foreach start: an inline Map runs at most 40 iterations at a time, not the 64 of "
                            "max_workers")
    assert warning.fix == "--map-mode start=distributed to run more at once"
    assert [f for f in findings_of(FLOWS / "foreach.py", MFC_MAX_WORKERS="40") if f.level == "warning"] == []
    assert [f for f in findings_of(FLOWS / "foreach.py", MFC_MAX_WORKERS="64", MFC_MAX_NUM_SPLITS="40")
            if f.level == "warning"] == []  # never more than 40 items
    distributed = findings_of(FLOWS / "foreach.py", DeployOptions(map_modes=["distributed"]), MFC_MAX_WORKERS="64")
    assert [f for f in distributed if f.level == "warning"] == []


# -- @timeout ---------------------------------------------------------------------------------------------------
def test_timeout_under_batchs_minimum(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "short", """\
        class ShortFlow(FlowSpec):
            @timeout(seconds=10)
            @step
            def start(self):
                self.next(self.end)

            @timeout(seconds=60)
            @step
            def end(self):
                pass
        """)
    findings = findings_of(path)
    [warning] = [f for f in findings if f.level == "warning"]
    assert warning.what == (f"{path}:{line_of(str(path), 'def start')}: step start: @timeout of 10 s is shorter than "
                            "AWS Batch's minimum attempt duration: on Step Functions the job gets 60 s")
    assert "at least 60 seconds" in warning.fix
    assert states(compiled(path)[2])["start"].state["Parameters"]["Timeout"] == {"AttemptDurationSeconds": 60}
    assert [f for f in findings_of(REFERENCE) if f.level == "warning"] == []  # 90 s


# -- IAM ------------------------------------------------------------------------------------------------------
BATCH_ACTIONS = ["batch:DescribeJobs", "batch:SubmitJob", "batch:TagResource", "batch:TerminateJob",
                 "events:DescribeRule", "events:PutRule", "events:PutTargets"]
JOB_ACTIONS = ["s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject", "states:DescribeExecution"]


def test_required_actions_follow_what_the_definition_uses() -> None:
    linear = compiled(SHARED_FLOWS / "linear.py")[2]
    assert required_actions(linear) == {"state_machine": BATCH_ACTIONS, "job": JOB_ACTIONS}
    inline = compiled(FLOWS / "foreach.py")[2]
    assert required_actions(inline)["state_machine"] == sorted([*BATCH_ACTIONS, "s3:GetObject"])
    distributed = compiled(FLOWS / "foreach.py", DeployOptions(map_modes=["distributed"]))[2]
    assert required_actions(distributed)["state_machine"] == sorted(
        [*BATCH_ACTIONS, "s3:GetObject", "states:DescribeExecution", "states:StartExecution", "states:StopExecution"])


def test_missing_actions_of_the_role_are_errors() -> None:
    options = DeployOptions(map_modes=["distributed"])
    findings = findings_of(FLOWS / "foreach.py", options, role_policy=["batch:*", "Events:Put*", "events:DescribeRule"])
    missing = [f.what.split(" does not allow ")[1].split(",")[0] for f in errors(findings)]
    assert missing == ["s3:GetObject", "states:DescribeExecution", "states:StartExecution", "states:StopExecution"]
    [start] = errors(findings, "states:StartExecution")
    assert "child executions" in start.what and start.fix == "add states:StartExecution to that role's policy"
    assert errors(findings_of(FLOWS / "foreach.py", options, role_policy=["*"])) == []
    assert errors(findings_of(FLOWS / "foreach.py", role_policy=["batch:*", "events:*", "s3:GetObject"])) == []


def test_job_role_actions_are_checked_when_given() -> None:
    findings = findings_of(SHARED_FLOWS / "linear.py", role_policy={"job": ["s3:*"]})
    [error] = errors(findings)
    assert error.what.startswith("the Batch job role (batch_job_role) does not allow states:DescribeExecution")


def test_action_patterns_and_policy_documents() -> None:
    assert allows(["batch:*"], "batch:SubmitJob") and allows(["BATCH:submitjob"], "batch:SubmitJob")
    assert allows(["s3:Get?bject"], "s3:GetObject") and not allows(["s3:Get"], "s3:GetObject")
    assert not allows(["batch:Submit.*"], "batch:SubmitJobX") and not allows([], "s3:GetObject")
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "batch:*", "Resource": "*"},
        {"Effect": "Allow", "Action": ["events:PutRule", "s3:GetObject"], "Resource": "*"},
        {"Effect": "Deny", "Action": "states:*", "Resource": "*"}]}
    assert policy_actions(document) == ["batch:*", "events:PutRule", "s3:GetObject"]
    assert policy_actions(json.dumps({"Statement": {"Effect": "Allow", "Action": "*"}})) == ["*"]


def test_without_a_policy_the_needed_actions_are_notes() -> None:
    notes = [f.what for f in findings_of(SHARED_FLOWS / "linear.py") if f.level == "info" and "must allow" in f.what]
    assert notes == [f"the state machine role (sfn_role) must allow {', '.join(BATCH_ACTIONS)}",
                     f"the Batch job role (batch_job_role) must allow {', '.join(JOB_ACTIONS)}"]


# -- execution input -------------------------------------------------------------------------------------------
def test_execution_input_limit() -> None:
    assert execution_input_problem("x" * EXECUTION_INPUT_LIMIT) is None
    problem = execution_input_problem("x" * (EXECUTION_INPUT_LIMIT + 1))
    assert problem is not None and "262,145 bytes, over Step Functions' 262,144 (256 KiB)" in problem
    assert execution_input_problem("é" * (EXECUTION_INPUT_LIMIT // 2 + 1)) is not None  # bytes, not characters


# -- output ---------------------------------------------------------------------------------------------------
def test_findings_come_errors_first_and_print_with_their_fixes(tmp_path: Path) -> None:
    path = write_flow(tmp_path, "mixed", """\
        class MixedFlow(FlowSpec):
            @timeout(seconds=5)
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
        """)
    findings = findings_of(path, DeployOptions(name="bad name"))
    levels = [f.level for f in findings]
    assert levels == sorted(levels, key=("error", "warning", "info").index) and levels[:2] == ["error", "warning"]
    text = format_findings(findings)
    lines = text.splitlines()
    assert lines[0].startswith("error: state machine name 'bad name'") and lines[1].startswith("  fix: deploy it as")
    assert lines[-1] == f"1 error, 1 warning, {levels.count('info')} notes" and text.endswith("\n")
    assert format_findings([]) == "0 errors, 0 warnings, 0 notes\n"


# -- the intrinsic functions lint reads --------------------------------------------------------------------------
def test_intrinsics_read_back_what_the_compiler_writes() -> None:
    graph, settings = settings_for(REFERENCE)
    definition = compile_definition(graph, settings)
    command = states(definition)["start"].state["Parameters"]["ContainerOverrides"]["Command.$"]
    parsed = intrinsics.parse(command)
    assert isinstance(parsed, intrinsics.Call) and parsed.name == "States.Array"
    values = intrinsics.longest(parsed, 0, settings.max_num_splits)
    assert values[:4] == ["python", "-u", "-m", "mfc.sfn.task"]
    info = json.loads(base64.urlsafe_b64decode(values[values.index("--run-info") + 1]))
    assert info == {"state_machine": "SfnReferenceFlow", "tags": [], "user": "tester"}
    assert intrinsics.shown(intrinsics.parse("States.Format('{}-{}', 'a\\{b', $.ix)")) == "a{b-<$.ix>"
    for bad in ("States.Array('a'", "'unterminated", "States.Array('a') extra"):
        with pytest.raises(MfcError):
            intrinsics.parse(bad)


def test_lint_is_pure_and_leaves_the_definition_alone() -> None:
    graph, settings = settings_for(REFERENCE)
    definition, modes = compile_with_modes(graph, settings)
    before = definition_json(definition)
    assert lint(graph, settings, definition, modes) == lint(graph, settings, definition, modes)
    assert definition_json(definition) == before
    other = dataclasses.replace(settings, max_num_splits=7)
    assert lint(graph, other, definition, modes) != lint(graph, settings, definition, modes)
