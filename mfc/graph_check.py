"""Validation of a :class:`~mfc.graph.FlowGraph`: links, split nesting, joins and names.

:func:`link` computes each step's ``in_funcs``, ``matching_join`` and ``split_parents`` by walking the
DAG from ``start`` with the stack of open splits; :func:`validate` lists every problem of a graph, each
naming the file and line and saying how to fix it.

This module needs nothing of :mod:`mfc.graph` at run time (only its types, for type checkers), so
:mod:`mfc.graph` can import it at the top. Only the standard library and :mod:`mfc.exceptions` may be
imported here: ``mfc show`` must start fast.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING

from mfc.exceptions import InvalidFlow

if TYPE_CHECKING:
    from mfc.graph import FlowGraph, ParameterSpec, StepNode

# Records one problem: (message, line, hint=None).
_Report = Callable[..., None]

RESERVED_STEP_NAMES = frozenset({
    "name", "next", "input", "index", "foreach_stack", "merge_artifacts", "cmd", "script_name",
    "run_id", "flow", "graph",
})

# The options of `mfc run` (and the --help and --debug every command takes): a parameter named like
# one would never get its value, as the option takes it. tests/test_bad_input.py keeps this in step
# with the command itself.
RUN_OPTION_NAMES = frozenset({
    "tag", "max-workers", "max-num-splits", "run-id-file", "with", "quiet", "local-docker", "batch",
    "queue", "cpu", "memory", "gpu-image", "gpu", "image", "datastore", "datastore-root", "metadata", "environment", "help",
    "debug",
})


def validate(graph: FlowGraph) -> list[InvalidFlow]:
    """Every problem of ``graph``, ordered by line; also (re)computes in_funcs, joins and nesting."""
    basic, structural = link(graph)
    first = list(graph.source_problems) + basic + _check_names(graph)
    # Local mistakes first: a broken self.next often makes the graph's shape look wrong too.
    return sorted(first, key=_line) + sorted(structural, key=_line)


def link(g: FlowGraph) -> tuple[list[InvalidFlow], list[InvalidFlow]]:
    """Compute each step's in_funcs, matching join and split parents, in place.

    Returns the problems with names (unknown steps, no start or end), then those with the graph's shape.
    """
    nodes = g.nodes
    basic: list[InvalidFlow] = []
    problems: list[InvalidFlow] = []

    def problem(message: str, line: int, hint: str | None = None) -> None:
        problems.append(InvalidFlow(message, g.file, line, hint))

    for node in nodes.values():
        node.in_funcs, node.matching_join, node.split_parents, node.branch = [], None, [], ()
    for node in nodes.values():
        for target in node.out_funcs:
            if target == node.name and node.is_switch:
                continue  # a looping switch: the step runs again, it is not its own parent
            if target in nodes:
                nodes[target].in_funcs.append(node.name)
            else:
                basic.append(InvalidFlow(f"step {node.name} goes to unknown step {target}", g.file,
                                         node.next_line or node.line, _unknown_hint(g, target)))
    for required in ("start", "end"):
        if required not in nodes:
            basic.append(InvalidFlow(f"flow {g.name} has no {required} step", g.file, g.line,
                                     f"add `@step` `def {required}(self):` to {g.name}"))
    if "start" not in nodes:
        return basic, problems
    reach = reachable_steps(nodes)
    for node in nodes.values():
        if node.name not in reach:
            problem(f"step {node.name} is not reachable from start", node.line,
                    f"go to it with self.next(self.{node.name}) from another step, or delete it")
    if _find_cycles(g, problem):
        return basic, problems
    edge_paths = _walk_splits(g, problem, quiet=bool(basic or g.source_problems))
    _check_switches(g, problem)
    for node in nodes.values():
        if node.name not in reach:
            continue
        preds = [p for p in node.in_funcs if p in reach]  # an unreachable step is reported once, above
        count = len(preds)
        if node.name in ("start", "end") and node.is_join:
            continue
        # Steps reached in one thread (the same branch of every open split) are the alternatives of
        # switches: one of them runs, so the step needs no join.
        alternatives = len({edge_paths.get((p, node.name)) for p in preds}) == 1
        if count >= 2 and not node.is_join and not alternatives:
            problem(f"step {node.name} has {count} incoming transitions ({', '.join(preds)})", node.line,
                    "add a join step `def join(self, inputs)` before end" if node.name == "end"
                    else f"define it as `def {node.name}(self, inputs)`")
        elif count == 1 and node.is_join:
            closes = [s for s in nodes.values() if s.matching_join == node.name and s.foreach_var is not None]
            if not closes:
                problem(f"step {node.name} takes inputs but has only one incoming transition "
                        f"(from {preds[0]})", node.line,
                        f"define it as `def {node.name}(self)`, or make it the join of a split or foreach")
    return basic, problems


def topological_order(nodes: dict[str, StepNode]) -> list[str]:
    """Steps reachable from start, in topological order (ties in source order); stops at cycles."""
    if "start" not in nodes:
        return []
    rank = {name: i for i, name in enumerate(nodes)}
    reach = reachable_steps(nodes)
    pending = dict.fromkeys(reach, 0)
    for name in reach:
        for target in _forward(nodes[name]):
            if target in pending:
                pending[target] += 1
    del pending["start"]  # a transition back to start is a cycle: never list start twice
    ready: list[tuple[int, str]] = [(rank["start"], "start")]
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)[1]
        order.append(name)
        for target in _forward(nodes[name]):
            if target in pending:
                pending[target] -= 1
                if pending[target] == 0:
                    heapq.heappush(ready, (rank[target], target))
    return order


def _forward(node: StepNode) -> list[str]:
    """The transitions that go forward: all but a looping switch's case back to its own step."""
    return node.successors() if node.is_switch else node.out_funcs


