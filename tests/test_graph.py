"""The static flow graph (mfc.graph): shapes, decorators, parameters, file-level errors and renderings."""

from __future__ import annotations

import ast
import re
import sys
import time
from pathlib import Path

import pytest
from graph_helpers import flow, line_of, summary, write

import mfc.graph
import mfc.graph_check
from mfc.exceptions import InvalidFlow
from mfc.graph import find_flows, load_graph, parse_flow, validate
from mfc.graph_render import render_dot, render_mermaid, render_text

# ------------------------------------------------------------------------------------------- shapes


def test_linear(tmp_path):
    file = write(tmp_path, '''
        class LinearFlow(FlowSpec):
            """A straight line."""

            @step
            def start(self):
                """Begin."""
                self.x = 1
                self.next(self.a)

            @step
            def a(self):
                self.next(self.end)  # next-a

            @step
            def end(self):
                pass
    ''')
    graph = load_graph(file)
    assert graph.name == "LinearFlow" and graph.doc == "A straight line."
    assert graph.line == line_of(file, "class LinearFlow")
    assert [n.name for n in graph] == ["start", "a", "end"]
    assert summary(graph) == {
        "start": ("start", None, [], []),
        "a": ("linear", None, [], ["start"]),
        "end": ("end", None, [], ["a"]),
    }
    assert graph["start"].doc == "Begin." and graph["a"].doc == ""
    assert graph["a"].line == line_of(file, "def a(")
    assert graph["a"].next_line == line_of(file, "# next-a")
    assert graph["end"].next_line is None and graph["end"].out_funcs == []
    assert "a" in graph and "zzz" not in graph
    assert graph["start"].file == file


def test_branch_join_inputs_follow_branch_order(tmp_path):
    # y is defined before x, but the join lists x's branch first, as in self.next(self.x, self.y).
    file = write(tmp_path, flow({
        "start": "self.next(self.x, self.y)",
        "y": "self.next(self.join)",
        "x": "self.next(self.x2)",
        "x2": "self.next(self.join)",
        "join*": "self.next(self.end)",
        "end": "pass",
    }))
    graph = load_graph(file)
    assert summary(graph) == {
        "start": ("start", "join", [], []),
        "y": ("linear", None, ["start"], ["start"]),
        "x": ("linear", None, ["start"], ["start"]),
        "x2": ("linear", None, ["start"], ["x"]),
        "join": ("join", None, [], ["x2", "y"]),
        "end": ("end", None, [], ["join"]),
    }
    assert graph["start"].out_funcs == ["x", "y"]
    assert graph["join"].is_join and not graph["x"].is_join
    # Topological order, ties in source order.
    assert [n.name for n in graph] == ["start", "y", "x", "x2", "join", "end"]


def test_nested_branches(tmp_path):
    file = write(tmp_path, flow({
        "start": "self.next(self.a, self.b)",
        "a": "self.next(self.a1, self.a2)",
        "a1": "self.next(self.ja)",
        "a2": "self.next(self.ja)",
        "ja*": "self.next(self.join)",
        "b": "self.next(self.join)",
        "join*": "self.next(self.end)",
        "end": "pass",
    }))
    graph = load_graph(file)
    assert summary(graph) == {
        "start": ("start", "join", [], []),
        "a": ("split", "ja", ["start"], ["start"]),
        "a1": ("linear", None, ["start", "a"], ["a"]),
        "a2": ("linear", None, ["start", "a"], ["a"]),
        "ja": ("join", None, ["start"], ["a1", "a2"]),
        "b": ("linear", None, ["start"], ["start"]),
        "join": ("join", None, [], ["ja", "b"]),
        "end": ("end", None, [], ["join"]),
    }


def test_foreach(tmp_path):
    file = write(tmp_path, flow({
        "start": 'self.next(self.a, foreach="items")',
        "a": "self.next(self.join)",
        "join*": "self.next(self.end)",
        "end": "pass",
    }))
    graph = load_graph(file)
    assert graph["start"].foreach_var == "items"
    assert summary(graph) == {
        "start": ("start", "join", [], []),
        "a": ("linear", None, ["start"], ["start"]),
        "join": ("join", None, [], ["a"]),
        "end": ("end", None, [], ["join"]),
    }


