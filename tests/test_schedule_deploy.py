"""``mfc schedule`` against a moto server: the EventBridge rule (UTC) or EventBridge Scheduler
schedule (with a timezone), its target, role and input read back through the API; show, disable,
enable and delete; every bad input is one line, exit 2, and creates nothing."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from support import describe, mfc

ROLE = "arn:aws:iam::123456789012:role/mfc-events"
SFN_ROLE = "arn:aws:iam::123456789012:role/mfc-sfn"
PASS = json.dumps({"StartAt": "Go", "States": {"Go": {"Type": "Pass", "End": True}}})


def _flow(directory: Path, name: str, decorator: str = "", params: str = "") -> Path:
    path = directory / f"{name.lower()}.py"
    body = f"""
        from mfc import FlowSpec, Parameter, schedule, step


        {decorator}
        class {name}(FlowSpec):
            alpha = Parameter("alpha", default=0.5)
            greeting = Parameter("greeting", default="hi")
            {params}

            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    """
    path.write_text(textwrap.dedent(body).lstrip())
    return path


@pytest.fixture
def aws(moto, root):
    """(run ``mfc`` against moto, events client, scheduler client, Step Functions client)."""
    env = {**moto.env(), "MFC_AWS_ENDPOINT_URL": moto.endpoint, "MFC_EVENTS_ROLE": ROLE, "MFC_USER": "ana"}

    def run(*args: str, extra: dict[str, str] | None = None):
        return mfc(root, *args, env={**env, **(extra or {})})

    return run, moto.client("events"), moto.client("scheduler"), moto.client("stepfunctions")


def _deploy(sfn, name: str) -> str:
    return sfn.create_state_machine(name=name, definition=PASS, roleArn=SFN_ROLE)["stateMachineArn"]


def _nothing_for(events, scheduler, name: str) -> bool:
    rules = events.list_rules(NamePrefix=name).get("Rules") or []
    schedules = [s for s in scheduler.list_schedules().get("Schedules") or [] if s["Name"].startswith(name)]
    return not rules and not schedules


def _ok(proc):
    assert proc.returncode == 0, describe(proc)
    return proc.stdout


def test_a_cron_rule_targets_the_state_machine_with_role_and_defaults(aws, tmp_path):
    run, events, scheduler, sfn = aws
    flow = _flow(tmp_path, "RuleFlow")
    arn = _deploy(sfn, "RuleFlow")
    out = _ok(run("schedule", str(flow), "--cron", "0 3 * * ? *"))
    assert "RuleFlow: cron(0 3 * * ? *) (UTC), enabled (EventBridge rule RuleFlow-schedule)" in out
    assert re.search(r"next fire: \d{4}-\d\d-\d\d 03:00 UTC", out), out
    rule = events.describe_rule(Name="RuleFlow-schedule")
    assert rule["ScheduleExpression"] == "cron(0 3 * * ? *)" and rule["State"] == "ENABLED"
    [target] = events.list_targets_by_rule(Rule="RuleFlow-schedule")["Targets"]
    assert target["Arn"] == arn and target["RoleArn"] == ROLE
    assert json.loads(target["Input"]) == {"parameters": {"alpha": "0.5", "greeting": "hi"},
                                       "trigger": {"kind": "schedule", "name": "cron(0 3 * * ? *)"}}
    assert _ok(run("schedule", str(flow), "--rate", "5 minutes"))  # updated in place, still one target
    assert events.describe_rule(Name="RuleFlow-schedule")["ScheduleExpression"] == "rate(5 minutes)"
    assert len(events.list_targets_by_rule(Rule="RuleFlow-schedule")["Targets"]) == 1

    shown = _ok(run("schedule", str(flow), "--show"))
    assert "rate(5 minutes) (UTC), enabled" in shown and f"target {arn} as {ROLE}" in shown
    fires = [line for line in shown.splitlines() if line.startswith("  ") and "UTC" in line and "(local)" in line]
    assert len(fires) == 5, shown

    assert "DISABLED" in _ok(run("schedule", str(flow), "--disable"))
    assert events.describe_rule(Name="RuleFlow-schedule")["State"] == "DISABLED"
    assert "enabled" in _ok(run("schedule", str(flow), "--enable"))
    assert events.describe_rule(Name="RuleFlow-schedule")["State"] == "ENABLED"
    assert "Deleted rule RuleFlow-schedule." in _ok(run("schedule", str(flow), "--delete"))
    assert _nothing_for(events, scheduler, "RuleFlow")
    assert "nothing deleted" in _ok(run("schedule", str(flow), "--delete"))  # idempotent


def test_a_timezone_makes_a_scheduler_schedule_and_replaces_the_rule(aws, tmp_path):
    run, events, scheduler, sfn = aws
    flow = _flow(tmp_path, "ZoneFlow")
    arn = _deploy(sfn, "ZoneFlow")
    _ok(run("schedule", str(flow), "--cron", "cron(0 3 * * ? *)"))
    out = _ok(run("schedule", str(flow), "--cron", "cron(30 9 ? * MON-FRI *)", "--timezone", "Europe/Berlin"))
    assert "in Europe/Berlin, enabled (EventBridge Scheduler schedule ZoneFlow-schedule)" in out
    assert not events.list_rules(NamePrefix="ZoneFlow").get("Rules")  # the UTC rule is gone
    found = scheduler.get_schedule(Name="ZoneFlow-schedule", GroupName="default")
    assert found["ScheduleExpression"] == "cron(30 9 ? * MON-FRI *)"
    assert found["ScheduleExpressionTimezone"] == "Europe/Berlin" and found["State"] == "ENABLED"
    assert found["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert found["Target"]["Arn"] == arn and found["Target"]["RoleArn"] == ROLE
    assert json.loads(found["Target"]["Input"])["parameters"] == {"alpha": "0.5", "greeting": "hi"}

    shown = _ok(run("schedule", str(flow), "--show"))
    fires = [line for line in shown.splitlines() if "(Europe/Berlin)" in line]
    assert len(fires) == 5 and all(" 09:30 C" in line for line in fires), shown  # 09:30 CET or CEST

    _ok(run("schedule", str(flow), "--disable"))
    found = scheduler.get_schedule(Name="ZoneFlow-schedule", GroupName="default")
    assert found["State"] == "DISABLED" and found["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert found["Target"]["Arn"] == arn  # disabling keeps the rest
    _ok(run("schedule", str(flow), "--enable"))
    assert scheduler.get_schedule(Name="ZoneFlow-schedule", GroupName="default")["State"] == "ENABLED"
    _ok(run("schedule", str(flow), "--cron", "0 3 * * ? *"))  # back to UTC: a rule, no schedule left
    assert events.describe_rule(Name="ZoneFlow-schedule")["State"] == "ENABLED"
    assert not [s for s in scheduler.list_schedules()["Schedules"] if s["Name"] == "ZoneFlow-schedule"]
    _ok(run("schedule", str(flow), "--cron", "0 3 * * ? *", "--timezone", "Asia/Tokyo"))
    assert "Deleted schedule ZoneFlow-schedule." in _ok(run("schedule", str(flow), "--delete"))
    assert _nothing_for(events, scheduler, "ZoneFlow")


def test_the_flows_schedule_decorator_is_the_default(aws, tmp_path):
    run, events, scheduler, sfn = aws
    hourly = _flow(tmp_path, "HourlyFlow", "@schedule(hourly=True)")
    _deploy(sfn, "HourlyFlow")
    _ok(run("schedule", str(hourly)))
    assert events.describe_rule(Name="HourlyFlow-schedule")["ScheduleExpression"] == "cron(0 * * * ? *)"
    zoned = _flow(tmp_path, "ZonedFlow", '@schedule(cron="0 7 * * ? *", timezone="America/New_York")')
    _deploy(sfn, "ZonedFlow")
    _ok(run("schedule", str(zoned)))
    found = scheduler.get_schedule(Name="ZonedFlow-schedule", GroupName="default")
    assert (found["ScheduleExpression"], found["ScheduleExpressionTimezone"]) == ("cron(0 7 * * ? *)",
                                                                                 "America/New_York")
    _ok(run("schedule", str(zoned), "--timezone", "UTC"))  # --timezone overrides the decorator's
    assert scheduler.get_schedule(Name="ZonedFlow-schedule", GroupName="default")["ScheduleExpressionTimezone"] == "UTC"
    for flow in (hourly, zoned):
        _ok(run("schedule", str(flow), "--delete"))
    assert _nothing_for(events, scheduler, "HourlyFlow") and _nothing_for(events, scheduler, "ZonedFlow")


def test_a_named_state_machine(aws, tmp_path):
    run, events, _, sfn = aws
    flow = _flow(tmp_path, "NamedFlow")
    arn = _deploy(sfn, "custom-machine")
    _ok(run("schedule", str(flow), "--rate", "rate(1 minute)", "--name", "custom-machine"))
    assert events.describe_rule(Name="custom-machine-schedule")["ScheduleExpression"] == "rate(1 minute)"
    assert events.list_targets_by_rule(Rule="custom-machine-schedule")["Targets"][0]["Arn"] == arn
    _ok(run("schedule", str(flow), "--delete", "--name", "custom-machine"))


BAD = [
    (("--cron", "0 3 * * MON-FUN *"), "error: cron field 'day-of-week' (5th): 'MON-FUN' is not valid ('FUN' is not a "
                                      "value); it accepts 1-7 or SUN-SAT"),
    (("--cron", "0 3 * * *"), "error: cron expression '0 3 * * *': has 5 fields, expected 6"),
    (("--cron", "0 3 * * ? *", "--timezone", "Mars/Olympus"), "error: unknown timezone 'Mars/Olympus'"),
    (("--rate", "30 seconds"), "error: rate expression '30 seconds': a rate below one minute"),
    (("--rate", "0 minutes"), "error: rate expression '0 minutes': a rate below one minute"),
    (("--cron", "rate(1 hour)"), "error: --cron 'rate(1 hour)' is a rate expression; give it with --rate"),
    (("--cron", "0 3 * * ? *", "--rate", "1 hour"), "error: give --cron or --rate, not both"),
    (("--show", "--cron", "0 3 * * ? *"), "error: --show takes no --cron, --rate or --timezone"),
    (("--show", "--delete"), "error: give one of --show, --disable, --enable, --delete, not --show and --delete"),
    ((), "error: BadFlow has no @schedule: give --cron EXPR or --rate EXPR"),
    (("--show",), "error: BadFlow has no schedule (state machine BadFlow) (add one: mfc schedule FLOW"),
    (("--disable",), "error: BadFlow has no schedule to disable"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) or "no-schedule" for a, _ in BAD])
def test_bad_input_is_one_line_and_creates_nothing(aws, tmp_path, args, message):
    run, events, scheduler, sfn = aws
    flow = _flow(tmp_path, "BadFlow")
    if not sfn.list_state_machines()["stateMachines"] or not any(
            m["name"] == "BadFlow" for m in sfn.list_state_machines()["stateMachines"]):
        _deploy(sfn, "BadFlow")
    proc = run("schedule", str(flow), *args)
    assert proc.returncode == 2, describe(proc)
    assert proc.stderr.strip().startswith(message), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert _nothing_for(events, scheduler, "BadFlow")


def test_a_required_parameter_without_default_names_its_line(aws, tmp_path):
    run, events, scheduler, sfn = aws
    flow = _flow(tmp_path, "RequiredFlow", params='size = Parameter("size", required=True)')
    _deploy(sfn, "RequiredFlow")
    line = next(i for i, text in enumerate(flow.read_text().splitlines(), 1) if '"size"' in text)
    proc = run("schedule", str(flow), "--rate", "1 hour")
    assert proc.returncode == 2, describe(proc)
    assert proc.stderr.startswith(f"error: {flow}:{line}: parameter 'size' is required and has no default, but "
                                  "RequiredFlow is started on a schedule"), proc.stderr
    assert _nothing_for(events, scheduler, "RequiredFlow")


def test_an_undeployed_flow_or_a_missing_role_creates_nothing(aws, tmp_path):
    run, events, scheduler, sfn = aws
    flow = _flow(tmp_path, "LonelyFlow")
    proc = run("schedule", str(flow), "--rate", "1 hour")
    assert proc.returncode == 2 and "error: LonelyFlow is not deployed to Step Functions" in proc.stderr, describe(proc)
    _deploy(sfn, "LonelyFlow")
    proc = run("schedule", str(flow), "--rate", "1 hour", extra={"MFC_EVENTS_ROLE": ""})
    assert proc.returncode == 2, describe(proc)
    assert proc.stderr.startswith("error: no IAM role for EventBridge to start the state machine as (set events_role"), \
        proc.stderr
    assert _nothing_for(events, scheduler, "LonelyFlow")


OFFLINE = {"MFC_DATASTORE_ROOT": "s3://bucket/prefix", "MFC_BATCH_QUEUE": "q", "MFC_IMAGE": "img:1",
           "MFC_SFN_ROLE": SFN_ROLE, "MFC_EVENTS_ROLE": ROLE,
           # nothing to reach: an AWS call would fail with "cannot reach"
           "MFC_AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}


@pytest.mark.parametrize("decorator,env,message", [
    ('@schedule(cron="0 3 * * *")', {}, "@schedule: cron expression '0 3 * * *': has 5 fields, expected 6"),
    ('@schedule(cron="0 3 * * ? *", timezone="Europe/Nowhere")', {}, "@schedule: unknown timezone 'Europe/Nowhere'"),
    ("@schedule(daily=True)", {"MFC_EVENTS_ROLE": ""}, "no IAM role for EventBridge to start the state machine as"),
])
def test_sfn_create_refuses_a_bad_schedule_before_anything_is_deployed(tmp_path, decorator, env, message):
    flow = _flow(tmp_path, "CreateFlow", decorator)
    proc = mfc(None, "sfn", "create", str(flow), env={**OFFLINE, **env})
    assert proc.returncode == 2, describe(proc)
    assert message in proc.stderr and "cannot reach" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    if "@schedule" in message:  # the decorator's own line
        assert proc.stderr.startswith(f"error: {flow}:4: @schedule: "), proc.stderr


def test_sfn_create_applies_the_flows_schedule(moto, tmp_path):
    from mfc.config import Config
    from mfc.events.deploy import apply_flow_schedule
    from mfc.flowload import flow_class, import_flow_file
    from mfc.graph import load_graph

    flow = _flow(tmp_path, "AppliedFlow", '@schedule(weekly=True, timezone="Europe/Berlin")')
    cls = flow_class(import_flow_file(str(flow)), "AppliedFlow", str(flow))
    config = Config(env={**moto.env(), "MFC_AWS_ENDPOINT_URL": moto.endpoint, "MFC_EVENTS_ROLE": ROLE})
    sfn, scheduler = moto.client("stepfunctions"), moto.client("scheduler")
    arn = _deploy(sfn, "AppliedFlow")
    applied = apply_flow_schedule(config, cls, load_graph(str(flow)), arn, "AppliedFlow")
    assert applied is not None and (applied.kind, applied.expression, applied.timezone) == (
        "schedule", "cron(0 0 ? * SUN *)", "Europe/Berlin")
    found = scheduler.get_schedule(Name="AppliedFlow-schedule", GroupName="default")
    assert found["Target"]["Arn"] == arn and found["Target"]["RoleArn"] == ROLE
    assert json.loads(found["Target"]["Input"])["parameters"] == {"alpha": "0.5", "greeting": "hi"}
    plain = _flow(tmp_path, "PlainFlow")
    plain_cls = flow_class(import_flow_file(str(plain)), "PlainFlow", str(plain))
    assert apply_flow_schedule(config, plain_cls, load_graph(str(plain)), arn, "PlainFlow") is None


def test_sfn_delete_deletes_the_schedule_too(aws, tmp_path):
    run, events, scheduler, sfn = aws
    flow = _flow(tmp_path, "GoneFlow")
    _deploy(sfn, "GoneFlow")
    _ok(run("schedule", str(flow), "--cron", "0 3 * * ? *", "--timezone", "Europe/Berlin"))
    out = _ok(run("sfn", "delete", str(flow)))
    assert "Deleted schedule GoneFlow-schedule." in out and "Deleted state machine GoneFlow" in out
    assert _nothing_for(events, scheduler, "GoneFlow")


def test_a_target_eventbridge_refuses_is_an_error(monkeypatch):
    from mfc.events import deploy
    from mfc.exceptions import MfcError

    class Events:  # put_targets reports a refused target in its answer, raising nothing
        def put_rule(self, **_: object) -> dict:
            return {}

        def put_targets(self, **_: object) -> dict:
            return {"FailedEntryCount": 1, "FailedEntries": [
                {"TargetId": "state-machine", "ErrorCode": "ValidationException", "ErrorMessage": "bad role"}]}

    monkeypatch.setattr(deploy, "_client", lambda service, config: Events())
    with pytest.raises(MfcError, match="did not set the target of rule F-schedule: ValidationException: bad role"):
        deploy.apply_schedule({"events_role": ROLE, "aws_endpoint_url": None}, "arn:sm", "F", "rate(1 hour)", None, "{}")
