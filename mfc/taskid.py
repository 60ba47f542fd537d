"""Task ids derived from the step and the foreach indices, so that whoever runs a task (the
orchestrator, a Step Functions state) names it the same way and a join can name its inputs.

``<step>`` outside any foreach, ``<step>-<i>`` in a foreach body, ``<step>-<i>-<j>`` nested one
level deeper. A join's id carries the indices of the foreach enclosing it (a foreach's join
drops the level it joins). Retries are attempts of the same task id, never new ids. Runs made
before these ids numbered their tasks ``1``, ``2``, ... in launch order; they still read.
"""

from __future__ import annotations

from collections.abc import Iterable


def task_id_for(step: str, indices: Iterable[int]) -> str:
    """The id of the task of ``step`` at these foreach indices (outermost first)."""
    return "-".join([step, *(str(int(i)) for i in indices)])


def indices_of(task_id: str, step: str) -> tuple[int, ...] | None:
    """The foreach indices a derived id names, None for an id of another form (a numbered
    task of an older run, a task of another step)."""
    if task_id == step:
        return ()
    head, sep, rest = task_id.partition(f"{step}-")
    if head or not sep:
        return None
    parts = rest.split("-")
    if not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def sort_key(task_id: str) -> tuple:
    """Orders the tasks of one step: derived ids by foreach index (``x-2`` before ``x-10``),
    numbered ids of older runs by number, anything else by its text."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in task_id.split("-"))


def is_legacy(task_id: str) -> bool:
    """True for the numbered task ids of runs made before derived ids."""
    return task_id.isdigit()