def reachable_steps(nodes: dict[str, StepNode]) -> set[str]:
    """Names of the steps reachable from start (none when there is no start step)."""
    seen: set[str] = set()
    todo = ["start"] if "start" in nodes else []
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(t for t in nodes[name].out_funcs if t in nodes)
    return seen


def _line(problem: InvalidFlow) -> int:
    return problem.line or 0


def _unknown_hint(g: FlowGraph, target: str) -> str:
    if target in g.plain_methods:
        return f"{target} is a method without @step: add @step above `def {target}`"
    import difflib  # only on this error path: keeps the import of this module cheap

    close = difflib.get_close_matches(target, list(g.nodes), n=1)
    return f"did you mean self.{close[0]}?" if close else f"define a step named {target}"


def _find_cycles(g: FlowGraph, problem: _Report) -> bool:
    """Report each transition that closes a cycle; True if there is any."""
    nodes, found = g.nodes, False
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        nonlocal found
        state[name] = 1
        path.append(name)
        for target in _forward(nodes[name]):
            if target not in nodes:
                continue
            if state.get(target) == 1:
                found = True
                loop = path[path.index(target):] + [target]
                problem(f"steps form a cycle: {' -> '.join(loop)}", nodes[name].next_line or nodes[name].line,
                        "a flow is a DAG: go forward to a later step instead (only a switch may go back, "
                        "to its own step, to run it again)")
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    visit("start")
    return found


def _walk_splits(g: FlowGraph, problem: _Report, quiet: bool) -> dict[tuple[str, str], tuple]:
    """Walk the DAG from start with the stack of open splits: set matching_join, split_parents and
    branch. Returns the branch path each transition ``(from, to)`` carries.

    ``quiet``: other problems were found, so a split left without a join is likely their consequence.
    """
    nodes = g.nodes
    Path = tuple[tuple[str, int], ...]
    entries: dict[str, list[tuple[str | None, tuple[str, ...], Path]]] = {"start": [(None, (), ())]}
    edge_paths: dict[tuple[str, str], Path] = {}
    reported: set[str] = set()
    for name in topological_order(nodes):
        node = nodes[name]
        arrivals = entries.get(name, [])
        stack = arrivals[0][1] if arrivals else ()
        path = arrivals[0][2] if arrivals else ()
        if name == "end":
            for pred, open_splits, _ in arrivals:
                for opener in open_splits:
                    if opener not in reported:
                        reported.add(opener)
                        problem(f"{_kind(nodes[opener])} {opener} has no matching join before end: step "
                                f"{pred} goes to end while it is still open", nodes[opener].next_line or
                                nodes[opener].line, _join_hint(nodes[opener]))
            stack, path = (), ()
        elif any(s != stack for _, s, _ in arrivals):
            levels = "; ".join(f"from {p} inside [{', '.join(s) or 'no split'}]" for p, s, _ in arrivals)
            problem(f"step {name} is reached from different split levels ({levels})", node.line,
                    "every branch of a split must go to the same join step")
        if node.is_join and stack:
            split = nodes[stack[-1]]
            if split.matching_join not in (None, name):
                problem(f"{_kind(split)} {split.name} has branches ending in different joins "
                        f"({split.matching_join}, {name})", node.line, _join_hint(split))
                reported.add(split.name)
            else:
                split.matching_join = name
            stack, path = stack[:-1], path[:-1]
        node.split_parents = list(stack)
        node.branch = path
        if node.opens_split:
            stack = (*stack, name)
        for index, target in enumerate(_forward(node)):
            if target in nodes:
                carried = (*path, (name, 0 if node.foreach_var is not None else index)) if node.opens_split else path
                entries.setdefault(target, []).append((name, stack, carried))
                edge_paths[(name, target)] = carried
    for split in nodes.values():
        if split.opens_split and split.name in entries and split.name not in reported:
            if split.matching_join is None:
                if not quiet:
                    problem(f"{_kind(split)} {split.name} has no matching join",
                            split.next_line or split.line, _join_hint(split))
            else:
                _check_join(g, split, nodes[split.matching_join], edge_paths, problem)
    return edge_paths


