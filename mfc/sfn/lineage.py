"""Which tasks a Step Functions state's task reads from, found from the graph and the foreach
indices alone (plus, for a foreach's join, how many items the foreach had), so no state payload
carries them: the same ids the local orchestrator gives (see :mod:`mfc.taskid`)."""

from __future__ import annotations

from collections.abc import Callable

from mfc.exceptions import MfcError
from mfc.graph import FlowGraph
from mfc.runner.dag import matching_split
from mfc.runner.resume import PARAMETERS_STEP
from mfc.runner.taskspec import InputRef
from mfc.taskid import task_id_for

NumSplits = Callable[[str, str], int]  # (foreach step, its task id) -> how many items it had


def parse_indices(ix: str) -> tuple[int, ...]:
    """``"3-1"`` -> ``(3, 1)``; ``""`` -> ``()``."""
    if not ix:
        return ()
    parts = ix.split("-")
    if not all(p.isdigit() for p in parts):
        raise MfcError(f"foreach indices {ix[:80]!r} are not numbers joined by '-'")
    return tuple(int(p) for p in parts)


def task_inputs(graph: FlowGraph, step: str, indices: tuple[int, ...],
                num_splits: NumSplits) -> tuple[list[InputRef], int | None]:
    """The parents of the task of ``step`` at ``indices`` and (first step of a foreach body) its
    split index."""
    node = graph[step]
    if step == "start":
        return [InputRef(PARAMETERS_STEP, "0", 0)], None
    if node.is_join:
        split = matching_split(graph, step)
        if split is not None and split.foreach_var is not None:
            count = num_splits(split.name, task_id_for(split.name, indices))
            return [InputRef(parent, task_id_for(parent, (*indices, k)))
                    for k in range(count) for parent in node.in_funcs], None
        return [InputRef(parent, task_id_for(parent, indices)) for parent in node.in_funcs], None
    parent = node.in_funcs[0]
    if graph[parent].foreach_var is not None:
        if not indices:
            raise MfcError(f"step {step} is in the body of foreach {parent} but was given no foreach index")
        return [InputRef(parent, task_id_for(parent, indices[:-1]))], indices[-1]
    return [InputRef(parent, task_id_for(parent, indices))], None
