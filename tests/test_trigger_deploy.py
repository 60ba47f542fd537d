"""Triggers deployed through the CLI a user types, checked through EventBridge's API on a moto
server with the sandbox's resources (no Docker: nothing runs): ``mfc sfn create`` puts one rule
per event and per upstream flow with its target, role and input, warns about an upstream that is
not deployed, removes the rules of triggers that are gone (and only mfc's), ``mfc sfn delete``
leaves none behind, bad input creates nothing; ``mfc event publish`` puts the event the rules
match (read back from an SQS queue a rule delivers to) and refuses a bad payload in one line."""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber
from moto_server import MotoServer
from support import assert_no_traceback, describe, line_of, mfc, write_flow

from mfc.config import Config
from mfc.events import trigger_deploy
from mfc.events.names import EVENT_BUS, rule_name
from mfc.exceptions import MfcError
from mfc.sandbox import BUCKET, CPU_QUEUE, resources

DOWN = """
    from mfc import FlowSpec, Parameter, step, trigger, trigger_on_finish


    @trigger(events=[{{"name": "data.ready", "parameters": {{"alpha": "weight"}}}}, "other"])
    @trigger_on_finish(flow="UpFlow")
    class {name}(FlowSpec):
        alpha = Parameter("alpha", default=0.5)
        n = Parameter("n", default=3)

        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
"""
UP = """
    from mfc import FlowSpec, step


    class UpFlow(FlowSpec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
"""


@pytest.fixture(scope="module")
def aws():
    """A moto server with the sandbox's bucket, roles and queues, and the environment that
    points ``mfc`` at it."""
    with MotoServer() as server:
        roles = resources.ensure(server.port)
        env = {**server.env(), "MFC_AWS_ENDPOINT_URL": server.endpoint, "MFC_DATASTORE_ROOT": f"s3://{BUCKET}/trig",
               "MFC_BATCH_QUEUE": CPU_QUEUE, "MFC_SFN_ROLE": roles["sfn_role"], "MFC_EVENTS_ROLE": roles["events_role"],
               "MFC_IMAGE": "img:1", "MFC_USER": "tester"}
        yield server, env, roles


def rules(server, bus: str) -> dict[str, dict]:
    events = server.client("events")
    return {r["Name"]: r for r in events.list_rules(EventBusName=bus)["Rules"]}


def targets(server, bus: str, name: str) -> list[dict]:
    return server.client("events").list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]


def machine_arn(server, name: str) -> str | None:
    machines = server.client("stepfunctions").list_state_machines()["stateMachines"]
    return next((m["stateMachineArn"] for m in machines if m["name"] == name), None)


def test_create_puts_a_rule_per_trigger_with_target_role_and_input(aws, tmp_path):
    server, env, roles = aws
    path = write_flow(tmp_path, DOWN.format(name="DownFlow"), "down.py")
    proc = mfc(None, "sfn", "create", path, env=env, timeout=120)
    assert proc.returncode == 0, describe(proc)
    arn = machine_arn(server, "DownFlow")
    assert arn  # the bus mfc is there already: `mfc sandbox up` (the resources this server got) creates it
    assert f"{path}:{line_of(path, '@trigger_on_finish')}: @trigger_on_finish: UpFlow is not deployed" in proc.stderr
    on_bus = rules(server, EVENT_BUS)
    ready, other = rule_name("DownFlow", "event", "data.ready"), rule_name("DownFlow", "event", "other")
    assert {ready, other} <= set(on_bus)
    assert json.loads(on_bus[ready]["EventPattern"]) == {"source": ["mfc"], "detail-type": ["data.ready"]}
    (target,) = targets(server, EVENT_BUS, ready)
    assert (target["Arn"], target["RoleArn"]) == (arn, roles["events_role"])
    assert target["InputTransformer"]["InputPathsMap"] == {"alpha": "$.detail.weight"}
    assert target["InputTransformer"]["InputTemplate"] == ('{"parameters": {"alpha": <alpha>, "n": "3"}, '
                                                                 '"trigger": {"kind": "event", "name": "data.ready"}}')
    (plain,) = targets(server, EVENT_BUS, other)
    assert json.loads(plain["InputTransformer"]["InputTemplate"]) == {"parameters": {"alpha": "0.5", "n": "3"},
                                                                  "trigger": {"kind": "event", "name": "other"}}
    finish = rule_name("DownFlow", "finish", "UpFlow")
    pattern = json.loads(rules(server, "default")[finish]["EventPattern"])
    assert pattern == {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
                       "detail": {"status": ["SUCCEEDED"], "stateMachineArn": [arn.replace("DownFlow", "UpFlow")]}}
    (upstream,) = targets(server, "default", finish)
    assert (upstream["Arn"], upstream["RoleArn"]) == (arn, roles["events_role"])
    assert json.loads(upstream["Input"]) == {"parameters": {"alpha": "0.5", "n": "3"},
                                             "trigger": {"kind": "upstream", "name": "UpFlow"}}

    # deployed again unchanged, with the upstream now deployed: no rule touched, no warning
    assert mfc(None, "sfn", "create", write_flow(tmp_path, UP, "up.py"), env=env, timeout=120).returncode == 0
    again = mfc(None, "sfn", "create", path, env=env, timeout=120)
    assert again.returncode == 0 and "rule" not in again.stdout and "not deployed" not in again.stderr, describe(again)