def test_nested_foreach(tmp_path):
    file = write(tmp_path, flow({
        "start": "self.next(self.outer)",
        "outer": 'self.next(self.inner, foreach="xs")',
        "inner": 'self.next(self.leaf, foreach="ys")',
        "leaf": "self.next(self.join_inner)",
        "join_inner*": "self.next(self.join_outer)",
        "join_outer*": "self.next(self.end)",
        "end": "pass",
    }))
    graph = load_graph(file)
    assert summary(graph) == {
        "start": ("start", None, [], []),
        "outer": ("foreach", "join_outer", [], ["start"]),
        "inner": ("foreach", "join_inner", ["outer"], ["outer"]),
        "leaf": ("linear", None, ["outer", "inner"], ["inner"]),
        "join_inner": ("join", None, ["outer"], ["leaf"]),
        "join_outer": ("join", None, [], ["join_inner"]),
        "end": ("end", None, [], ["join_outer"]),
    }
    assert (graph["outer"].foreach_var, graph["inner"].foreach_var) == ("xs", "ys")


def test_branch_inside_foreach(tmp_path):
    file = write(tmp_path, flow({
        "start": 'self.next(self.each, foreach="items")',
        "each": "self.next(self.b1, self.b2)",
        "b1": "self.next(self.jb)",
        "b2": "self.next(self.jb)",
        "jb*": "self.next(self.jf)",
        "jf*": "self.next(self.end)",
        "end": "pass",
    }))
    graph = load_graph(file)
    assert summary(graph) == {
        "start": ("start", "jf", [], []),
        "each": ("split", "jb", ["start"], ["start"]),
        "b1": ("linear", None, ["start", "each"], ["each"]),
        "b2": ("linear", None, ["start", "each"], ["each"]),
        "jb": ("join", None, ["start"], ["b1", "b2"]),
        "jf": ("join", None, [], ["jb"]),
        "end": ("end", None, [], ["jf"]),
    }


def test_foreach_inside_branch(tmp_path):
    file = write(tmp_path, flow({
        "start": "self.next(self.a, self.b)",
        "b": "self.next(self.join)",
        "a": 'self.next(self.x, foreach="xs")',
        "x": "self.next(self.ja)",
        "ja*": "self.next(self.join)",
        "join*": "self.next(self.end)",
        "end": "pass",
    }))
    graph = load_graph(file)
    assert summary(graph) == {
        "start": ("start", "join", [], []),
        "b": ("linear", None, ["start"], ["start"]),
        "a": ("foreach", "ja", ["start"], ["start"]),
        "x": ("linear", None, ["start", "a"], ["a"]),
        "ja": ("join", None, ["start"], ["x"]),
        "join": ("join", None, [], ["ja", "b"]),
        "end": ("end", None, [], ["join"]),
    }


def test_join_that_splits_and_join_that_foreaches(tmp_path):
    file = write(tmp_path, flow({
        "start": "self.next(self.a, self.b)",
        "a": "self.next(self.j1)",
        "b": "self.next(self.j1)",
        "j1*": 'self.next(self.each, foreach="items")',
        "each": "self.next(self.j2)",
        "j2*": "self.next(self.c, self.d)",
        "c": "self.next(self.j3)",
        "d": "self.next(self.j3)",
        "j3*": "self.next(self.end)",
        "end": "pass",
    }))
    graph = load_graph(file)
    assert summary(graph)["j1"] == ("foreach", "j2", [], ["a", "b"])
    assert summary(graph)["j2"] == ("split", "j3", [], ["each"])
    assert graph["j1"].is_join and graph["j2"].is_join
    assert graph["each"].split_parents == ["j1"] and graph["c"].split_parents == ["j2"]


def test_decorators_parameters_and_docs(tmp_path):
    file = write(tmp_path, '''
        import mfc

        @mfc.schedule(cron="0 * * * *")  # flow-deco
        @project(name="demo")
        class DecoFlow(FlowSpec):
            """Flow doc.

            Second paragraph.
            """

            alpha = Parameter("alpha", default=0.5, help="...")  # p-alpha
            beta = mfc.Parameter(name="the_beta", default=1)
            gamma = Parameter(NAME_CONSTANT)
            config = IncludeFile("config", default="config.json")
            not_a_param = 3

            @retry(times=2)  # deco-retry
            @mfc.catch(var="err", print_exception=False)
            @resources(memory=compute_memory(), cpu=2)
            @step
            def start(self):
                """Start doc."""
                self.next(self.end)

            def helper(self):
                return 1

            @step
            def end(self):
                pass
    ''')
    graph = load_graph(file)
    assert [(d.name, d.args, d.line) for d in graph.flow_decorators] == [
        ("schedule", {"cron": "0 * * * *"}, line_of(file, "# flow-deco")),
        ("project", {"name": "demo"}, line_of(file, "# flow-deco") + 1),
    ]
    assert graph.doc == "Flow doc.\n\nSecond paragraph."
    assert graph.line == line_of(file, "class DecoFlow")
    assert [(p.attr, p.name, p.kind) for p in graph.parameters] == [
        ("alpha", "alpha", "Parameter"), ("beta", "the_beta", "Parameter"), ("gamma", "gamma", "Parameter"),
        ("config", "config", "IncludeFile"),
    ]
    assert graph.parameters[0].line == line_of(file, "# p-alpha")
    decos = graph["start"].decorators
    assert [d.name for d in decos] == ["retry", "catch", "resources"]
    assert decos[0].args == {"times": 2} and decos[0].line == line_of(file, "# deco-retry")
    assert decos[1].args == {"var": "err", "print_exception": False}
    assert decos[2].args == {"memory": "compute_memory()", "cpu": 2}
    assert graph["start"].doc == "Start doc."
    assert "helper" not in graph


