"""Which tasks a Step Functions state's task reads from, found from the graph and the foreach
indices alone (plus, for a foreach's join, how many items the foreach had), so no state payload
carries them: the same ids the local orchestrator gives (see :mod:`mfc.taskid`).

After a switch, a step can be reached from several steps, only some of which ran: its parent is
the one of them that ended well in this run (at these indices), the latest in the flow's order
when several did (a switch's own step, then the case it chose). A looping switch's repetitions
are told apart by the iteration the state data counts (``$.it``).
"""

from __future__ import annotations

from collections.abc import Callable

from mfc.exceptions import MfcError
from mfc.graph import FlowGraph
from mfc.graph_check import branch_index
from mfc.runner.dag import matching_split
from mfc.runner.resume import PARAMETERS_STEP
from mfc.runner.taskspec import InputRef
from mfc.taskid import task_id_for

NumSplits = Callable[[str, str], int]  # (foreach step, its task id) -> how many items it had
Ended = Callable[[list[InputRef]], list[bool]]  # which of these tasks ended well in this run


def parse_indices(ix: str) -> tuple[int, ...]:
    """``"3-1"`` -> ``(3, 1)``; ``""`` -> ``()``."""
    if not ix:
        return ()
    parts = ix.split("-")
    if not all(p.isdigit() for p in parts):
        raise MfcError(f"foreach indices {ix[:80]!r} are not numbers joined by '-'")
    return tuple(int(p) for p in parts)


def task_inputs(graph: FlowGraph, step: str, indices: tuple[int, ...], num_splits: NumSplits,
                iteration: int = 0, ended: Ended | None = None) -> tuple[list[InputRef], int | None]:
    """The parents of the task of ``step`` at ``indices`` and (first step of a foreach body) its
    split index. ``iteration``: the state data's loop count (the repetition of a looping switch's
    step, or the last one of the loop a step follows); ``ended``: finds which of several possible
    parents ran (needed only after a switch)."""
    node = graph[step]
    if step == "start":
        return [InputRef(PARAMETERS_STEP, "0", 0)], None
    if node.loops and iteration > 0:
        return [InputRef(step, task_id_for(step, indices, iteration - 1))], None
    if node.is_join:
        split = matching_split(graph, step)
        if split is not None and split.foreach_var is not None:
            count = num_splits(split.name, task_id_for(split.name, indices))
            groups = [[InputRef(parent, task_id_for(parent, (*indices, k))) for parent in node.in_funcs]
                      for k in range(count)]
        elif split is not None:
            slots: dict[int, list[InputRef]] = {}
            for parent in node.in_funcs:
                slot = branch_index(split, node, graph[parent])
                slots.setdefault(slot, []).append(InputRef(parent, task_id_for(parent, indices)))
            groups = [slots[i] for i in sorted(slots)]
        else:
            groups = [[InputRef(parent, task_id_for(parent, indices))] for parent in node.in_funcs]
        return [_one_ran(graph, step, group, ended) for group in groups], None
    if graph[node.in_funcs[0]].foreach_var is not None:
        parent = node.in_funcs[0]
        if not indices:
            raise MfcError(f"step {step} is in the body of foreach {parent} but was given no foreach index")
        return [InputRef(parent, task_id_for(parent, indices[:-1]))], indices[-1]
    candidates = [InputRef(p, task_id_for(p, indices, iteration if graph[p].loops else None)) for p in node.in_funcs]
    return [_one_ran(graph, step, candidates, ended)], None


def _one_ran(graph: FlowGraph, step: str, candidates: list[InputRef], ended: Ended | None) -> InputRef:
    """The one of ``candidates`` that is ``step``'s parent: the only one, else the latest in the
    flow's order of those that ended well."""
    if len(candidates) == 1:
        return candidates[0]
    if ended is None:
        raise MfcError(f"step {step} follows a switch: which of its parents ran must be looked up")
    ran = [ref for ref, ok in zip(candidates, ended(candidates), strict=True) if ok]
    if not ran:
        raise MfcError(f"step {step}: none of the steps it follows ({', '.join(f'{r.step}/{r.task_id}' for r in candidates)}) "
                       "ended well in this run")
    order = {node.name: i for i, node in enumerate(graph)}
    return max(ran, key=lambda ref: order.get(ref.step, -1))
