"""Task ids derived from the step and the foreach indices, so that whoever runs a task (the
orchestrator, a Step Functions state) names it the same way and a join can name its inputs.

``<step>`` outside any foreach, ``<step>-<i>`` in a foreach body, ``<step>-<i>-<j>`` nested one
level deeper. A join's id carries the indices of the foreach enclosing it (a foreach's join
drops the level it joins). A switch that repeats its own step gives each repetition its own id:
``<step>.0``, ``<step>.1``, ... (``<step>-<i>.0``, ... in a foreach body).
Retries are attempts of the same task id, never new ids. Runs made
before these ids numbered their tasks ``1``, ``2``, ... in launch order; they still read.
"""

from __future__ import annotations

from collections.abc import Iterable


def task_id_for(step: str, indices: Iterable[int], iteration: int | None = None) -> str:
    """The id of the task of ``step`` at these foreach indices (outermost first); ``iteration``
    (a looping switch's step only): how often the switch ran the step before at these indices."""
    base = "-".join([step, *(str(int(i)) for i in indices)])
    return base if iteration is None else f"{base}.{int(iteration)}"


def iteration_of(task_id: str) -> int | None:
    """The repetition a looping switch's task id names (None for an id of any other form)."""
    head, sep, tail = task_id.rpartition(".")
    return int(tail) if sep and head and tail.isdigit() else None


def indices_of(task_id: str, step: str) -> tuple[int, ...] | None:
    """The foreach indices a derived id names, None for an id of another form (a numbered
    task of an older run, a task of another step)."""
    if iteration_of(task_id) is not None:
        task_id = task_id.rpartition(".")[0]
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
    """Orders the tasks of one step: derived ids by foreach index (``x-2`` before ``x-10``), then
    repetition (``x.2`` before ``x.10``), numbered ids of older runs by number, anything else by
    its text."""
    iteration = iteration_of(task_id)
    if iteration is not None:
        task_id = task_id.rpartition(".")[0]
    return (*((0, int(p), "") if p.isdigit() else (1, 0, p) for p in task_id.split("-")), (0, iteration or 0, ""))


def is_legacy(task_id: str) -> bool:
    """True for the numbered task ids of runs made before derived ids."""
    return task_id.isdigit()
