"""Validation of the static flow graph (mfc.graph_check): every problem, with its file, line and fix."""

from __future__ import annotations

import re

import pytest
from graph_helpers import flow, line_of, only_problem, problems_of, write

from mfc.exceptions import InvalidFlow
from mfc.graph import load_graph, parse_flow, validate


def test_end_cannot_be_the_join(tmp_path):
    file, problem = only_problem(tmp_path, flow({
        "start": "self.next(self.a, self.b)", "a": "self.next(self.end)", "b": "self.next(self.end)",
        "end*": "pass",
    }), "the end step does not take inputs")
    assert problem.line == line_of(file, "def end") and "add a join step before it" in str(problem)


@pytest.mark.parametrize("missing", ["start", "end"])
def test_missing_start_or_end(tmp_path, missing):
    steps = {"start": "self.next(self.a)", "a": "self.next(self.end)", "end": "pass"}
    del steps[missing]
    file = write(tmp_path, flow(steps))
    with pytest.raises(InvalidFlow) as exc:
        load_graph(file)
    assert f"has no {missing} step" in str(exc.value)
    assert exc.value.line == line_of(file, "class ShapeFlow")


def test_step_without_next(tmp_path):
    file, problem = only_problem(tmp_path, '''
        class F(FlowSpec):
            @step
            def start(self):
                self.next(self.a)

            @step
            def a(self):
                self.x = 1  # last

            @step
            def end(self):
                pass
    ''', "does not end with self.next")
    assert problem.line == line_of(file, "# last") and problem.file == file
    assert "step a" in str(problem) and "self.next(self." in str(problem)


def test_next_without_arguments(tmp_path):
    file, problem = only_problem(tmp_path, flow(
        {"start": "self.next()  # empty", "end": "pass"}), "names no step")
    assert problem.line == line_of(file, "# empty")


def test_end_calls_next(tmp_path):
    file, problem = only_problem(tmp_path, flow(
        {"start": "self.next(self.end)", "end": "self.next(self.start)  # bad"}), "end step must not call")
    assert problem.line == line_of(file, "# bad")


def test_next_inside_a_block(tmp_path):
    file, problem = only_problem(tmp_path, '''
        class F(FlowSpec):
            @step
            def start(self):
                if self.x:
                    self.next(self.end)  # conditional
                else:
                    self.next(self.end)

            @step
            def end(self):
                pass
    ''', "self.next must be the last statement")
    assert problem.line == line_of(file, "# conditional")


def test_unknown_step_suggests_close_name(tmp_path):
    file, problem = only_problem(tmp_path, flow({
        "start": "self.next(self.jion)  # typo", "join": "self.next(self.end)", "end": "pass",
    }), "unknown step jion")
    assert problem.line == line_of(file, "# typo")
    assert "did you mean self.join?" in str(problem)


def test_transition_to_method_without_step_decorator(tmp_path):
    file, problem = only_problem(tmp_path, '''
        class F(FlowSpec):
            @step
            def start(self):
                self.next(self.helper)  # here

            def helper(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    ''', "unknown step helper")
    assert problem.line == line_of(file, "# here") and "add @step above `def helper`" in str(problem)


def test_unreachable_step(tmp_path):
    file, problem = only_problem(tmp_path, flow({
        "start": "self.next(self.end)", "orphan": "self.next(self.end)", "end": "pass",
    }), "not reachable from start")
    assert problem.line == line_of(file, "def orphan") and "orphan" in str(problem)


def test_cycle(tmp_path):
    file, problem = only_problem(tmp_path, flow({
        "start": "self.next(self.a)", "a": "self.next(self.b)", "b": "self.next(self.a)  # back",
        "end": "pass",
    }), "cycle")
    assert problem.line == line_of(file, "# back") and "a -> b -> a" in str(problem)


def test_foreach_with_two_targets(tmp_path):
    file, problem = only_problem(tmp_path, flow({
        "start": 'self.next(self.a, self.b, foreach="items")  # two', "a": "self.next(self.j)",
        "b": "self.next(self.j)", "j*": "self.next(self.end)", "end": "pass",
    }), "exactly one step")
    assert problem.line == line_of(file, "# two")


@pytest.mark.parametrize("value", ["items_name", "3", '"not an identifier"', 'f"{x}"'])
def test_foreach_with_non_string(tmp_path, value):
    file, problem = only_problem(tmp_path, flow({
        "start": f"self.next(self.a, foreach={value})  # fe", "a": "self.next(self.j)",
        "j*": "self.next(self.end)", "end": "pass",
    }), "foreach= in step start must be a string")
    assert problem.line == line_of(file, "# fe")