def _check_switches(g: FlowGraph, problem: _Report) -> None:
    """A switch must not go straight to a join: which of the join's inputs arrive would then
    depend on the case (as Metaflow refuses it)."""
    for node in g.nodes.values():
        if not node.is_switch:
            continue
        catch = next((d for d in node.decorators if d.name == "catch"), None)
        if catch is not None:
            problem(f"@catch cannot be used on switch step {node.name}: a caught failure sets no case to "
                    "choose the next step by", catch.line, "catch the failure inside the step and set the "
                    "condition's artifact to a case that handles it")
        if node.loops and node.is_join:
            problem(f"join {node.name} cannot switch back to itself: a repetition would have no inputs to join",
                    node.next_line or node.line, "loop in a step after the join")
        for target in node.successors():
            if target in g.nodes and g.nodes[target].is_join:
                problem(f"case {_case_of(node, target)!r} of the switch in step {node.name} goes straight to "
                        f"join {target}", node.next_line or node.line,
                        f"go to a step that then goes to {target}: a join's inputs must not depend on a case")


def _case_of(node: StepNode, target: str) -> object:
    return next(case for case, step in node.switch_cases.items() if step == target)


def _kind(node: StepNode) -> str:
    return "foreach" if node.foreach_var is not None else "split"


def _join_hint(split: StepNode) -> str:
    if split.foreach_var is not None:
        return f"the steps run for each item of {split.name} must end in a join step `def join(self, inputs)`"
    return f"every branch of {split.name} must go to one join step defined as `def join(self, inputs)`"


def branch_index(split: StepNode, join: StepNode, pred: StepNode) -> int:
    """The branch of static ``split`` that ``pred``, an input step of its ``join``, ends; the
    alternatives of a switch inside a branch all end that branch."""
    if pred.name == split.name:
        return split.out_funcs.index(join.name)
    return pred.branch[len(join.branch)][1]


def _check_join(g: FlowGraph, split: StepNode, join: StepNode, edge_paths: dict[tuple[str, str], tuple],
                problem: _Report) -> None:
    """Check the inputs of ``join``, which closes ``split``, and order them by the split's branches."""
    nodes = g.nodes
    reach = reachable_steps(nodes)
    preds = [p for p in join.in_funcs if p in reach]
    if split.foreach_var is not None:
        threads = {edge_paths.get((p, join.name)) for p in preds}
        if len(threads) != 1:
            problem(f"join {join.name} of foreach {split.name} must have one incoming transition, has "
                    f"{len(preds)} ({', '.join(preds)})", join.line,
                    f"close any split inside the foreach before {join.name}")
        return
    depth = len(join.branch)  # the entry of a transition's path that names the branch of `split`
    branch_of: dict[str, int] = {}
    for pred in preds:
        carried = edge_paths.get((pred, join.name), ())
        if len(carried) > depth and carried[depth][0] == split.name:
            branch_of[pred] = carried[depth][1]
    rank = {name: i for i, name in enumerate(nodes)}
    join.in_funcs.sort(key=lambda p: (branch_of.get(p, len(split.out_funcs)), rank[p]))
    for index, target in enumerate(split.out_funcs):
        mine = [p for p in preds if branch_of.get(p) == index]
        # several inputs from one branch are the alternatives of a switch when they come from one thread
        alternatives = len(mine) > 1 and len({edge_paths.get((p, join.name)) for p in mine}) == 1
        if len(mine) != 1 and not alternatives:
            problem(f"join {join.name} gets {len(mine)} transitions from branch {target} of split {split.name}"
                    + (f" ({', '.join(mine)})" if mine else ""), join.line,
                    f"each branch of {split.name} must reach {join.name} exactly once")
    for pred in preds:
        if pred not in branch_of:
            problem(f"step {pred} goes to join {join.name} but is not inside split {split.name}",
                    nodes[pred].next_line or nodes[pred].line, _join_hint(split))


def _check_names(g: FlowGraph) -> list[InvalidFlow]:
    problems: list[InvalidFlow] = []
    for node in g.nodes.values():
        if node.name in RESERVED_STEP_NAMES or node.name.startswith("_"):
            problems.append(InvalidFlow(f"step name {node.name} is reserved", g.file, node.line,
                                        "rename the step"))
    seen: dict[str, ParameterSpec] = {}
    for param in g.parameters:
        option = next((o for o in (param.name, param.name.replace("_", "-")) if o in RUN_OPTION_NAMES), None)
        if option is not None:
            problems.append(InvalidFlow(f"parameter {param.name} clashes with the run option --{option}", g.file,
                                        param.line, f"rename the parameter: mfc run takes --{option} itself"))
        if param.name in g.nodes or param.attr in g.nodes:
            clash = param.name if param.name in g.nodes else param.attr
            problems.append(InvalidFlow(f"parameter {param.name} has the name of step {clash}", g.file,
                                        param.line, "rename the parameter or the step"))
        if param.name in seen:
            problems.append(InvalidFlow(
                f"two parameters are named {param.name} (lines {seen[param.name].line} and {param.line})",
                g.file, param.line, "give each parameter its own name"))
        seen.setdefault(param.name, param)
    return problems
