"""``@trigger`` and ``@trigger_on_finish``: every form Metaflow documents read into plain data, bad
forms refused naming the decorator's file:line, the mapping checked against the flow's
Parameters, the rules they become (pure), and ``mfc run`` ignoring them."""

from __future__ import annotations

import json

import pytest
from support import FLOWS, assert_no_traceback, describe, line_of, mfc, run_flow, write_flow

from mfc import FlowSpec, Parameter, project, step, trigger, trigger_on_finish
from mfc.events.inputs import parameter_defaults
from mfc.events.names import rule_name
from mfc.events.trigger_deploy import input_template, rule_specs, sibling_arn
from mfc.events.triggers import EventTrigger, FinishTrigger, flow_triggers
from mfc.exceptions import MfcError

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:DownFlow"
ROLE = "arn:aws:iam::123456789012:role/events"


def flow(*decorators, params: dict | None = None, name: str = "DownFlow") -> type:
    namespace = {"start": step(lambda self: self.next(self.end)), "end": step(lambda self: None), **(params or {})}
    cls = type(name, (FlowSpec,), namespace)
    for decorator in reversed(decorators):
        cls = decorator(cls)
    return cls


@pytest.mark.parametrize("kwargs, expected", [
    ({"event": "data.ready"}, [EventTrigger("data.ready", {})]),
    ({"events": ["a", "b"]}, [EventTrigger("a", {}), EventTrigger("b", {})]),
    ({"event": {"name": "foo", "parameters": {"alpha": "weight"}}}, [EventTrigger("foo", {"alpha": "weight"})]),
    ({"event": {"name": "foo", "parameters": ["alpha", ("beta", "grade")]}},
     [EventTrigger("foo", {"alpha": "alpha", "beta": "grade"})]),
    ({"events": [{"name": "a", "parameters": {"alpha": "x"}}, "b"]}, [EventTrigger("a", {"alpha": "x"}), EventTrigger("b", {})]),
    ({"event": "foo", "options": {"any": 1}}, [EventTrigger("foo", {})]),
], ids=["event", "events", "dict", "list-mapping", "mixed-list", "options"])
def test_trigger_forms(kwargs, expected):
    cls = flow(trigger(**kwargs), params={"alpha": Parameter("alpha", default=1.0), "beta": Parameter("beta", default=2)})
    found = flow_triggers(cls)
    assert [(t.event, t.parameters) for t in found] == [(t.event, t.parameters) for t in expected]


@pytest.mark.parametrize("kwargs, expected", [
    ({"flow": "UpFlow"}, [("UpFlow", None, None)]),
    ({"flows": ["UpFlow", "OtherFlow"]}, [("UpFlow", None, None), ("OtherFlow", None, None)]),
    ({"flow": "fraud.prod.UpFlow"}, [("UpFlow", "fraud", "prod")]),
    ({"flow": "fraud.test.exp.UpFlow"}, [("UpFlow", "fraud", "test.exp")]),
    ({"flow": {"name": "UpFlow", "project": "fraud", "project_branch": "prod"}}, [("UpFlow", "fraud", "prod")]),
], ids=["flow", "flows", "qualified", "dotted-branch", "dict"])
def test_trigger_on_finish_forms(kwargs, expected):
    found = flow_triggers(flow(trigger_on_finish(**kwargs)))
    assert [(t.flow, t.project, t.branch) for t in found] == expected
    assert all(isinstance(t, FinishTrigger) for t in found)


def test_an_upstream_takes_this_flows_project_as_metaflow_does():
    cls = flow(project(name="fraud"), trigger_on_finish(flows=["UpFlow", "other.prod.SideFlow"]))
    found = flow_triggers(cls, user="ana")
    assert [t.state_machine_name for t in found] == ["fraud.user.ana.UpFlow", "other.prod.SideFlow"]
    alone = flow(trigger_on_finish(flow={"name": "UpFlow", "project": "fraud"}))
    with pytest.raises(MfcError, match="give both its project and its project_branch"):
        flow_triggers(alone)


