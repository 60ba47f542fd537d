"""``mfc show`` and ``mfc check``: a flow's graph, without running it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from mfc.cli.common import resolve_flow

if TYPE_CHECKING:
    from mfc.graph import FlowGraph


def _problems(graph: FlowGraph) -> list:
    from mfc.decorators import check_decorator_specs
    from mfc.graph import validate

    return validate(graph) + check_decorator_specs(graph)


@click.command()
@click.argument("flow")
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "mermaid"]), default="text", show_default=True)
def show(flow: str, fmt: str) -> None:
    """Show FLOW's steps, their docstrings and transitions (without running it)."""
    from mfc import graph_render
    from mfc.graph import parse_flow

    path, name, _ = resolve_flow(flow, need_class=False)
    graph = parse_flow(path, name)
    render = {"text": graph_render.render_text, "dot": graph_render.render_dot, "mermaid": graph_render.render_mermaid}[fmt]
    click.echo(render(graph))
    problems = _problems(graph)
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)


@click.command()
@click.argument("flow")
def check(flow: str) -> None:
    """Check FLOW's graph: every problem with its file and line."""
    from mfc.graph import parse_flow

    path, name, _ = resolve_flow(flow, need_class=False)
    graph = parse_flow(path, name)
    problems = _problems(graph)
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(2)
    click.echo(f"{graph.name}: {len(graph.nodes)} steps, graph is valid.")