def test_rules_of_triggers_that_are_gone_are_removed_and_only_mfcs(aws, tmp_path):
    server, env, _ = aws
    name = "StaleFlow"
    path = write_flow(tmp_path, DOWN.format(name=name), "stale.py")
    assert mfc(None, "sfn", "create", path, env=env, timeout=120).returncode == 0
    arn = machine_arn(server, name)
    events = server.client("events")
    events.put_rule(Name="someone-elses", EventBusName=EVENT_BUS, EventPattern=json.dumps({"source": ["x"]}))
    events.put_targets(Rule="someone-elses", EventBusName=EVENT_BUS, Targets=[{"Id": "t", "Arn": arn}])
    fewer = DOWN.format(name=name).replace(', "other"]', "]").replace('    @trigger_on_finish(flow="UpFlow")\n', "")
    proc = mfc(None, "sfn", "create", write_flow(tmp_path, fewer, "stale.py"), env=env, timeout=120)
    assert proc.returncode == 0, describe(proc)
    gone = [rule_name(name, "event", "other"), rule_name(name, "finish", "UpFlow")]
    assert all(f"- rule {rule}" in proc.stdout for rule in gone), describe(proc)
    assert rule_name(name, "event", "other") not in rules(server, EVENT_BUS)
    assert rule_name(name, "finish", "UpFlow") not in rules(server, "default")
    assert {rule_name(name, "event", "data.ready"), "someone-elses"} <= set(rules(server, EVENT_BUS))

    deleted = mfc(None, "sfn", "delete", path, env=env, timeout=60)
    assert deleted.returncode == 0, describe(deleted)
    left = [n for bus in (EVENT_BUS, "default") for n in rules(server, bus) if n.startswith(name)]
    assert left == [] and machine_arn(server, name) is None
    assert "someone-elses" in rules(server, EVENT_BUS)


def test_a_changed_mapping_updates_the_rule(aws, tmp_path):
    server, env, _ = aws
    name = "RemapFlow"
    assert mfc(None, "sfn", "create", write_flow(tmp_path, DOWN.format(name=name)), env=env, timeout=120).returncode == 0
    remapped = DOWN.format(name=name).replace('"alpha": "weight"', '"alpha": "w2"')
    proc = mfc(None, "sfn", "create", write_flow(tmp_path, remapped), env=env, timeout=120)
    ready = rule_name(name, "event", "data.ready")
    assert proc.returncode == 0 and f"~ rule {ready}" in proc.stdout, describe(proc)
    (target,) = targets(server, EVENT_BUS, ready)
    assert target["InputTransformer"]["InputPathsMap"] == {"alpha": "$.detail.w2"}