def test_metaflow_imports_and_attribute_base(tmp_path):
    file = write(tmp_path, flow({"start": "self.next(self.end)", "end": "pass"}).replace(
        "(FlowSpec)", "(metaflow.FlowSpec)"), header="import metaflow\nfrom metaflow import step\n\n")
    assert load_graph(file).name == "ShapeFlow"


def test_inheritance_from_in_file_base_flow(tmp_path):
    file = write(tmp_path, '''
        class BaseFlow(FlowSpec):
            p = Parameter("p")

            @step
            def start(self):
                self.next(self.middle)

            @step
            def middle(self):
                self.next(self.end)

            @step
            def end(self):
                pass


        class Mixin:
            pass


        class ChildFlow(Mixin, BaseFlow):
            q = Parameter("q")

            @step
            def middle(self):  # override
                self.next(self.extra)

            @step
            def extra(self):
                self.next(self.end)
    ''')
    with open(file) as fh:
        assert find_flows(fh.read(), file) == ["ChildFlow"]
    graph = load_graph(file)
    assert graph.name == "ChildFlow"
    assert list(graph.nodes) == ["start", "middle", "end", "extra"]
    assert graph["middle"].line == line_of(file, "# override")
    assert [n.name for n in graph] == ["start", "middle", "extra", "end"]
    assert [p.name for p in graph.parameters] == ["p", "q"]
    # The base flow can still be chosen by name.
    base = load_graph(file, "BaseFlow")
    assert base.name == "BaseFlow" and list(base.nodes) == ["start", "middle", "end"]


def test_called_step_decorator(tmp_path):
    file = write(tmp_path, '''
        import mfc

        class CalledFlow(FlowSpec):
            @retry(times=1)
            @step()
            def start(self):
                self.next(self.a)

            @mfc.step()
            def a(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    ''')
    graph = load_graph(file)
    assert [n.name for n in graph] == ["start", "a", "end"]
    assert [(d.name, d.args) for d in graph["start"].decorators] == [("retry", {"times": 1})]
    assert graph["a"].decorators == [] and graph["a"].line == line_of(file, "def a(")
    assert graph.plain_methods == set()


# -------------------------------------------------------------------------------- file-level errors


def test_missing_file(tmp_path):
    missing = str(tmp_path / "nope.py")
    with pytest.raises(InvalidFlow) as exc:
        parse_flow(missing)
    assert str(exc.value) == f"flow file not found: {missing}"
    assert exc.value.file == missing


def test_syntax_error_names_file_and_line(tmp_path):
    file = write(tmp_path, '''
        class BrokenFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.end  # unclosed
            @step
            def end(self):
                pass
    ''')
    with pytest.raises(InvalidFlow) as exc:
        parse_flow(file)
    assert exc.value.file == file and exc.value.line == line_of(file, "# unclosed")
    assert str(exc.value).startswith(f"{file}:{exc.value.line}: syntax error:")


def test_no_flow_class(tmp_path):
    file = write(tmp_path, "class NotAFlow:\n    pass\n")
    with pytest.raises(InvalidFlow, match=r"flow\.py defines no FlowSpec subclass"):
        parse_flow(file)


def test_two_flows_need_a_name(tmp_path):
    body = flow({"start": "self.next(self.end)", "end": "pass"}, "AFlow") + "\n" + flow(
        {"start": "self.next(self.end)", "end": "pass"}, "BFlow")
    file = write(tmp_path, body, name="x.py")
    with pytest.raises(InvalidFlow) as exc:
        parse_flow(file)
    assert str(exc.value).startswith(f"{file} defines 2 flows (AFlow, BFlow): pick one as {file}:AFlow")
    with open(file) as fh:
        assert find_flows(fh.read(), file) == ["AFlow", "BFlow"]
    assert load_graph(file, "BFlow").name == "BFlow"
    with pytest.raises(InvalidFlow, match="flow CFlow not found in .*x.py"):
        parse_flow(file, "CFlow")


