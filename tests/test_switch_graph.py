"""Switch transitions offline: how the graph reads them, the local DAG tracker's choices, the
lineage a Step Functions task derives after a switch, the compiled Choice states, and the views
of a run (client step order, UI layout) with a looping step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sfn_helpers import compiled

from mfc.client.run import step_order
from mfc.graph import load_graph
from mfc.runner.dag import DagTracker
from mfc.runner.resume import graph_summary
from mfc.runner.taskspec import InputRef
from mfc.service.ui.dag import layout
from mfc.sfn.compiler import SDK_S3_GET
from mfc.sfn.lineage import task_inputs
from mfc.taskid import indices_of, iteration_of, sort_key, task_id_for

COMPAT_FLOWS = Path(__file__).parent / "compat" / "flows"
SWITCH = str(COMPAT_FLOWS / "switch_flow.py")
SHAPES = str(COMPAT_FLOWS / "switch_shapes.py")


@pytest.fixture(autouse=True)
def _no_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFC_CONFIG", os.path.join(os.sep, "nonexistent", "mfc-config.toml"))


def test_the_graph_reads_cases_condition_and_loops():
    graph = load_graph(SWITCH)
    start, loop = graph["start"], graph["loop"]
    assert start.is_switch and start.condition == "route" and not start.opens_split
    assert start.switch_cases == {"fast": "fast", "slow": "slow", "fanout": "fanout"}
    assert loop.type == "split-switch" and loop.loops and loop.switch_cases == {True: "loop", False: "items"}
    assert sorted(loop.in_funcs) == ["fast", "rejoin", "slow"]  # not itself
    assert graph["gather"].in_funcs == ["even", "odd"] and graph["classify"].split_parents == ["items"]
    assert [n.name for n in graph][:2] == ["start", "fast"]  # a topological order despite the loop


def test_loop_task_ids_round_trip():
    assert task_id_for("loop", (), 0) == "loop.0" and task_id_for("each", (1,), 2) == "each-1.2"
    assert task_id_for("plain", (3,)) == "plain-3"
    assert iteration_of("each-1.2") == 2 and iteration_of("plain-3") is None and iteration_of("12") is None
    assert indices_of("each-1.2", "each") == (1,)
    assert sorted(["loop.10", "loop.2", "loop.0"], key=sort_key) == ["loop.0", "loop.2", "loop.10"]


def _done(tracker: DagTracker, step: str, task_id: str, record: dict) -> list[tuple[str, str]]:
    return [(r.step, r.task_id) for r in tracker.task_done(step, InputRef(step, task_id), record)]


def test_the_tracker_launches_the_chosen_case_and_repeats_a_loop():
    tracker = DagTracker(load_graph(SWITCH))
    assert _done(tracker, "start", "start", {"next": "fanout"}) == [("fanout", "fanout")]
    assert _done(tracker, "fast", "fast", {}) == [("loop", "loop.0")]
    assert _done(tracker, "loop", "loop.0", {"next": "loop"}) == [("loop", "loop.1")]
    assert _done(tracker, "loop", "loop.1", {"next": "items"}) == [("items", "items")]
    with pytest.raises(KeyError, match="recorded no case"):
        tracker.task_done("loop", InputRef("loop", "loop.2"), {})


def test_a_join_after_a_switch_in_a_branch_waits_for_each_branch_once():
    graph = load_graph(SHAPES)
    tracker = DagTracker(graph)
    assert _done(tracker, "c", "c", {}) == []  # branch b1 (via the switch's case c) arrived
    assert _done(tracker, "b2", "b2", {}) == [("merge", "merge")]  # branch b2 too: the join runs
    request = DagTracker(graph)
    request.task_done("b2", InputRef("b2", "b2"), {})
    ready = request.task_done("d", InputRef("d", "d"), {})
    assert [r.inputs for r in ready] == [(InputRef("d", "d"), InputRef("b2", "b2"))]  # in branch order


def test_lineage_after_a_switch_takes_the_parent_that_ran():
    graph = load_graph(SHAPES)
    ran = {"tail", "route", "c", "b2", "each-1.2", "after-1"}

    def ended(refs: list[InputRef]) -> list[bool]:
        return [ref.task_id in ran for ref in refs]

    def splits(step: str, task_id: str) -> int:
        return 2

    # end follows route or tail; both ran (tail after route): tail is the parent
    assert task_inputs(graph, "end", (), splits, ended=ended) == ([InputRef("tail", "tail")], None)
    ran.discard("tail")
    assert task_inputs(graph, "end", (), splits, ended=ended) == ([InputRef("route", "route")], None)
    # the join of a split with a switch in one branch: one input per branch
    assert task_inputs(graph, "merge", (), splits, ended=ended)[0] == [InputRef("c", "c"), InputRef("b2", "b2")]
    # a loop's repetition reads the previous one; the step after it the last one
    assert task_inputs(graph, "each", (1,), splits, iteration=2)[0] == [InputRef("each", "each-1.1")]
    assert task_inputs(graph, "each", (1,), splits, iteration=0) == ([InputRef("start", "start")], 1)
    assert task_inputs(graph, "after", (1,), splits, iteration=2)[0] == [InputRef("each", "each-1.2")]


def test_compiled_switch_is_a_choice_after_reading_the_case():
    _, _, definition, _ = compiled(SWITCH)
    states = definition["States"]
    assert definition["States"]["mfc init"]["Parameters"]["it"] == 0
    read = states["start case"]
    assert read["Resource"] == SDK_S3_GET and read["ResultPath"] == "$.chosen" and read["Next"] == "start switch"
    assert states["start"]["Next"] == "start case"
    choice = states["start switch"]
    assert choice["Type"] == "Choice"
    assert {c["StringEquals"]: c["Next"] for c in choice["Choices"]} == {"fast": "fast", "slow": "slow",
                                                                          "fanout": "fanout"}
    loop = {c["StringEquals"]: c["Next"] for c in states["loop switch"]["Choices"]}
    assert loop == {"loop": "loop again", "items": "items"}
    assert states["loop again"]["Parameters"]["it.$"] == "States.MathAdd($.it, 1)"
    assert states["loop again"]["Next"] == "loop" and states["fast"]["Next"] == "loop enter"
    assert states["loop enter"]["Parameters"]["it"] == 0
    command = states["loop"]["Parameters"]["ContainerOverrides"]["Command.$"]
    assert "'--iter', States.Format('{}', $.it)" in command
    body = states["items foreach"]["ItemProcessor"]["States"]
    assert body["classify switch"]["Type"] == "Choice" and "even" in body and "odd" in body


def test_flows_without_switches_compile_without_the_counter():
    _, _, definition, _ = compiled(Path(__file__).parent / "flows" / "mixed_shapes.py")
    assert "it" not in definition["States"]["mfc init"]["Parameters"]
    assert not any(s["Type"] == "Choice" for s in definition["States"].values())


def test_run_views_order_and_draw_a_looping_step():
    summary = graph_summary(load_graph(SWITCH))
    order = step_order(summary)
    assert order.index("loop") < order.index("items") < order.index("end") and len(order) == len(summary)
    picture = layout(summary)
    assert ("loop", "loop") not in picture.edges
    assert picture.nodes["items"].layer > picture.nodes["loop"].layer