@pytest.mark.parametrize("change, extra, words", [
    ('"alpha": "weight"', '"alpah": "weight"', "maps 'alpah', which is not a parameter of BadFlow"),
    ('n = Parameter("n", default=3)', 'n = Parameter("n", required=True)', "parameter 'n' is required and has no default"),
    (None, None, "no IAM role for EventBridge"),
], ids=["unknown-parameter", "required-unmapped", "no-events-role"])
def test_bad_triggers_create_nothing(aws, tmp_path, change, extra, words):
    server, env, _ = aws
    source = DOWN.format(name="BadFlow")
    if change:
        source = source.replace(change, extra)
    else:
        env = {k: v for k, v in env.items() if k != "MFC_EVENTS_ROLE"}
    path = write_flow(tmp_path, source)
    proc = mfc(None, "sfn", "create", path, env=env, timeout=120)
    assert proc.returncode == 2 and words in proc.stderr, describe(proc)
    if change:
        assert f"{path}:{line_of(path, '@trigger')}:" in proc.stderr
    assert_no_traceback(proc.stderr)
    assert machine_arn(server, "BadFlow") is None
    assert not [n for bus in (EVENT_BUS, "default") for n in rules(server, bus) if n.startswith("BadFlow")]


def test_dry_run_says_which_rules_it_would_put_and_puts_none(aws, tmp_path):
    server, env, _ = aws
    proc = mfc(None, "sfn", "create", write_flow(tmp_path, DOWN.format(name="DryFlow")), "--dry-run", env=env, timeout=120)
    assert proc.returncode == 0, describe(proc)
    assert f"would put rule {rule_name('DryFlow', 'event', 'data.ready')}" in proc.stdout
    assert f"would put rule {rule_name('DryFlow', 'finish', 'UpFlow')}" in proc.stdout
    assert not [n for bus in (EVENT_BUS, "default") for n in rules(server, bus) if n.startswith("DryFlow")]


# -- mfc event publish ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bare():
    """A moto server without the bus ``mfc``."""
    with MotoServer() as server:
        yield server, {**server.env(), "MFC_AWS_ENDPOINT_URL": server.endpoint}


def test_a_published_event_lands_where_its_rule_delivers(bare):
    server, env = bare
    first = mfc(None, "event", "publish", "warmup", env=env)
    assert first.returncode == 0, describe(first)  # the bus did not exist: publish made it
    events, sqs = server.client("events"), server.client("sqs")
    assert events.describe_event_bus(Name=EVENT_BUS)["Name"] == EVENT_BUS
    queue = sqs.create_queue(QueueName="seen")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="watch", EventBusName=EVENT_BUS,
                    EventPattern=json.dumps({"source": ["mfc"], "detail-type": ["data.ready"]}))
    events.put_targets(Rule="watch", EventBusName=EVENT_BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
    proc = mfc(None, "event", "publish", "data.ready", "--payload", '{"weight": 2, "day": "mon"}', env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("Published event data.ready to bus mfc: "), describe(proc)
    assert mfc(None, "event", "publish", "something.else", env=env).returncode == 0  # not matched: not delivered
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages") or []
    (message,) = [json.loads(m["Body"]) for m in messages]
    assert (message["source"], message["detail-type"], message["detail"]) == ("mfc", "data.ready", {"weight": 2, "day": "mon"})
    assert message["id"] == proc.stdout.split(": ", 1)[1].strip()


@pytest.mark.parametrize("payload, words", [
    ("{nope", "--payload is not JSON"),
    ("[1, 2]", "--payload must be a JSON object"),
    ('"text"', "--payload must be a JSON object"),
])
def test_a_payload_that_is_not_a_json_object_is_one_line(payload, words):
    # nothing to reach: the payload is refused before any call
    proc = mfc(None, "event", "publish", "data.ready", "--payload", payload, env={"MFC_AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert proc.returncode == 2, describe(proc)
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and words in line
    assert_no_traceback(proc.stderr)


def test_a_failed_entry_is_an_error(monkeypatch, bare):
    server, _ = bare
    events = server.client("events")
    stubber = Stubber(events)
    stubber.add_response("describe_event_bus", {"Name": EVENT_BUS})
    stubber.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
        {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}]})
    monkeypatch.setattr(trigger_deploy, "events_client", lambda config: events)
    from mfc.cli.event import publish

    with stubber, pytest.raises(MfcError, match="EventBridge did not accept event 'x': ThrottlingException: Rate exceeded"):
        publish(Config(env={}), "x", {})


def test_a_null_parameter_in_the_input_is_not_given():
    """An event without the field a trigger maps gives null: the run takes the default."""
    from mfc.sfn.runstart import parameter_args

    assert parameter_args({"alpha": None, "n": 3}) == ["--n=3"]
