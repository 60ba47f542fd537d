"""The UI's pure parts: the DAG layout and step statuses, the timeline, the formatting filters."""

from __future__ import annotations

from mfc.service.ui.dag import NODE_HEIGHT, TaskState, layout, step_views, task_status
from mfc.service.ui.render import environment, seconds, size, when
from mfc.service.ui.timeline import AttemptSpan, timeline

BRANCH = {"start": ["start", ["a", "b"], None, False], "a": ["linear", ["join"], None, False],
          "b": ["linear", ["b2"], None, False], "b2": ["linear", ["join"], None, False],
          "join": ["join", ["end"], None, True], "end": ["end", [], None, False]}
FOREACH = {"start": ["start", ["body"], "letters", False], "body": ["linear", ["join"], None, False],
           "join": ["join", ["end"], None, True], "end": ["end", [], None, False]}


def test_layers_follow_the_longest_path_from_start():
    lay = layout(BRANCH)
    layers = {name: n.layer for name, n in lay.nodes.items()}
    assert layers == {"start": 0, "a": 1, "b": 1, "b2": 2, "join": 3, "end": 4}
    assert sorted(lay.edges) == sorted([("start", "a"), ("start", "b"), ("a", "join"), ("b", "b2"),
                                        ("b2", "join"), ("join", "end")])


def test_branches_stand_side_by_side_in_their_order():
    lay = layout(BRANCH)
    a, b = lay.nodes["a"], lay.nodes["b"]
    assert a.y == b.y and a.x < b.x
    assert lay.nodes["b2"].y > b.y
    assert lay.nodes["end"].y + NODE_HEIGHT <= lay.height
    assert all(0 <= n.x and n.x + 1 < lay.width for n in lay.nodes.values())
    # a node's box never overlaps another's
    boxes = sorted((n.y, n.x) for n in lay.nodes.values())
    assert len(set(boxes)) == len(boxes)


def test_a_damaged_summary_still_draws():
    lay = layout({"start": ["start", ["missing"], None, False], "loner": "junk"})
    assert set(lay.nodes) == {"start", "loner"} and lay.edges == []
    assert layout({}).nodes == {}


def test_a_retried_failure_is_running_until_it_is_final_or_the_run_ended():
    assert task_status(TaskState(None, False), False) == "running"
    assert task_status(TaskState("failed", False), False) == "running"
    assert task_status(TaskState("failed", True), False) == "failed"
    assert task_status(TaskState("died", False), True) == "failed"
    assert task_status(TaskState("caught", True), False) == "succeeded"


def test_foreach_counts_and_step_statuses():
    tasks = {"start": [TaskState("ok", True)], "body": [TaskState("ok", True), TaskState(None, False)]}
    views = step_views(FOREACH, tasks, {"start": 4}, run_ended=False)
    assert views["start"].status == "succeeded" and views["start"].caption == "succeeded"
    assert views["body"].status == "running" and views["body"].caption == "1/4 tasks"
    assert views["join"].status == "pending" and views["join"].caption == "pending"
    tasks["body"] = [TaskState("ok", True)] * 2 + [TaskState("failed", True)]
    views = step_views(FOREACH, tasks, {"start": 4}, run_ended=False)
    assert views["body"].status == "failed"
    tasks["body"] = [TaskState("ok", True)] * 2  # two of four done, nothing running yet: not succeeded
    assert step_views(FOREACH, tasks, {"start": 4}, run_ended=False)["body"].status == "running"
    ended = step_views(FOREACH, tasks, {"start": 4}, run_ended=True)
    assert ended["body"].status == "failed" and ended["join"].caption == "not run"
    tasks["body"] = [TaskState("ok", True)] * 4
    assert step_views(FOREACH, tasks, {"start": 4}, run_ended=False)["body"].caption == "4/4 tasks"


def test_timeline_bars_span_the_run_and_group_by_step():
    spans = [AttemptSpan("body", "body-10", 0, 105.0, 110.0, "ok"),
             AttemptSpan("body", "body-2", 0, 102.0, None, None),
             AttemptSpan("start", "start", 0, 100.0, 102.0, "ok"),
             AttemptSpan("end", "end", 0, None, None, None)]
    tl = timeline(spans, ["start", "body", "end"], start=100.0, now=120.0)
    assert [step for step, _ in tl.groups] == ["start", "body"]
    start_bar = tl.groups[0][1][0]
    assert start_bar.left == 0 and start_bar.width == 10.0
    body = tl.groups[1][1]
    assert [b.task_id for b in body] == ["body-2", "body-10"]
    assert body[0].ending == "running" and body[0].width == 90.0 and body[0].seconds == 18.0
    assert tl.span == 20.0 and tl.omitted == 0
    assert timeline(spans, [], 100.0, 120.0, max_bars=1).omitted == 2


def test_filters():
    assert seconds(0.25) == "250 ms" and seconds(12.34) == "12.3 s" and seconds(125) == "2m 05s"
    assert seconds(7380) == "2h 03m" and seconds(None) == ""
    assert size(100) == "100 B" and size(1536) == "1.5 KiB" and size(None) == ""
    assert when(0) == "1970-01-01 00:00:00" and when(None) == ""


def test_templates_escape_everything():
    html = environment.from_string("{{ x }}").render(x="<script>alert(1)</script>")
    assert "<script>" not in html and "&lt;script&gt;" in html
