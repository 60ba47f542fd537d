"""Which tasks become ready when a task finishes: linear successors, one task per foreach
item, the one step a switch chose (again, for a switch that repeats its step), and joins once
every branch (or every foreach item) of their split has arrived."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mfc.graph import FlowGraph, StepNode
from mfc.graph_check import branch_index
from mfc.runner.taskspec import InputRef
from mfc.taskid import iteration_of, task_id_for

ItemOf = Callable[[dict[str, Any], int], str]  # (a parent's foreach split, index) -> the item's sha


@dataclass(frozen=True)
class TaskRequest:
    """A task to launch: its step, its parents, (for a foreach body) its split index, the
    foreach indices that name it (outermost first), and how often a looping switch ran its step
    before."""

    step: str
    inputs: tuple[InputRef, ...]
    split_index: int | None = None
    indices: tuple[int, ...] = ()
    iteration: int | None = None

    @property
    def task_id(self) -> str:
        return task_id_for(self.step, self.indices, self.iteration)


def stack_indices(stack: list[dict]) -> tuple[int, ...]:
    return tuple(int(frame["index"]) for frame in stack)


def split_item(split: dict[str, Any], index: int, item_of: ItemOf | None) -> str:
    """The sha of item ``index`` of a foreach's split: inline in records of older runs, else
    read from its split file by ``item_of``."""
    if "items" in split:
        return split["items"][index]
    if item_of is None:
        raise KeyError("split file")
    return item_of(split, index)


def matching_split(graph: FlowGraph, join: str) -> StepNode | None:
    """The split or foreach step that a join closes (None if there is none)."""
    for node in graph.nodes.values():
        if node.matching_join == join and node.opens_split:
            return node
    return None


def child_stack(graph: FlowGraph, step: str, parents: list[tuple[InputRef, dict[str, Any]]],
                split_index: int | None, item_of: ItemOf | None = None) -> list[dict]:
    """The foreach stack of a task of ``step`` given its parents' records: a foreach body pushes
    a frame, a foreach's join pops one, everything else inherits its parent's."""
    first_ref, first = parents[0]
    stack = list(first.get("foreach_stack") or [])
    if graph[step].is_join:
        split = matching_split(graph, step)
        return stack[:-1] if split is not None and split.foreach_var is not None else stack
    split_info = first.get("foreach")
    if split_info:
        i = split_index or 0
        stack.append({"step": first_ref.step, "var": split_info["var"], "num_splits": split_info["num_splits"],
                      "index": i, "input": split_item(split_info, i, item_of)})
    return stack


def _stack_key(stack: list[dict]) -> tuple:
    return tuple((frame["step"], frame["index"]) for frame in stack)


class DagTracker:
    """Turns finished tasks into ready tasks for one run."""

    def __init__(self, graph: FlowGraph) -> None:
        self.graph = graph
        self.split_of_join = {node.matching_join: node for node in graph.nodes.values()
                              if node.opens_split and node.matching_join}
        self._pending: dict[tuple, dict[int, InputRef]] = {}

    @property
    def waiting_joins(self) -> int:
        return len(self._pending)

    def task_done(self, step: str, ref: InputRef, record: dict[str, Any]) -> list[TaskRequest]:
        node = self.graph[step]
        if node.type == "end":
            return []
        stack = record.get("foreach_stack") or []
        indices = stack_indices(stack)
        if node.foreach_var is not None:
            count = record["foreach"]["num_splits"]
            body = node.out_funcs[0]
            first = 0 if self.graph[body].loops else None
            return [TaskRequest(body, (ref,), i, (*indices, i), first) for i in range(count)]
        targets = node.out_funcs
        if node.is_switch:
            chosen = record.get("next")
            if chosen not in node.out_funcs:
                raise KeyError(f"switch step {step} recorded no case it chose")
            if chosen == step:
                return [TaskRequest(step, (ref,), indices=indices, iteration=(iteration_of(ref.task_id) or 0) + 1)]
            targets = [chosen]
        ready = []
        for target in targets:
            if self.graph[target].is_join:
                joined = self._arrive(target, step, ref, stack)
                if joined is not None:
                    ready.append(joined)
            else:
                ready.append(TaskRequest(target, (ref,), indices=indices,
                                         iteration=0 if self.graph[target].loops else None))
        return ready

    def _arrive(self, join: str, step: str, ref: InputRef, stack: list[dict]) -> TaskRequest | None:
        split = self.split_of_join.get(join)
        if split is not None and split.foreach_var is not None:
            frame = stack[-1]
            outer = stack[:-1]
            needed, slot = frame["num_splits"], frame["index"]
        elif split is not None:
            outer = stack
            needed, slot = len(split.out_funcs), branch_index(split, self.graph[join], self.graph[step])
        else:
            in_funcs = list(self.graph[join].in_funcs)
            outer = stack
            needed, slot = len(in_funcs), in_funcs.index(step)
        key = (join, _stack_key(outer))
        bucket = self._pending.setdefault(key, {})
        bucket[slot] = ref
        if len(bucket) < needed:
            return None
        del self._pending[key]
        return TaskRequest(join, tuple(bucket[i] for i in sorted(bucket)), indices=stack_indices(outer))