def test_find_flows_reports_syntax_errors():
    with pytest.raises(InvalidFlow, match=r"^f\.py:2: syntax error"):
        find_flows("x = 1\ndef (:\n", "f.py")


# ---------------------------------------------------------------------------------------- rendering


def _all_shapes(tmp_path):
    file = write(tmp_path, '''
        @schedule(daily=True)
        class RenderFlow(FlowSpec):
            """Renders "quotes" and shapes."""

            alpha = Parameter("alpha", default=1)

            @retry(times=2)
            @step
            def start(self):
                """Fan out."""
                self.items = [1, 2]
                self.next(self.each, foreach="items")

            @step
            def each(self):
                self.next(self.left, self.right)

            @step
            def left(self):
                self.next(self.join_branch)

            @step
            def right(self):
                self.next(self.join_branch)

            @step
            def join_branch(self, inputs):
                self.next(self.join_each)

            @step
            def join_each(self, inputs):
                self.next(self.end)

            @step
            def end(self):
                pass
    ''')
    graph = load_graph(file)
    edges = [(n.name, t) for n in graph for t in n.out_funcs]
    return graph, edges


def test_render_text(tmp_path):
    graph, edges = _all_shapes(tmp_path)
    text = render_text(graph)
    assert text.startswith("RenderFlow\n")
    assert 'Renders "quotes" and shapes.' in text and "Parameters: alpha" in text
    steps = re.findall(r"^Step (\w+)", text, re.M)
    assert steps == [n.name for n in graph]
    assert "@retry(times=2)" in text and "@schedule(daily=True)" in text
    assert "    Fan out.\n    => each (foreach items)\n" in text
    assert "    => left, right\n" in text


def test_render_dot(tmp_path):
    graph, edges = _all_shapes(tmp_path)
    dot = render_dot(graph)
    assert dot.startswith('digraph "RenderFlow" {') and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    found = re.findall(r'^\s*"(\w+)" -> "(\w+)"', dot, re.M)
    assert sorted(found) == sorted(edges)
    assert re.search(r'"start" -> "each" \[label="foreach items"\]', dot)
    for node in graph:
        assert re.search(rf'^\s*"{node.name}" \[label="{node.name}', dot, re.M)


def test_render_mermaid(tmp_path):
    graph, edges = _all_shapes(tmp_path)
    text = render_mermaid(graph)
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    node_line = re.compile(r'^    step_(\w+)(\(\["\w+"\]\)|\["\w+"\])$')
    edge_line = re.compile(r'^    step_(\w+) -->(\|"[^"|]*"\|)? step_(\w+)$')
    nodes, found = [], []
    for line in lines[1:]:
        if m := node_line.match(line):
            nodes.append(m.group(1))
        elif m := edge_line.match(line):
            found.append((m.group(1), m.group(3)))
        else:
            raise AssertionError(f"not a Mermaid node or edge line: {line!r}")
    assert nodes == [n.name for n in graph]
    assert sorted(found) == sorted(edges)
    assert '    step_start -->|"foreach items"| step_each' in lines
    # `end` is a Mermaid keyword: it must never be a bare node id.
    assert not re.search(r"(^|\s)end(\s|$|\[|\()", text)


# -------------------------------------------------------------------------------------------- speed


def test_parse_speed_of_a_50_step_flow(tmp_path):
    steps = {"start": "self.next(self.s1)"}
    steps.update({f"s{i}": f"self.next(self.s{i + 1})" for i in range(1, 48)})
    steps["s48"] = "self.next(self.end)"
    steps["end"] = "pass"
    file = write(tmp_path, flow(steps))
    assert len(load_graph(file).nodes) == 50
    runs = 20
    began = time.perf_counter()
    for _ in range(runs):
        validate(parse_flow(file))
    per_parse_ms = (time.perf_counter() - began) / runs * 1000
    print(f"\nparse_flow + validate, 50-step flow: {per_parse_ms:.2f} ms")


# ------------------------------------------------------------------------------------------ imports


@pytest.mark.parametrize("module", [mfc.graph, mfc.graph_check])
def test_graph_modules_import_only_the_standard_library(module):
    # `mfc show` must start fast: no third-party package, no other part of mfc.
    tree = ast.parse(Path(module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module)
    outside = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names}
    assert outside <= {"mfc.exceptions", "mfc.graph_check", "mfc.graph"}, outside
    assert "mfc.graph" not in outside or module is mfc.graph_check  # graph_check: for type checkers only


def test_graph_reexports_the_checks():
    assert mfc.graph.validate is mfc.graph_check.validate
    assert mfc.graph.RESERVED_STEP_NAMES is mfc.graph_check.RESERVED_STEP_NAMES
    assert set(mfc.graph.__all__) <= set(vars(mfc.graph))
