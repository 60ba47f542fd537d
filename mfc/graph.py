"""The static flow graph, read from a flow file's source with :mod:`ast` (the flow is never imported).

:func:`parse_flow` reads one flow class and builds a :class:`FlowGraph` (steps, transitions, matching
joins, split nesting, decorators, parameters); :func:`validate` (from :mod:`mfc.graph_check`) lists
every problem, each naming the file and line and saying how to fix it; :func:`load_graph` does both and
raises the first problem.

Only the standard library, :mod:`mfc.exceptions` and :mod:`mfc.graph_check` (itself standard library
only) may be imported here: ``mfc show`` must start fast.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeGuard

from mfc.exceptions import InvalidFlow
from mfc.graph_check import RESERVED_STEP_NAMES, link, topological_order, validate

__all__ = [
    "PARAMETER_KINDS", "RESERVED_STEP_NAMES", "DecoratorSpec", "FlowGraph", "ParameterSpec", "StepNode",
    "find_flows", "load_graph", "parse_flow", "read_flow_source", "validate",
]

PARAMETER_KINDS = ("Parameter", "IncludeFile")


@dataclass
class DecoratorSpec:
    """A decorator as written in the source: ``@retry(times=2)`` is ``DecoratorSpec("retry", {"times": 2})``.

    A keyword argument that is not a literal is kept as the text of its source.
    """

    name: str
    args: dict[str, object]
    line: int


@dataclass
class StepNode:
    """One step of the flow and its place in the graph.

    ``type`` is ``start`` or ``end`` for those steps, otherwise it reflects the outgoing transition
    (``foreach``, ``split``, ``split-switch``), then ``join`` for a step taking ``inputs``, else ``linear``.

    A switch step (``self.next({"a": self.a, "b": self.b}, condition="mode")``) has its cases in
    ``switch_cases`` (case value -> step) and the artifact naming the case in ``condition``; its
    ``out_funcs`` are the distinct targets, one of which runs. A target may be the step itself (a
    loop: the step runs again until another case is chosen). ``branch`` names the open static
    splits around the step and the branch it is in, ``((split, branch index), ...)``, outermost
    first (a foreach's body is its branch 0).
    """

    name: str
    type: str
    out_funcs: list[str]
    in_funcs: list[str]
    foreach_var: str | None
    matching_join: str | None
    split_parents: list[str]
    decorators: list[DecoratorSpec]
    doc: str
    file: str
    line: int
    next_line: int | None
    is_join: bool
    condition: str | None = None
    switch_cases: dict[object, str] = field(default_factory=dict)
    branch: tuple[tuple[str, int], ...] = ()

    @property
    def opens_split(self) -> bool:
        """True when this step fans out (a static split or a foreach), whatever its type; a
        switch runs one of its targets, so it opens none."""
        return self.foreach_var is not None or (len(self.out_funcs) > 1 and self.condition is None)

    @property
    def is_switch(self) -> bool:
        """True for a step ending in a switch transition (``condition=``)."""
        return self.condition is not None

    @property
    def loops(self) -> bool:
        """True for a switch with a case that runs the step itself again."""
        return self.condition is not None and self.name in self.out_funcs

    def successors(self) -> list[str]:
        """``out_funcs`` without the step itself (a looping switch's case that repeats it)."""
        return [t for t in self.out_funcs if t != self.name]


@dataclass
class ParameterSpec:
    """A class attribute ``attr = Parameter("name", ...)`` (or ``IncludeFile``)."""

    attr: str
    name: str
    kind: str
    line: int


@dataclass
class FlowGraph:
    """A flow class: its steps (in source order) and what surrounds them.

    Iterating yields the steps in topological order from ``start`` (ties in source order), then any
    step not reachable from ``start``.
    """

    name: str
    file: str
    line: int
    doc: str
    nodes: dict[str, StepNode]
    flow_decorators: list[DecoratorSpec]
    parameters: list[ParameterSpec]
    # Problems found while reading the source (decorator placement, self.next syntax, signatures).
    source_problems: list[InvalidFlow] = field(default_factory=list, repr=False, compare=False)
    # Methods of the flow class without @step: a transition to one gets a precise hint.
    plain_methods: set[str] = field(default_factory=set, repr=False, compare=False)

    def __getitem__(self, name: str) -> StepNode:
        return self.nodes[name]

    def __contains__(self, name: object) -> bool:
        return name in self.nodes

    def __iter__(self) -> Iterator[StepNode]:
        ordered = topological_order(self.nodes)
        seen = set(ordered)
        ordered += [n for n in self.nodes if n not in seen]
        return iter([self.nodes[n] for n in ordered])


@dataclass
class _Switch:
    condition: str
    cases: dict[object, str]


def find_flows(source: str, file: str) -> list[str]:
    """Names of the flow classes in ``source`` that no other flow class in it extends."""
    return _leaves(_flow_classes(_parse_module(source, file)))


def parse_flow(file: str, flow_name: str | None = None) -> FlowGraph:
    """Read ``file`` and build the graph of ``flow_name`` (or of its only flow); does not validate."""
    source = _read(file)
    flows = _flow_classes(_parse_module(source, file))
    if not flows:
        raise _file_error(f"{file} defines no FlowSpec subclass", file,
                          "define a class like `class MyFlow(FlowSpec):` with @step methods")
    leaves = _leaves(flows)
    if flow_name is None:
        if len(leaves) > 1:
            raise _file_error(f"{file} defines {len(leaves)} flows ({', '.join(leaves)}): "
                              f"pick one as {file}:{leaves[0]}", file)
        flow_name = leaves[0]
    elif flow_name not in flows:
        raise _file_error(f"flow {flow_name} not found in {file}", file,
                          f"it defines {', '.join(leaves)}")
    graph = _Builder(source, file, flows).build(flow_name)
    link(graph)
    return graph


def load_graph(file: str, flow_name: str | None = None) -> FlowGraph:
    """:func:`parse_flow` then :func:`validate`; raises the first problem found."""
    graph = parse_flow(file, flow_name)
    problems = validate(graph)
    if problems:
        raise problems[0]
    return graph


# ---------------------------------------------------------------------------------------- reading


def _file_error(message: str, file: str, hint: str | None = None) -> InvalidFlow:
    err = InvalidFlow(message, hint=hint)
    err.file = file
    return err


# Bytes no Python source holds (C0 controls other than tab, newlines, form feeds; DEL).
_BINARY_BYTES = bytes([*range(0, 9), *range(14, 32), 127])


def read_flow_source(path: str) -> str:
    """The text of the flow file ``path``, or InvalidFlow saying what the path is instead: missing,
    a directory, a binary file, text that is not UTF-8."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise InvalidFlow(f"flow file not found: {path}") from None
    except IsADirectoryError:
        raise InvalidFlow("is a directory, not a flow file", path) from None
    except OSError as exc:
        raise InvalidFlow(f"cannot read the flow file: {exc.strerror or exc}", path) from None
    if b"\0" in data:
        raise InvalidFlow("not a Python source file (binary)", path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if any(byte in _BINARY_BYTES for byte in data):
            raise InvalidFlow("not a Python source file (binary)", path) from None
        raise InvalidFlow(f"not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})", path) from None


def _read(file: str) -> str:
    try:
        return read_flow_source(file)
    except InvalidFlow as exc:
        exc.file = file
        raise


def _parse_module(source: str, file: str) -> ast.Module:
    try:
        return ast.parse(source, filename=file)
    except SyntaxError as exc:
        raise InvalidFlow(f"syntax error: {exc.msg}", file, exc.lineno or 1) from None
    except ValueError as exc:  # null bytes, on Python < 3.12
        raise _file_error(f"{file}: {exc}", file) from None


def _tail(node: ast.expr) -> str | None:
    """``x`` for ``x``, ``a.b.x`` and ``x(...)``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _flow_classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    flows: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, cls in classes.items():
            if name not in flows and any(
                _tail(b) == "FlowSpec" or (isinstance(b, ast.Name) and b.id in flows) for b in cls.bases
            ):
                flows.add(name)
                changed = True
    return {name: cls for name, cls in classes.items() if name in flows}


def _leaves(flows: dict[str, ast.ClassDef]) -> list[str]:
    bases = {b.id for cls in flows.values() for b in cls.bases if isinstance(b, ast.Name)}
    return [name for name in flows if name not in bases]


def _is_next_call(node: ast.AST, self_name: str) -> TypeGuard[ast.Call]:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "next"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == self_name)


class _Builder:
    """Turns the AST of one flow class (and its in-file base flows) into a FlowGraph."""

    def __init__(self, source: str, file: str, flows: dict[str, ast.ClassDef]):
        self.source = source
        self.file = file
        self.flows = flows

    def problem(self, message: str, line: int, hint: str | None = None) -> InvalidFlow:
        return InvalidFlow(message, self.file, line, hint)

    def text(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or ast.unparse(node)

    def build(self, flow_name: str) -> FlowGraph:
        cls = self.flows[flow_name]
        nodes: dict[str, StepNode] = {}
        step_problems: dict[str, list[InvalidFlow]] = {}
        params: dict[str, ParameterSpec] = {}
        plain: set[str] = set()
        class_problems: list[InvalidFlow] = []
        for klass in self._linearize(cls):
            defined_here: dict[str, int] = {}
            for stmt in klass.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    step_at = [i for i, d in enumerate(stmt.decorator_list) if _tail(d) == "step"]
                    if not step_at:
                        plain.add(stmt.name)
                        nodes.pop(stmt.name, None)
                        step_problems.pop(stmt.name, None)
                        continue
                    if stmt.name in defined_here:
                        class_problems.append(self.problem(
                            f"step {stmt.name} is defined twice in {klass.name} (lines "
                            f"{defined_here[stmt.name]} and {stmt.lineno})", stmt.lineno,
                            "rename or delete one of them"))
                    defined_here[stmt.name] = stmt.lineno
                    found: list[InvalidFlow] = []
                    nodes[stmt.name] = self.step(stmt, step_at, found)
                    step_problems[stmt.name] = found
                    plain.discard(stmt.name)
                else:
                    spec = self.parameter(stmt)
                    if spec:
                        params[spec.attr] = spec
        problems = class_problems + [p for name in nodes for p in step_problems[name]]
        flow_decos = [self.decorator(d, problems) for d in cls.decorator_list]
        return FlowGraph(flow_name, self.file, cls.lineno, ast.get_docstring(cls) or "", nodes, flow_decos,
                         list(params.values()), problems, plain)

    def _linearize(self, cls: ast.ClassDef) -> list[ast.ClassDef]:
        """In-file flow classes in the order their definitions apply: bases first, the flow last."""
        order: list[ast.ClassDef] = []

        def visit(klass: ast.ClassDef, trail: frozenset[str]) -> None:
            for base in reversed(klass.bases):
                if isinstance(base, ast.Name) and base.id in self.flows and base.id not in trail:
                    visit(self.flows[base.id], trail | {klass.name})
            if klass not in order:
                order.append(klass)

        visit(cls, frozenset())
        return order

    def parameter(self, stmt: ast.stmt) -> ParameterSpec | None:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            return None
        if not (isinstance(target, ast.Name) and isinstance(value, ast.Call)):
            return None
        kind = _tail(value.func)
        if kind not in PARAMETER_KINDS:
            return None
        name_node = value.args[0] if value.args else next(
            (kw.value for kw in value.keywords if kw.arg == "name"), None)
        name = target.id
        if isinstance(name_node, ast.Constant) and isinstance(name_node.value, str):
            name = name_node.value
        return ParameterSpec(target.id, name, kind, stmt.lineno)

    def decorator(self, node: ast.expr, problems: list[InvalidFlow]) -> DecoratorSpec:
        name = _tail(node) or self.text(node)
        args: dict[str, object] = {}
        if isinstance(node, ast.Call):
            if node.args:
                problems.append(self.problem(
                    f"decorator @{name} takes keyword arguments only", node.lineno,
                    f"write @{name}(option=value)"))
            for kw in node.keywords:
                if kw.arg is None:
                    problems.append(self.problem(
                        f"decorator @{name}: **{self.text(kw.value)} cannot be read without running the flow",
                        node.lineno, "write each keyword argument out"))
                    continue
                try:
                    args[kw.arg] = ast.literal_eval(kw.value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    args[kw.arg] = self.text(kw.value)
        return DecoratorSpec(name, args, node.lineno)

    def step(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, step_at: list[int],
             problems: list[InvalidFlow]) -> StepNode:
        name = fn.name
        first = step_at[0]
        decorators = [self.decorator(d, problems) for d in fn.decorator_list[:first]]
        written = fn.decorator_list[first]
        if isinstance(written, ast.Call) and (written.args or written.keywords):
            problems.append(self.problem(f"@step on step {name} takes no arguments", written.lineno,
                                         "write @step or @step()"))
        for d in fn.decorator_list[first + 1:]:
            if _tail(d) == "step":
                problems.append(self.problem(f"@step is written twice on step {name}", d.lineno, "delete one"))
            else:
                problems.append(self.problem(f"decorator @{_tail(d) or self.text(d)} must be placed above @step",
                                             d.lineno, f"move it above @step on step {name}"))
        if isinstance(fn, ast.AsyncFunctionDef):
            problems.append(self.problem(f"step {name} must be a plain def, not async def", fn.lineno))
        args = fn.args
        positional = args.posonlyargs + args.args
        if (args.vararg or args.kwarg or args.kwonlyargs or args.defaults or len(positional) not in (1, 2)):
            problems.append(self.problem(
                f"step {name} has a wrong signature", fn.lineno,
                f"define it as `def {name}(self)`, or `def {name}(self, inputs)` for a join"))
        if name in ("start", "end") and len(positional) == 2:
            problems.append(self.problem(
                f"the {name} step does not take inputs", fn.lineno,
                f"define it as `def {name}(self)`" + (" and add a join step before it" if name == "end" else "")))
        self_name = positional[0].arg if positional else "self"
        calls = [n for n in ast.walk(fn) if _is_next_call(n, self_name)]
        last = fn.body[-1]
        final = last.value if isinstance(last, ast.Expr) and _is_next_call(last.value, self_name) else None
        out: list[str] = []
        foreach_var: str | None = None
        switch: _Switch | None = None
        if name == "end":
            for call in calls:
                problems.append(self.problem("the end step must not call self.next", call.lineno,
                                             "end is the last step of the flow; delete this call"))
        else:
            stray = [c for c in calls if c is not final]
            if stray:
                problems.append(self.problem(
                    f"step {name} calls self.next inside its body; self.next must be the last statement "
                    "of the step, run exactly once", stray[0].lineno,
                    "move the call to the end of the step; to choose the next step at run time, end with a "
                    'switch: self.next({"a": self.a, "b": self.b}, condition="attr")'))
            elif final is None:
                problems.append(self.problem(
                    f"step {name} does not end with self.next(...)", last.lineno,
                    f"end step {name} with self.next(self.<next step>)"))
            if isinstance(final, ast.Call):
                if final.args and isinstance(final.args[0], ast.Dict) or any(k.arg == "condition" for k in final.keywords):
                    switch = self.switch(name, final, self_name, problems)
                    out = list(dict.fromkeys(switch.cases.values()))
                else:
                    out, foreach_var = self.transition(name, final, self_name, problems)
        if name in ("start", "end"):
            kind = name
        elif switch is not None:
            kind = "split-switch"
        elif foreach_var is not None:
            kind = "foreach"
        elif len(out) > 1:
            kind = "split"
        else:
            kind = "join" if len(positional) == 2 else "linear"
        return StepNode(name, kind, out, [], foreach_var, None, [], decorators, ast.get_docstring(fn) or "",
                        self.file, fn.lineno, final.lineno if final else None, len(positional) == 2,
                        switch.condition if switch else None, switch.cases if switch else {})

    def switch(self, name: str, call: ast.Call, self_name: str, problems: list[InvalidFlow]) -> _Switch:
        """Cases and condition of a final ``self.next({...}, condition="attr")``; a problem for
        anything that cannot be read without running the flow."""
        line = call.lineno
        usage = 'write self.next({"a": self.a, "b": self.b}, condition="attr")'
        cases: dict[object, str] = {}
        if len(call.args) != 1 or not isinstance(call.args[0], ast.Dict):
            problems.append(self.problem(f"a switch in step {name} takes one dict of cases", line, usage))
        else:
            for key, value in zip(call.args[0].keys, call.args[0].values, strict=True):
                if key is None:
                    problems.append(self.problem(f"the cases of the switch in step {name} must be written out, "
                                                 f"not **{self.text(value)}", line, usage))
                    continue
                if not (isinstance(key, ast.Constant) and isinstance(key.value, (str, int, float, bool))
                        or isinstance(key, ast.UnaryOp) and isinstance(key.op, ast.USub)
                        and isinstance(key.operand, ast.Constant) and isinstance(key.operand.value, (int, float))):
                    problems.append(self.problem(
                        f"case `{self.text(key)}` of the switch in step {name} is not a literal", line,
                        "write each case as a string, number or bool literal"))
                    continue
                case = ast.literal_eval(key)
                if not (isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name)
                        and value.value.id == self_name):
                    problems.append(self.problem(
                        f"case {case!r} of the switch in step {name} must name a step as self.<step>, "
                        f"not `{self.text(value)}`", line, usage))
                    continue
                if case in cases:
                    problems.append(self.problem(f"case {case!r} appears twice in the switch of step {name}", line,
                                                 "name each case once"))
                cases[case] = value.attr
        condition: str | None = None
        for kw in call.keywords:
            if kw.arg == "condition":
                if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str) and kw.value.value.isidentifier():
                    condition = kw.value.value
                else:
                    problems.append(self.problem(
                        f"condition= in step {name} must be a string naming an artifact, not `{self.text(kw.value)}`",
                        line, 'write condition="attr" where the step sets self.attr'))
            elif kw.arg == "foreach":
                problems.append(self.problem(f"the switch in step {name} cannot also take foreach=", line,
                                             "switch to a step that does the foreach"))
            else:
                shown = f"{kw.arg}=" if kw.arg else "**" + self.text(kw.value)
                problems.append(self.problem(f"self.next in step {name} does not take {shown}", line, usage))
        if not any(kw.arg == "condition" for kw in call.keywords):
            problems.append(self.problem(f"the dict of cases in step {name} needs condition=", line, usage))
        elif len(cases) < 2 and len(call.args) == 1 and isinstance(call.args[0], ast.Dict) \
                and len(call.args[0].keys) < 2:
            problems.append(self.problem(f"the switch in step {name} has {len(cases)} case(s); a switch needs "
                                         "at least 2", line, "write self.next(self.<step>) for one next step"))
        return _Switch(condition or "", cases)

    def transition(self, name: str, call: ast.Call, self_name: str,
                   problems: list[InvalidFlow]) -> tuple[list[str], str | None]:
        """Targets and foreach variable of a final ``self.next(...)`` call."""
        line = call.lineno
        out: list[str] = []
        for arg in call.args:
            if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == self_name:
                if arg.attr in out:
                    problems.append(self.problem(f"step {name} goes to {arg.attr} twice", line,
                                                 "name each next step once"))
                else:
                    out.append(arg.attr)
            else:
                problems.append(self.problem(
                    f"self.next in step {name} takes steps written as self.<step>, not `{self.text(arg)}`",
                    line, "write self.next(self.a) or self.next(self.a, self.b)"))
        if not call.args:
            problems.append(self.problem(f"self.next() in step {name} names no step", line,
                                         "write self.next(self.<next step>)"))
        foreach_var = None
        for kw in call.keywords:
            if kw.arg == "foreach":
                value = kw.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value.isidentifier():
                    foreach_var = value.value
                else:
                    foreach_var = self.text(value)
                    problems.append(self.problem(
                        f"foreach= in step {name} must be a string naming an artifact, not `{foreach_var}`",
                        line, 'write foreach="items" where self.items is a list'))
                if len(call.args) > 1:
                    problems.append(self.problem(
                        f"a foreach takes exactly one step, step {name} names {len(call.args)}", line,
                        'write self.next(self.a, foreach="items")'))
            else:
                shown = f"{kw.arg}=" if kw.arg else "**" + self.text(kw.value)
                problems.append(self.problem(f"self.next in step {name} does not take {shown}", line,
                                             "only foreach= is supported"))
        return out, foreach_var