BAD_FORMS = [
    ("trigger()", "@trigger names no event"),
    ("trigger(event='a', events=['b'])", "takes event or events, not both"),
    ("trigger(events=['a', 'a'])", "names the event 'a' twice"),
    ("trigger(event={'parameters': {'x': 'y'}})", "needs a 'name'"),
    ("trigger(event={'name': 'a', 'params': {}})", "takes the keys name and parameters, not 'params'"),
    ("trigger(event={'name': 'a', 'parameters': [('x', 'y', 'z')]})", "parameters must be a dict"),
    ("trigger(event={'name': 'a', 'parameters': {'x': 3}})", "parameters must be a dict"),
    ("trigger(event={'name': 'a', 'parameters': {'x': 'a b'}})", "payload field 'a b'"),
    ("trigger(event=lambda ctx: 'a')", "given by a function"),
    ("trigger(event=3)", "an event is a name or a dict"),
    ("trigger(events='a')", "must be a list"),
    ("trigger(evnt='a')", "@trigger has no argument 'evnt'"),
    ("trigger_on_finish()", "names no flow"),
    ("trigger_on_finish(flow='a.B')", "neither a flow name nor a fully qualified name"),
    ("trigger_on_finish(flow='Up-Flow')", "'Up-Flow' is not a flow name"),
    ("trigger_on_finish(flow={'name': 'p.Up'})", "needs a 'name', a flow name without dots"),
    ("trigger_on_finish(flows=['Up', 'Up'])", "names the flow 'Up' twice"),
    ("trigger_on_finish(flows='Up')", "must be a list"),
]