def test_next_with_other_arguments(tmp_path):
    file, problem = only_problem(tmp_path, flow({
        "start": "self.next(self.end, num_parallel=4)  # kw", "end": "pass"}), "does not take num_parallel=")
    assert problem.line == line_of(file, "# kw")
    file, problem = only_problem(tmp_path, flow({
        "start": "self.next(end)  # pos", "end": "pass"}), "steps written as self.<step>, not `end`")
    assert problem.line == line_of(file, "# pos")


def test_static_join_must_get_one_transition_per_branch(tmp_path):
    # Branch a splits again and both sub-branches go straight to the outer join.
    file, problems = problems_of(tmp_path, flow({
        "start": "self.next(self.a, self.b)", "a": "self.next(self.x, self.y)", "x": "self.next(self.join)",
        "y": "self.next(self.join)", "b": "self.next(self.join)", "join*": "self.next(self.end)", "end": "pass",
    }))
    assert problems, "a join fed twice by one branch must be invalid"
    texts = [str(p) for p in problems]
    assert any("split levels" in t for t in texts)
    assert any("join join gets" in t or "no matching join" in t for t in texts)
    assert all(p.file == file and p.line for p in problems)


def test_split_whose_branches_go_to_different_steps(tmp_path):
    file, problem = only_problem(tmp_path, flow({
        "start": "self.next(self.a, self.b)  # split", "a": "self.next(self.c)", "b": "self.next(self.d)",
        "c": "self.next(self.end)", "d": "self.next(self.end)", "end": "pass",
    }), "has no matching join before end")
    assert problem.line == line_of(file, "# split")
    file, problem = only_problem(tmp_path, flow({
        "start": "self.next(self.a, self.b)  # split", "a": "self.next(self.j1)", "b": "self.next(self.j2)",
        "j1*": "self.next(self.end)", "j2*": "self.next(self.end)", "end*": "pass",
    }), "branches ending in different joins (j1, j2)")
    assert problem.line == line_of(file, "def j2")


def test_branch_that_reaches_end_directly(tmp_path):
    file, problems = problems_of(tmp_path, flow({
        "start": "self.next(self.a, self.b)  # split", "a": "self.next(self.join)", "b": "self.next(self.end)",
        "join*": "self.next(self.end)", "end": "pass",
    }))
    texts = {str(p).split(": ", 1)[1]: p.line for p in problems}
    open_split = [t for t in texts if "has no matching join before end" in t]
    assert open_split and "step b goes to end" in open_split[0]
    assert texts[open_split[0]] == line_of(file, "# split")
    assert any("step end has 2 incoming transitions (b, join)" in t for t in texts)


def test_foreach_without_join(tmp_path):
    file, problem = only_problem(tmp_path, flow({
        "start": 'self.next(self.a, foreach="items")  # fe', "a": "self.next(self.b)", "b": "self.next(self.end)",
        "end": "pass",
    }), "foreach start has no matching join before end")
    assert problem.line == line_of(file, "# fe") and "def join(self, inputs)" in str(problem)


def test_merge_without_inputs(tmp_path):
    file, problem = only_problem(tmp_path, flow({
        "start": "self.next(self.a, self.b)", "a": "self.next(self.join)", "b": "self.next(self.join)",
        "join": "self.next(self.end)", "end": "pass",
    }), "step join has 2 incoming transitions (a, b)")
    assert problem.line == line_of(file, "def join") and "def join(self, inputs)" in str(problem)


def test_inputs_with_one_incoming(tmp_path):
    file, problem = only_problem(tmp_path, flow({
        "start": "self.next(self.a)", "a*": "self.next(self.end)", "end": "pass",
    }), "takes inputs but has only one incoming transition (from start)")
    assert problem.line == line_of(file, "def a")


def test_start_with_inputs(tmp_path):
    file, problem = only_problem(tmp_path, flow({"start*": "self.next(self.end)", "end": "pass"}),
                                 "start step does not take inputs")
    assert problem.line == line_of(file, "def start")


@pytest.mark.parametrize("name", ["name", "next", "input", "index", "foreach_stack", "merge_artifacts", "cmd",
                                  "script_name", "run_id", "flow", "graph", "_private"])
def test_reserved_step_names(tmp_path, name):
    file, problem = only_problem(tmp_path, flow({
        "start": f"self.next(self.{name})", name: "self.next(self.end)", "end": "pass",
    }), f"step name {name} is reserved")
    assert problem.line == line_of(file, f"def {name}(")


