"""Helpers shared by the flow graph tests: write a flow file, find a line in it, build small flows."""

from __future__ import annotations

import textwrap

from mfc.exceptions import InvalidFlow
from mfc.graph import parse_flow, validate

HEADER = "from mfc import FlowSpec, step, Parameter, IncludeFile, retry, catch\n\n\n"


def write(tmp_path, body: str, name: str = "flow.py", header: str = HEADER) -> str:
    """Write ``header`` and the dedented ``body`` to ``tmp_path/name``; returns the path."""
    path = tmp_path / name
    path.write_text(header + textwrap.dedent(body))
    return str(path)


def line_of(file: str, marker: str) -> int:
    """1-based line of the first line of ``file`` containing ``marker``."""
    with open(file) as fh:
        for number, text in enumerate(fh, 1):
            if marker in text:
                return number
    raise AssertionError(f"{marker!r} not in {file}")


def flow(steps: dict[str, str], name: str = "ShapeFlow") -> str:
    """A flow class from {signature: final statement}, e.g. {"start": "self.next(self.a)"}."""
    parts = [f"class {name}(FlowSpec):\n"]
    for sig, last in steps.items():
        args = "self, inputs" if sig.endswith("*") else "self"
        parts.append(f"    @step\n    def {sig.rstrip('*')}({args}):\n        {last}\n\n")
    return "".join(parts)


def problems_of(tmp_path, body: str) -> tuple[str, list[InvalidFlow]]:
    """Write ``body`` as a flow file; returns its path and every problem :func:`validate` finds."""
    file = write(tmp_path, body)
    return file, validate(parse_flow(file))


def only_problem(tmp_path, body: str, fragment: str) -> tuple[str, InvalidFlow]:
    """The problem whose message contains ``fragment``; fails if there is none."""
    file, problems = problems_of(tmp_path, body)
    matches = [p for p in problems if fragment in str(p)]
    assert matches, f"no problem with {fragment!r} in {[str(p) for p in problems]}"
    return file, matches[0]


def summary(graph) -> dict[str, tuple]:
    """{step: (type, matching_join, split_parents, in_funcs)} of every step of ``graph``."""
    return {n.name: (n.type, n.matching_join, n.split_parents, n.in_funcs) for n in graph.nodes.values()}