@pytest.mark.parametrize("decorator, words", BAD_FORMS, ids=[b[0] for b in BAD_FORMS])
def test_bad_forms_name_the_decorators_line(tmp_path, decorator, words):
    path = write_flow(tmp_path, f"""
        from mfc import FlowSpec, step, trigger, trigger_on_finish


        @{decorator}
        class BadFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    proc = mfc(tmp_path / "ds", "run", path)
    assert proc.returncode == 2, describe(proc)
    assert f"{path}:{line_of(path, '@trigger')}:" in proc.stderr and words in proc.stderr, describe(proc)
    assert_no_traceback(proc.stderr)


def test_a_decorator_applied_twice_is_refused():
    with pytest.raises(MfcError, match="@trigger is applied twice to flow DownFlow"):
        flow(trigger(event="a"), trigger(event="b"))


def test_a_mapping_must_name_a_parameter_of_the_flow():
    cls = flow(trigger(event={"name": "foo", "parameters": {"alpah": "x"}}), params={"alpha": Parameter("alpha", default=1)})
    with pytest.raises(MfcError, match=r"test_triggers.py:\d+: @trigger event 'foo' maps 'alpah', which is not a "
                                       r"parameter of DownFlow \(its parameters: alpha\)"):
        flow_triggers(cls)


def test_a_mapping_may_name_the_attribute_and_means_the_parameter():
    cls = flow(trigger(event={"name": "foo", "parameters": {"learning_rate": "lr"}}),
               params={"learning_rate": Parameter("learning-rate", default=0.1)})
    assert flow_triggers(cls)[0].parameters == {"learning-rate": "lr"}


def test_a_required_parameter_without_default_needs_every_events_mapping():
    params = {"day": Parameter("day", required=True)}
    mapped = flow(trigger(event={"name": "foo", "parameters": ["day"]}), params=params)
    assert flow_triggers(mapped)[0].parameters == {"day": "day"}
    for cls in (flow(trigger(events=[{"name": "foo", "parameters": ["day"]}, "bar"]), params=params),
                flow(trigger_on_finish(flow="UpFlow"), params=params)):
        with pytest.raises(MfcError, match=r"test_triggers.py:\d+: parameter 'day' is required and has no default"):
            flow_triggers(cls)


def test_parameter_defaults_are_the_strings_the_command_line_takes():
    params = {"a": Parameter("a", default=0.5), "b": Parameter("b", default=True), "c": Parameter("c", default="x y"),
              "d": Parameter("d", default={"k": [1]}), "e": Parameter("e"), "f": Parameter("f", default=lambda ctx: ctx.user_name)}
    assert parameter_defaults(flow(params=params), "ana") == {"a": "0.5", "b": "true", "c": "x y", "d": '{"k": [1]}', "f": "ana"}


def test_rules_targets_and_input_transformer():
    triggers = [EventTrigger("data.ready", {"alpha": "weight", "day": "meta.day"}), FinishTrigger("UpFlow")]
    specs = rule_specs(triggers, ARN, "DownFlow", {"alpha": "0.5", "n": "3"}, ROLE)
    event, finish = specs
    assert (event.name, event.bus) == (rule_name("DownFlow", "event", "data.ready"), "mfc")
    assert event.pattern == {"source": ["mfc"], "detail-type": ["data.ready"]}
    assert event.target["Arn"] == ARN and event.target["RoleArn"] == ROLE
    transformer = event.target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"alpha": "$.detail.weight", "day": "$.detail.meta.day"}
    assert transformer["InputTemplate"] == ('{"parameters": {"alpha": <alpha>, "day": <day>, "n": "3"}, '
                                            '"trigger": {"kind": "event", "name": "data.ready"}}')
    # what EventBridge makes of it for a payload: the placeholders become the fields' JSON values
    filled = transformer["InputTemplate"].replace("<alpha>", json.dumps(0.9)).replace("<day>", json.dumps("mon"))
    assert json.loads(filled) == {"parameters": {"alpha": 0.9, "day": "mon", "n": "3"},
                                  "trigger": {"kind": "event", "name": "data.ready"}}
    assert (finish.name, finish.bus) == (rule_name("DownFlow", "finish", "UpFlow"), "default")
    assert finish.pattern == {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
                              "detail": {"status": ["SUCCEEDED"], "stateMachineArn": [sibling_arn(ARN, "UpFlow")]}}
    assert json.loads(finish.target["Input"]) == {"parameters": {"alpha": "0.5", "n": "3"},
                                                  "trigger": {"kind": "upstream", "name": "UpFlow"}}
    assert sibling_arn(ARN, "UpFlow") == "arn:aws:states:us-east-1:123456789012:stateMachine:UpFlow"


def test_a_template_escapes_names_and_defaults():
    text = input_template({"q": 'say "hi" <x>'}, {}, 'ev "1"')
    assert json.loads(text) == {"parameters": {"q": 'say "hi" <x>'}, "trigger": {"kind": "event", "name": 'ev "1"'}}


def test_rule_names_stay_within_eventbridges_limits():
    long = rule_name("p" * 50 + ".user.someone.VeryLongFlowName", "event", "an/event with spaces" * 3)
    assert len(long) <= 64 and all(c.isalnum() or c in "._-" for c in long)
    assert long != rule_name("p" * 50 + ".user.someone.VeryLongFlowName", "event", "an/event with spaces" * 4)
    assert rule_name("DownFlow", "finish", "UpFlow") == "DownFlow-finish-UpFlow"


def test_mfc_run_ignores_triggers(root, tmp_path):
    source = (FLOWS / "linear.py").read_text()
    source = source.replace("from mfc import ", "from mfc import trigger, trigger_on_finish, ", 1)
    source = source.replace("class ", "@trigger(event='go')\n@trigger_on_finish(flow='UpFlow')\nclass ", 1)
    proc, run_id = run_flow(root, write_flow(tmp_path, source))
    assert run_id, describe(proc)


def test_compile_refuses_a_mapping_to_no_parameter_offline(tmp_path):
    source = (FLOWS / "linear.py").read_text().replace("from mfc import ", "from mfc import trigger, ", 1)
    source = source.replace("class ", "@trigger(event={'name': 'go', 'parameters': {'nope': 'x'}})\nclass ", 1)
    path = write_flow(tmp_path, source)
    offline = {"MFC_DATASTORE_ROOT": "s3://bucket/prefix", "MFC_BATCH_QUEUE": "q", "MFC_IMAGE": "img:1",
               "MFC_AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    proc = mfc(None, "sfn", "compile", path, env=offline)
    assert proc.returncode == 2, describe(proc)
    assert f"{path}:{line_of(path, '@trigger')}: @trigger event 'go' maps 'nope'" in proc.stderr
    assert_no_traceback(proc.stderr)
