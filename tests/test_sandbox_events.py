"""The sandbox fires schedules and events (:mod:`mfc.sandbox.eventclock`, wired into moto by
:mod:`mfc.sandbox.moto_shims`): the pure parts first, then against a real sandbox moto server
(state machines of Pass/Fail states only, so no Docker), moving its clock instead of waiting."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from zoneinfo import ZoneInfo

import pytest
from moto_server import free_ports

from mfc.exceptions import MfcError
from mfc.sandbox import control, profile
from mfc.sandbox.eventclock import advance_due, is_state_machine, public_event, target_input, transform_input

# --- pure ----------------------------------------------------------------------------------------

EVENT = {"source": "mfc", "detail-type": "x", "time": 0.0, "ingestion-time": 1.0,
         "detail": {"alpha": "a \"quoted\" word", "n": 3, "obj": {"k": [1, 2]}}}


def test_transformer_puts_json_values_outside_strings_and_text_inside():
    template = '{"parameters": {"alpha": <alpha>, "n": <n>, "obj": <obj>, "label": "n=<n> <alpha>", "gone": <gone>}}'
    paths = {"alpha": "$.detail.alpha", "n": "$.detail.n", "obj": "$.detail.obj", "gone": "$.detail.nothing"}
    out = json.loads(transform_input(template, paths, EVENT))
    assert out == {"parameters": {"alpha": 'a "quoted" word', "n": 3, "obj": {"k": [1, 2]},
                                  "label": 'n=3 a "quoted" word', "gone": None}}


def test_transformer_leaves_unknown_placeholders_and_knows_the_rule():
    target = {"InputTransformer": {"InputTemplate": '{"rule": <aws.events.rule-name>, "x": "<other>"}'}}
    assert json.loads(target_input(target, EVENT, "r1", "arn:r1")) == {"rule": "r1", "x": "<other>"}


def test_target_input_prefers_input_then_transformer_then_path_then_the_event():
    assert target_input({"Input": '{"a": 1}', "InputPath": "$.detail"}, EVENT) == '{"a": 1}'
    assert json.loads(target_input({"InputPath": "$.detail.obj"}, EVENT)) == {"k": [1, 2]}
    assert json.loads(target_input({}, EVENT)) == EVENT


def test_public_event_has_iso_time_and_no_ingestion_time():
    assert public_event(EVENT)["time"] == "1970-01-01T00:00:00Z"
    assert "ingestion-time" not in public_event(EVENT)


def test_advance_due_fires_each_passed_time_once():
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    minute = dt.timedelta(minutes=1)

    def following(t: dt.datetime) -> dt.datetime:
        return t + minute

    assert advance_due(t0 + minute, t0 + minute - dt.timedelta(seconds=1), following) == ([], t0 + minute)
    assert advance_due(t0 + minute, t0 + 3 * minute, following) == (
        [t0 + minute, t0 + 2 * minute, t0 + 3 * minute], t0 + 4 * minute)
    assert advance_due(None, t0, following) == ([], None)  # a schedule that has ended
    assert advance_due(t0, t0 + 10 * minute, following, limit=2) == ([t0, t0 + minute], t0 + 2 * minute)


def test_state_machine_arns_are_told_from_other_targets():
    assert is_state_machine("arn:aws:states:us-east-1:123456789012:stateMachine:Flow")
    assert not is_state_machine("arn:aws:states:us-east-1:123456789012:execution:Flow:x")
    assert not is_state_machine("arn:aws:sqs:us-east-1:123456789012:queue")


# --- a real sandbox ------------------------------------------------------------------------------

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
FAIL = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom", "Cause": "on purpose"}}}


class Box:
    def __init__(self, state_dir: str, port: int):
        self.state_dir, self.port = state_dir, port
        self.values = profile.read_profile(control.load_state(state_dir)["config"], "sandbox")

    def client(self, service: str):
        from mfc.sandbox.resources import client

        return client(service, self.port)

    def machine(self, definition: dict = PASS) -> str:
        return self.client("stepfunctions").create_state_machine(
            name=f"sm-{uuid.uuid4().hex[:12]}", definition=json.dumps(definition),
            roleArn=self.values["sfn_role"])["stateMachineArn"]

    def executions(self, machine: str) -> list[dict]:
        return self.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]

    def inputs(self, machine: str) -> list[dict]:
        sfn = self.client("stepfunctions")
        return [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
                for e in self.executions(machine)]

    def wait_count(self, machine: str, count: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.executions(machine)
            if len(found) >= count:
                return found
            time.sleep(0.2)
        return self.executions(machine)

    def wait_ended(self, execution: str, timeout: float = 30.0) -> dict:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.2)
        raise AssertionError(f"{execution} still running after {timeout}s")

    def advance(self, seconds: float) -> dict:
        return control.advance_clock(seconds, self.state_dir)


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    pytest.importorskip("mfc.events.expressions")
    tmp = tmp_path_factory.mktemp("sandbox-events")
    state_dir = str(tmp / "state")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MFC_CONFIG", str(tmp / "config.toml"))
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        port, registry_port = free_ports(2)
        try:
            control.up(state_dir, port=port, registry_port=registry_port)
            yield Box(state_dir, port)
        finally:
            control.down(state_dir)


def _rate_rule(box: Box, machine: str, state: str = "ENABLED", payload: dict | None = None) -> str:
    events = box.client("events")
    name = f"rule-{uuid.uuid4().hex[:10]}"
    events.put_rule(Name=name, ScheduleExpression="rate(1 minute)", State=state)
    events.put_targets(Rule=name, Targets=[{"Id": "flow", "Arn": machine, "RoleArn": box.values["events_role"],
                                            "Input": json.dumps(payload or {"parameters": {}})}])
    return name


def test_a_rate_rule_fires_once_per_fire_time_after_the_clock_passes_it(box):
    machine = box.machine()
    _rate_rule(box, machine, payload={"parameters": {"alpha": "1"}})
    time.sleep(2.5)  # the clock ticks every second: a schedule created now does not fire at once
    assert box.executions(machine) == []
    box.advance(30)
    assert box.executions(machine) == []
    box.advance(31)  # 61 s after it was created: the first fire time has passed
    found = box.wait_count(machine, 1)
    assert len(found) == 1
    assert box.inputs(machine) == [{"parameters": {"alpha": "1"}}]
    assert box.wait_ended(found[0]["executionArn"])["status"] == "SUCCEEDED"
    time.sleep(2.5)  # later ticks do not fire the same time again
    assert len(box.executions(machine)) == 1
    box.advance(180)  # three more fire times passed in one move: three executions, not one
    assert len(box.wait_count(machine, 4)) == 4
    time.sleep(1.5)
    assert len(box.executions(machine)) == 4


def test_a_disabled_rule_does_not_fire_and_an_enabled_one_fires_from_its_next_time(box):
    machine = box.machine()
    name = _rate_rule(box, machine, state="DISABLED")
    box.advance(61)
    box.advance(61)
    time.sleep(1.5)
    assert box.executions(machine) == []
    box.client("events").enable_rule(Name=name)
    time.sleep(1.5)
    assert box.executions(machine) == []  # no catching up on the times it was disabled for
    box.advance(61)
    assert len(box.wait_count(machine, 1)) == 1


def test_a_scheduler_schedule_fires_in_its_timezone(box):
    machine = box.machine()
    zone = ZoneInfo("Asia/Kathmandu")  # UTC+5:45: a cron read in UTC would fire at another time
    now = dt.datetime.fromisoformat(box.advance(0)["now"])
    fire = (now + dt.timedelta(minutes=3)).replace(second=0, microsecond=0)
    local = fire.astimezone(zone)
    box.client("scheduler").create_schedule(
        Name=f"sched-{uuid.uuid4().hex[:10]}", ScheduleExpression=f"cron({local.minute} {local.hour} * * ? *)",
        ScheduleExpressionTimezone="Asia/Kathmandu", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": machine, "RoleArn": box.values["events_role"], "Input": '{"parameters": {"b": "2"}}'})
    clock = box.advance(61)  # before the fire time
    assert box.executions(machine) == []
    left = (fire - dt.datetime.fromisoformat(clock["now"])).total_seconds()
    assert left > 0
    box.advance(left + 1)
    assert len(box.wait_count(machine, 1)) == 1
    assert box.inputs(machine) == [{"parameters": {"b": "2"}}]
    box.advance(120)  # the next fire time is a day later
    time.sleep(1.5)
    assert len(box.executions(machine)) == 1


def test_a_scheduler_schedule_fires_only_between_its_start_and_end_dates(box):
    machine, ended = box.machine(), box.machine()
    now = dt.datetime.fromisoformat(box.advance(0)["now"])
    scheduler = box.client("scheduler")
    common = {"ScheduleExpression": "rate(1 minute)", "FlexibleTimeWindow": {"Mode": "OFF"}}
    scheduler.create_schedule(Name=f"later-{uuid.uuid4().hex[:8]}", StartDate=now + dt.timedelta(seconds=150),
                              Target={"Arn": machine, "RoleArn": box.values["events_role"]}, **common)
    scheduler.create_schedule(Name=f"ended-{uuid.uuid4().hex[:8]}", EndDate=now + dt.timedelta(seconds=30),
                              Target={"Arn": ended, "RoleArn": box.values["events_role"]}, **common)
    box.advance(61)
    box.advance(61)
    time.sleep(1)
    assert box.executions(machine) == [] and box.executions(ended) == []
    box.advance(61)  # past its start date
    assert len(box.wait_count(machine, 1)) == 1
    assert box.executions(ended) == []


def test_a_published_event_starts_its_machine_with_the_transformed_input(box):
    events = box.client("events")
    machine, disabled_machine = box.machine(), box.machine()
    kind = f"evt-{uuid.uuid4().hex[:8]}"
    transformer = {"InputPathsMap": {"alpha": "$.detail.alpha"},
                   "InputTemplate": '{"parameters": {"alpha": <alpha>, "beta": "7"}}'}
    for name, target, state in ((f"{kind}-on", machine, "ENABLED"), (f"{kind}-off", disabled_machine, "DISABLED")):
        events.put_rule(Name=name, EventBusName="mfc", State=state,
                        EventPattern=json.dumps({"source": ["mfc"], "detail-type": [kind]}))
        events.put_targets(Rule=name, EventBusName="mfc", Targets=[
            {"Id": "flow", "Arn": target, "RoleArn": box.values["events_role"], "InputTransformer": transformer}])
    other = events.put_events(Entries=[{"Source": "mfc", "DetailType": f"{kind}-other", "EventBusName": "mfc",
                                        "Detail": json.dumps({"alpha": "no"})}])
    assert other["FailedEntryCount"] == 0
    sent = events.put_events(Entries=[{"Source": "mfc", "DetailType": kind, "EventBusName": "mfc",
                                       "Detail": json.dumps({"alpha": "from the payload"})}])
    assert sent["FailedEntryCount"] == 0
    found = box.wait_count(machine, 1)
    assert len(found) == 1
    assert box.inputs(machine) == [{"parameters": {"alpha": "from the payload", "beta": "7"}}]
    assert box.wait_ended(found[0]["executionArn"])["status"] == "SUCCEEDED"
    assert box.executions(disabled_machine) == []


def test_a_succeeded_execution_starts_the_downstream_machine_and_a_failed_one_does_not(box):
    events, logs = box.client("events"), box.client("logs")
    upstream_ok, upstream_bad = box.machine(PASS), box.machine(FAIL)
    after_ok, after_bad = box.machine(), box.machine()
    group = f"/mfc/test/{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    group_arn = f"arn:aws:logs:us-east-1:123456789012:log-group:{group}"
    for upstream, downstream in ((upstream_ok, after_ok), (upstream_bad, after_bad)):
        name = f"finish-{uuid.uuid4().hex[:10]}"
        events.put_rule(Name=name, EventPattern=json.dumps({
            "source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
            "detail": {"status": ["SUCCEEDED"], "stateMachineArn": [upstream]}}))
        events.put_targets(Rule=name, Targets=[
            {"Id": "flow", "Arn": downstream, "RoleArn": box.values["events_role"],
             "Input": json.dumps({"parameters": {"up": "done"}})},
            {"Id": "log", "Arn": group_arn}])  # moto's own delivery still reaches the other targets
    sfn = box.client("stepfunctions")
    ok = sfn.start_execution(stateMachineArn=upstream_ok, name="ok-run", input='{"x": 1}')["executionArn"]
    bad = sfn.start_execution(stateMachineArn=upstream_bad, name="bad-run")["executionArn"]
    assert box.wait_ended(ok)["status"] == "SUCCEEDED"
    assert box.wait_ended(bad)["status"] == "FAILED"
    assert len(box.wait_count(after_ok, 1)) == 1
    assert box.inputs(after_ok) == [{"parameters": {"up": "done"}}]
    time.sleep(1.5)
    assert box.executions(after_bad) == []
    messages = [json.loads(e["message"]) for e in logs.filter_log_events(logGroupName=group)["events"]]
    assert len(messages) == 1
    event = messages[0]
    assert (event["source"], event["detail-type"], event["resources"]) == (
        "aws.states", "Step Functions Execution Status Change", [ok])
    detail = event["detail"]
    assert {k: detail[k] for k in ("executionArn", "stateMachineArn", "status", "input", "output")} == {
        "executionArn": ok, "stateMachineArn": upstream_ok, "status": "SUCCEEDED", "input": '{"x":1}',
        "output": '{"x":1}'}
    assert detail["name"] == "ok-run"
    assert isinstance(detail["startDate"], int) and detail["stopDate"] >= detail["startDate"]


def test_status_lists_the_schedules_with_their_next_fire_times(box):
    from mfc.cli.sandbox import render_status

    machine = box.machine()
    name = _rate_rule(box, machine)
    box.advance(0)  # the clock has seen it: its next fire time is known
    result = control.status(box.state_dir)
    rows = {s["name"]: s for s in result["schedules"]}
    rule = rows[name]
    assert (rule["kind"], rule["expression"], rule["state"], rule["targets"]) == (
        "rule", "rate(1 minute)", "ENABLED", [machine])
    now = dt.datetime.fromisoformat(result["clock"]["now"])
    fires = [dt.datetime.fromisoformat(t) for t in rule["next_fires"]]
    assert len(fires) == 3 and now < fires[0] <= now + dt.timedelta(minutes=1)
    assert [b - a for a, b in zip(fires, fires[1:], strict=False)] == [dt.timedelta(minutes=1)] * 2
    assert f"{name}" in render_status(result) and "NEXT FIRES (UTC)" in render_status(result)
    box.client("events").disable_rule(Name=name)
    assert {s["name"]: s for s in control.status(box.state_dir)["schedules"]}[name]["next_fires"] == []


def test_the_clock_only_moves_ahead(box):
    with pytest.raises(MfcError, match="only moves ahead"):
        control.advance_clock(-5, box.state_dir)
    with pytest.raises(MfcError, match="no sandbox runs"):
        control.advance_clock(5, box.state_dir + "-none")
