"""Text, Graphviz and Mermaid renderings of a :class:`~mfc.graph.FlowGraph` (for ``mfc show``)."""

from __future__ import annotations

from mfc.graph import DecoratorSpec, FlowGraph, StepNode


def format_decorator(deco: DecoratorSpec) -> str:
    """``@retry(times=2)``; a decorator without arguments is ``@name``."""
    if not deco.args:
        return f"@{deco.name}"
    return f"@{deco.name}({', '.join(f'{k}={v!r}' for k, v in deco.args.items())})"


def _indent(text: str, prefix: str = "    ") -> list[str]:
    return [prefix + line if line.strip() else "" for line in text.strip().splitlines()]


def _transition(node: StepNode) -> str:
    if not node.out_funcs:
        return ""
    if node.is_switch:
        cases = ", ".join(f"{case!r}: {target}" for case, target in node.switch_cases.items())
        return f"one of {', '.join(node.out_funcs)} (switch on {node.condition}: {cases})"
    targets = ", ".join(node.out_funcs)
    return f"{targets} (foreach {node.foreach_var})" if node.foreach_var is not None else targets


def _edge_label(node: StepNode, target: str) -> str | None:
    """What an edge is labelled with: the foreach variable, or the switch's cases that take it."""
    if node.foreach_var is not None:
        return f"foreach {node.foreach_var}"
    if node.is_switch:
        cases = [repr(case) for case, to in node.switch_cases.items() if to == target]
        return f"{node.condition} = {' | '.join(cases)}"
    return None


def render_text(graph: FlowGraph) -> str:
    """The flow's name and doc, its parameters, then each step with its kind, decorators, doc and next steps."""
    lines = [graph.name]
    if graph.flow_decorators:
        lines.append("    " + " ".join(format_decorator(d) for d in graph.flow_decorators))
    if graph.doc:
        lines += _indent(graph.doc)
    if graph.parameters:
        lines += ["", "Parameters: " + ", ".join(p.name for p in graph.parameters)]
    for node in graph:
        kind = f"join + {node.type}" if node.is_join and node.type != "join" else node.type
        head = f"Step {node.name} [{kind}]"
        if node.decorators:
            head += " " + " ".join(format_decorator(d) for d in node.decorators)
        lines += ["", head]
        if node.doc:
            lines += _indent(node.doc)
        if node.out_funcs:
            lines.append(f"    => {_transition(node)}")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(graph: FlowGraph) -> str:
    """A Graphviz digraph: one box per step (name and kind), foreach edges labelled with the
    variable, a switch's edges with the cases that take them."""
    lines = [f"digraph {_dot_quote(graph.name)} {{", "    rankdir=TB;",
             '    node [shape=box, style=rounded, fontname="Helvetica"];',
             '    edge [fontname="Helvetica"];']
    for node in graph:
        shape = ", shape=ellipse" if node.type in ("start", "end") else ""
        label = node.name if node.type in ("start", "end") else f"{node.name}\n({node.type})"
        tooltip = f", tooltip={_dot_quote(node.doc)}" if node.doc else ""
        lines.append(f"    {_dot_quote(node.name)} [label={_dot_quote(label)}{shape}{tooltip}];")
    for node in graph:
        for target in node.out_funcs:
            edge = _edge_label(node, target)
            attrs = f" [label={_dot_quote(edge)}]" if edge is not None else ""
            lines.append(f"    {_dot_quote(node.name)} -> {_dot_quote(target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_id(name: str) -> str:
    # Mermaid reserves words such as `end`: step names never appear as bare ids.
    return f"step_{name}"


def _mermaid_text(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def render_mermaid(graph: FlowGraph) -> str:
    """A Mermaid ``flowchart TD``: start and end as stadiums, foreach edges labelled with the
    variable, a switch's edges with the cases that take them."""
    lines = ["flowchart TD"]
    for node in graph:
        text = _mermaid_text(node.name)
        shape = f"([{text}])" if node.type in ("start", "end") else f"[{text}]"
        lines.append(f"    {_mermaid_id(node.name)}{shape}")
    for node in graph:
        for target in node.out_funcs:
            edge = _edge_label(node, target)
            label = f"|{_mermaid_text(edge)}|" if edge is not None else ""
            lines.append(f"    {_mermaid_id(node.name)} -->{label} {_mermaid_id(target)}")
    return "\n".join(lines) + "\n"