@pytest.mark.parametrize("signature", ["self, a, b", "self, *args", "self, **kwargs", "self, inputs=None",
                                       "self, *, key", ""])
def test_wrong_signature(tmp_path, signature):
    body = flow({"start": "self.next(self.a)", "a": "self.next(self.end)", "end": "pass"})
    file, problem = only_problem(tmp_path, body.replace("def a(self)", f"def a({signature})"),
                                 "step a has a wrong signature")
    assert problem.line == line_of(file, "def a(")


def test_parameter_named_like_a_step_and_duplicate_parameters(tmp_path):
    file, problems = problems_of(tmp_path, '''
        class F(FlowSpec):
            a = Parameter("start")  # clash
            b = Parameter("alpha")
            c = Parameter("alpha")  # dup

            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    ''')
    by_text = {str(p): p.line for p in problems}
    assert len(problems) == 2
    assert any("parameter start has the name of step start" in t and line == line_of(file, "# clash")
               for t, line in by_text.items())
    assert any("two parameters are named alpha" in t and line == line_of(file, "# dup")
               for t, line in by_text.items())


def test_decorator_below_step(tmp_path):
    file, problem = only_problem(tmp_path, '''
        class F(FlowSpec):
            @step
            @retry(times=2)  # below
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    ''', "decorator @retry must be placed above @step")
    assert problem.line == line_of(file, "# below")


def test_async_and_duplicate_steps(tmp_path):
    file, problems = problems_of(tmp_path, '''
        class F(FlowSpec):
            @step
            async def start(self):  # async
                self.next(self.end)

            @step
            def end(self):
                pass

            @step
            def end(self):  # again
                pass
    ''')
    lines = {p.line for p in problems}
    assert line_of(file, "# async") in lines and line_of(file, "# again") in lines


def test_validate_reports_every_problem_and_load_raises_the_first(tmp_path):
    file = write(tmp_path, flow({
        "start": "self.next(self.a, self.b)", "a": "self.next(self.join)", "b": "self.x = 1",
        "join*": "self.next(self.end)", "end": "self.next(self.start)",
    }))
    problems = validate(parse_flow(file))
    assert len(problems) >= 2
    with pytest.raises(InvalidFlow) as exc:
        load_graph(file)
    assert str(exc.value) == str(problems[0])
    assert all(re.match(re.escape(file) + r":\d+: ", str(p)) for p in problems)


def test_validate_is_repeatable_and_iteration_lists_unreachable_steps_last(tmp_path):
    file = write(tmp_path, flow({
        "start": "self.next(self.a, self.b)", "orphan": "self.next(self.end)", "a": "self.next(self.join)",
        "b": "self.next(self.join)", "join*": "self.next(self.end)", "end": "pass",
    }))
    graph = parse_flow(file)
    first = [str(p) for p in validate(graph)]
    assert [str(p) for p in validate(graph)] == first and len(first) == 1
    assert graph["join"].in_funcs == ["a", "b"] and graph["end"].in_funcs == ["orphan", "join"]
    assert [n.name for n in graph] == ["start", "a", "b", "join", "end", "orphan"]


def test_decorator_with_positional_arguments(tmp_path):
    file, problem = only_problem(tmp_path, flow({"start": "self.next(self.end)", "end": "pass"}).replace(
        "    @step\n    def start", "    @retry(3)  # positional\n    @step\n    def start"),
        "decorator @retry takes keyword arguments only")
    assert problem.line == line_of(file, "# positional")


def test_step_decorator_with_arguments(tmp_path):
    body = flow({"start": "self.next(self.a)", "a": "self.next(self.end)", "end": "pass"})
    file, problems = problems_of(tmp_path, body.replace("    @step\n    def a", "    @step(3)  # args\n    def a"))
    assert [(str(p).split(": ", 1)[1], p.line) for p in problems] == [
        ("@step on step a takes no arguments (write @step or @step())", line_of(file, "# args"))]


def test_called_step_written_twice_or_below_a_decorator(tmp_path):
    file, problems = problems_of(tmp_path, '''
        class F(FlowSpec):
            @step()
            @step  # twice
            def start(self):
                self.next(self.end)

            @step()
            @retry(times=2)  # below
            def end(self):
                pass
    ''')
    assert {(str(p).split(": ", 1)[1].split(" (")[0], p.line) for p in problems} == {
        ("@step is written twice on step start", line_of(file, "# twice")),
        ("decorator @retry must be placed above @step", line_of(file, "# below")),
    }
