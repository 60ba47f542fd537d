"""A run's DAG for the UI: a pure layout from the run record's graph summary to node positions,
and the step statuses the nodes are coloured by.

The graph summary is what :func:`mfc.runner.resume.graph_summary` writes into the run record:
``{step: [type, out_funcs, foreach_var, is_join]}``. Layers are the longest path from ``start``
(so a join sits below every branch it joins); the steps of one layer stand side by side, ordered
by where their parents stand so that branches do not cross more than they must.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

NODE_WIDTH = 168
NODE_HEIGHT = 46
GAP_X = 28
GAP_Y = 40
MARGIN = 12

STEP_STATUSES = ("pending", "running", "succeeded", "failed")
FAILED_ENDINGS = frozenset({"failed", "died", "timed_out", "interrupted", "stopped"})
SUCCEEDED_ENDINGS = frozenset({"ok", "caught"})
# The node fills (the CSS uses the same colours for badges); colour-blind safe pairs.
STATUS_FILL = {"pending": "#e5e7eb", "running": "#93c5fd", "succeeded": "#86efac", "failed": "#fca5a5"}


@dataclass(frozen=True)
class Node:
    """A step's box: its layer (row), its place in the layer, and its top-left corner."""

    name: str
    layer: int
    column: int
    x: float
    y: float


@dataclass(frozen=True)
class Layout:
    """Where each step's box goes, the edges between them, and the picture's size."""

    nodes: dict[str, Node]
    edges: list[tuple[str, str]]
    width: float
    height: float


def _successors(graph: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each step's targets, keeping only steps the summary knows (a damaged summary draws what it
    can), without a looping switch's case back to its own step."""
    return {name: [t for t in (spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 else [])
                   if t in graph and t != name] for name, spec in graph.items()}


def _layers(succ: Mapping[str, list[str]]) -> dict[str, int]:
    """Longest path from the roots (``start``, or every step nothing points at), by relaxing edges
    in a topological order (Kahn); steps on a cycle, which a valid flow never has, go last."""
    indegree = {name: 0 for name in succ}
    for targets in succ.values():
        for t in targets:
            indegree[t] += 1
    order = [n for n in succ if indegree[n] == 0]
    layer = dict.fromkeys(order, 0)
    i = 0
    while i < len(order):
        name = order[i]
        i += 1
        for t in succ[name]:
            layer[t] = max(layer.get(t, 0), layer[name] + 1)
            indegree[t] -= 1
            if indegree[t] == 0:
                order.append(t)
    deepest = max(layer.values(), default=-1)
    for name in succ:
        layer.setdefault(name, deepest + 1)
    return layer


def layout(graph: Mapping[str, Any]) -> Layout:
    """Positions for the steps of a graph summary (see the module docstring)."""
    succ = _successors(graph)
    layer_of = _layers(succ)
    parents: dict[str, list[str]] = {name: [] for name in succ}
    for name, targets in succ.items():
        for t in targets:
            parents[t].append(name)
    rows: dict[int, list[str]] = {}
    for name in succ:  # the summary's order (the flow's order) breaks ties
        rows.setdefault(layer_of[name], []).append(name)
    column: dict[str, float] = {}
    for depth in sorted(rows):
        def rank(name: str) -> tuple[float, int]:
            placed = [column[p] + succ[p].index(name) / 100 for p in parents[name] if p in column]
            return (sum(placed) / len(placed) if placed else 0.0, list(succ).index(name))
        rows[depth].sort(key=rank)
        for i, name in enumerate(rows[depth]):
            column[name] = float(i)
    widest = max((len(r) for r in rows.values()), default=0)
    width = 2 * MARGIN + widest * NODE_WIDTH + max(widest - 1, 0) * GAP_X
    nodes = {}
    for depth, names in rows.items():
        row_width = len(names) * NODE_WIDTH + (len(names) - 1) * GAP_X
        left = (width - row_width) / 2
        for i, name in enumerate(names):
            nodes[name] = Node(name, depth, i, left + i * (NODE_WIDTH + GAP_X), MARGIN + depth * (NODE_HEIGHT + GAP_Y))
    height = 2 * MARGIN + len(rows) * NODE_HEIGHT + max(len(rows) - 1, 0) * GAP_Y
    edges = [(name, t) for name, targets in succ.items() for t in targets]
    return Layout(nodes, edges, width, height)


@dataclass(frozen=True)
class TaskState:
    """What the DAG needs of one task: its latest attempt's ending (None while it runs), and
    whether that attempt is the task's final one."""

    ending: str | None
    final: bool


def task_status(task: TaskState, run_ended: bool) -> str:
    """A task as the UI shows it. A failed attempt that is not final will be retried, so the task
    still runs, unless the run has ended (then nothing retries it)."""
    if task.ending is None:
        return "running"
    if task.ending in SUCCEEDED_ENDINGS:
        return "succeeded"
    return "failed" if task.final or run_ended else "running"


@dataclass(frozen=True)
class StepView:
    """A DAG node's colour and caption: its status, its finished and expected task counts."""

    status: str
    done: int
    total: int
    foreach: bool
    run_ended: bool = False

    @property
    def caption(self) -> str:
        if self.status == "pending" and self.run_ended:
            return "not run"
        if self.status == "pending" and not self.foreach:
            return "pending"
        if self.foreach or self.total > 1:
            return f"{self.done}/{self.total} tasks"
        return self.status


def step_views(graph: Mapping[str, Any], tasks: Mapping[str, Iterable[TaskState]], splits: Mapping[str, int],
               run_ended: bool) -> dict[str, StepView]:
    """Each step's view from its tasks. ``splits``: how many items each foreach step split into,
    summed over its tasks (the ``num_splits`` of their records), so a foreach body shows how many
    of its tasks are done out of how many there will be, before they have all started."""
    succ = _successors(graph)
    foreach_parent = {t: name for name, targets in succ.items() for t in targets
                      if _foreach_var(graph.get(name)) is not None}
    views = {}
    for name in succ:
        states = [task_status(t, run_ended) for t in tasks.get(name, ())]
        expected = splits.get(foreach_parent[name], 0) if name in foreach_parent else 0
        total = max(expected, len(states))
        done = states.count("succeeded")
        if not states:
            status = "pending"
        elif "running" in states:
            status = "running"
        elif "failed" in states:
            status = "failed"
        else:
            status = "succeeded" if done >= total else ("failed" if run_ended else "running")
        views[name] = StepView(status, done, total, name in foreach_parent, run_ended)
    return views


def _foreach_var(spec: Any) -> str | None:
    if isinstance(spec, (list, tuple)) and len(spec) > 2 and isinstance(spec[2], str):
        return spec[2]
    return None
