"""EventBridge schedule expressions: canonical forms, fire times against croniter (UTC and a
timezone across both DST changes), every bad input naming its field, @schedule's expressions,
rule names and the schedule's input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from croniter import croniter
from sfn_helpers import write_flow

from mfc.events.expressions import (
    DAILY,
    HOURLY,
    WEEKLY,
    ScheduleError,
    check_timezone,
    parse_schedule,
    schedule_from_decorator,
)
from mfc.events.inputs import default_parameters
from mfc.events.names import EVENT_BUS, NAME_LIMIT, rule_name
from mfc.exceptions import MfcError
from mfc.flowload import flow_class, import_flow_file

UTC = timezone.utc
START = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # a Saturday, the day before Europe's spring DST change


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# EventBridge expression, croniter's own expression for the same times (day-of-week 0-6 from SUN),
# and the first fire times after START, written out by hand.
CRON_TABLE = [
    ("cron(0 3 * * ? *)", "0 3 * * *", ["2026-03-29 03:00", "2026-03-30 03:00"]),
    ("cron(15 12 * * ? *)", "15 12 * * *", ["2026-03-28 12:15", "2026-03-29 12:15"]),
    ("cron(0/15 * * * ? *)", "*/15 * * * *", ["2026-03-28 12:15", "2026-03-28 12:30"]),
    ("cron(5/20 * * * ? *)", "5-59/20 * * * *", ["2026-03-28 12:05", "2026-03-28 12:25", "2026-03-28 12:45"]),
    ("cron(0 18 ? * MON-FRI *)", "0 18 * * 1-5", ["2026-03-30 18:00", "2026-03-31 18:00"]),
    ("cron(0 18 ? * 2-6 *)", "0 18 * * 1-5", ["2026-03-30 18:00", "2026-03-31 18:00"]),
    ("cron(0 8 1 * ? *)", "0 8 1 * *", ["2026-04-01 08:00", "2026-05-01 08:00"]),
    ("cron(0 0 ? * 1 *)", "0 0 * * 0", ["2026-03-29 00:00", "2026-04-05 00:00"]),  # 1 = SUN
    ("cron(0 0 ? * 7 *)", "0 0 * * 6", ["2026-04-04 00:00", "2026-04-11 00:00"]),  # 7 = SAT
    ("cron(0 0 ? * SUN *)", "0 0 * * 0", ["2026-03-29 00:00", "2026-04-05 00:00"]),
    ("cron(0 10 ? * 6#3 *)", "0 10 * * 5#3", ["2026-04-17 10:00", "2026-05-15 10:00"]),  # third Friday
    ("cron(0 0 ? * 6L *)", "0 0 * * L5", ["2026-04-24 00:00", "2026-05-29 00:00"]),  # last Friday
    ("cron(0 0 ? * FRIL *)", "0 0 * * L5", ["2026-04-24 00:00", "2026-05-29 00:00"]),
    ("cron(0 0 ? * MON/2 *)", "0 0 * * 1-6/2", ["2026-03-30 00:00", "2026-04-01 00:00", "2026-04-03 00:00"]),
    ("cron(0 0 ? * L *)", "0 0 * * 6", ["2026-04-04 00:00", "2026-04-11 00:00"]),  # last day of the week
    ("cron(0 0 L * ? *)", "0 0 L * *", ["2026-03-31 00:00", "2026-04-30 00:00"]),
    ("cron(0 9 15W * ? *)", "0 9 15W * *", ["2026-04-15 09:00", "2026-05-15 09:00", "2026-06-15 09:00"]),
    ("cron(0 12 1,15 JAN-MAR ? *)", "0 12 1,15 1-3 *", ["2027-01-01 12:00", "2027-01-15 12:00"]),
    ("cron(30 23 ? * FRI-MON *)", "30 23 * * 5-1", ["2026-03-28 23:30", "2026-03-29 23:30", "2026-03-30 23:30"]),
    ("cron(0 0 1 1 ? 2028-2030)", "0 0 1 1 * 0 2028-2030", ["2028-01-01 00:00", "2029-01-01 00:00"]),
]


@pytest.mark.parametrize("expression,library,expected", CRON_TABLE, ids=[row[0] for row in CRON_TABLE])
def test_cron_fire_times_match_the_library(expression, library, expected):
    schedule = parse_schedule(expression)
    fires = schedule.next_fires(START, 6)
    it = croniter(library, START.replace(tzinfo=None), ret_type=datetime)
    assert [f.replace(tzinfo=None) for f in fires] == [it.get_next() for _ in range(len(fires))]
    assert fires[: len(expected)] == [_utc(t) for t in expected]
    assert all(f.tzinfo is not None and f.utcoffset() == timedelta(0) for f in fires)


def test_bare_forms_and_canonical_text():
    assert parse_schedule("0 3 * * ? *").expression == "cron(0 3 * * ? *)"
    assert parse_schedule("  cron( 0  3 * * ? * ) ").expression == "cron(0 3 * * ? *)"
    assert parse_schedule("0 18 ? * mon-fri *").expression == "cron(0 18 ? * MON-FRI *)"
    assert parse_schedule("1 hour").expression == "rate(1 hour)"
    assert parse_schedule("1 hours").expression == "rate(1 hour)"
    assert parse_schedule("rate(5 minute)").expression == "rate(5 minutes)"
    assert parse_schedule("rate(2 days)").expression == "rate(2 days)"
    assert parse_schedule("rate(1 minute)").interval == timedelta(minutes=1)


def test_rates_fire_every_interval_from_their_start():
    every = parse_schedule("rate(5 minutes)")
    assert every.next_fires(START, 3) == [START + timedelta(minutes=m) for m in (5, 10, 15)]
    began = START - timedelta(minutes=12)  # created 12 minutes ago: next at +15 from creation
    assert every.next_fires(START, 2, start=began) == [began + timedelta(minutes=15), began + timedelta(minutes=20)]
    days = parse_schedule("rate(1 day)").next_fires(START, 2, "Europe/Berlin")  # 24 hours across DST
    assert days == [START + timedelta(days=1), START + timedelta(days=2)]


def test_a_cron_with_a_timezone_follows_its_wall_clock_across_dst():
    daily = parse_schedule("cron(30 9 * * ? *)")
    berlin = daily.next_fires(START, 3, "Europe/Berlin")
    # 09:30 CET is 08:30 UTC; from 29 March (CEST) it is 07:30 UTC.
    assert berlin == [_utc("2026-03-29 07:30"), _utc("2026-03-30 07:30"), _utc("2026-03-31 07:30")]
    autumn = daily.next_fires(_utc("2026-10-24 12:00"), 2, "Europe/Berlin")
    assert autumn == [_utc("2026-10-25 08:30"), _utc("2026-10-26 08:30")]
    new_york = daily.next_fires(_utc("2026-03-07 12:00"), 2, "America/New_York")  # US DST: 8 March
    assert new_york == [_utc("2026-03-07 14:30"), _utc("2026-03-08 13:30")]  # EST, then EDT


def test_a_wall_time_skipped_in_spring_is_skipped_and_a_repeated_one_fires_once():
    at_0230 = parse_schedule("cron(30 2 * * ? *)")
    # 29 March 2026 has no 02:30 in Berlin: that day does not fire (EventBridge Scheduler's rule).
    assert at_0230.next_fires(START, 2, "Europe/Berlin") == [_utc("2026-03-30 00:30"), _utc("2026-03-31 00:30")]
    # 25 October 2026 has 02:30 twice: it fires at the first (CEST, 00:30 UTC) only.
    assert at_0230.next_fires(_utc("2026-10-24 12:00"), 2, "Europe/Berlin") == [
        _utc("2026-10-25 00:30"), _utc("2026-10-26 01:30")]
    half_hourly = parse_schedule("cron(0/30 * * * ? *)")
    fires = half_hourly.next_fires(_utc("2026-10-24 23:45"), 4, "Europe/Berlin")
    assert fires == [_utc("2026-10-25 00:00"), _utc("2026-10-25 00:30"), _utc("2026-10-25 02:00"),
                     _utc("2026-10-25 02:30")]
    # asked from inside the repeated hour, nothing before ``after`` comes back
    assert half_hourly.next_fires(_utc("2026-10-25 01:10"), 1, "Europe/Berlin") == [_utc("2026-10-25 02:00")]


def test_schedules_that_end_or_never_fire_give_fewer_times():
    assert parse_schedule("cron(0 0 1 1 ? 2027)").next_fires(START, 3) == [_utc("2027-01-01 00:00")]
    assert parse_schedule("cron(0 0 1 1 ? 2020)").next_fires(START, 3) == []
    assert parse_schedule("cron(0 0 30 2 ? *)").next_fires(START, 3) == []
    assert parse_schedule("cron(0 0 1 1 ? 2150)").next_fires(START, 3) == []  # valid, past what is evaluated


ACCEPTS_DOW = "it accepts 1-7 or SUN-SAT, ranges a-b, lists a,b, steps */n or a/n, ?, L, nL, n#k (the k-th such day)"
BAD_CRONS = [
    ("cron(0 3 * * MON-FUN *)", "cron field 'day-of-week' (5th): 'MON-FUN' is not valid ('FUN' is not a value); "
                                + ACCEPTS_DOW),
    ("cron(61 * * * ? *)", "cron field 'minutes' (1st): '61' is out of range (61 is not in 0-59); it accepts 0-59, "
                           "ranges a-b, lists a,b, steps */n or a/n"),
    ("cron(0 24 * * ? *)", "cron field 'hours' (2nd): '24' is out of range (24 is not in 0-23)"),
    ("cron(0 0 32 * ? *)", "cron field 'day-of-month' (3rd): '32' is out of range"),
    ("cron(0 0 * 13 ? *)", "cron field 'month' (4th): '13' is out of range (13 is not in 1-12); it accepts 1-12 "
                           "or JAN-DEC"),
    ("cron(0 0 ? * 0 *)", "cron field 'day-of-week' (5th): '0' is out of range (0 is not in 1-7)"),
    ("cron(0 0 * * ? 1969)", "cron field 'year' (6th): '1969' is out of range (1969 is not in 1970-2199)"),
    ("cron(0 0 * * ? 2031-2030)", "cron field 'year' (6th): '2031-2030' is not valid (the range 2031-2030 ends"),
    ("cron(0 3 * * * *)", "cron field 'day-of-week' (5th): '*' is not valid: exactly one of day-of-month and "
                          "day-of-week must be ?"),
    ("cron(0 3 ? * ? *)", "cron field 'day-of-month' (3rd): '?' is not valid: exactly one of"),
    ("cron(0 ? * * ? *)", "cron field 'hours' (2nd): '?' is not valid (? is only for day-of-month or day-of-week)"),
    ("cron(L 0 * * ? *)", "cron field 'minutes' (1st): 'L' is not valid"),
    ("cron(0 0 ? * 1#2,3#1 *)", "cron field 'day-of-week' (5th): '1#2,3#1' is not valid (a day-of-week with # takes "
                                "one expression"),
    ("cron(0 0 ? * 3#6 *)", "cron field 'day-of-week' (5th): '3#6' is not valid (the k of n#k is 1-5"),
    ("cron(0 0 15W ? * *)", "cron field 'month' (4th): '?' is not valid"),
    ("cron(0 0 ? * 2W *)", "cron field 'day-of-week' (5th): '2W' is not valid"),
    ("cron(0 0 1# * ? *)", "cron field 'day-of-month' (3rd): '1#' is not valid"),
    ("cron(*/0 * * * ? *)", "cron field 'minutes' (1st): '*/0' is not valid (step 0 is not in 1-60)"),
    ("cron(1,,2 * * * ? *)", "cron field 'minutes' (1st): '1,,2' is not valid (an empty list item)"),
    ("cron(0 3 * * ?)", "cron expression 'cron(0 3 * * ?)': has 5 fields, expected 6"),
    ("0 3 * * *", "has 5 fields, expected 6: cron(minutes hours day-of-month month day-of-week year), e.g. "
                  "cron(0 3 * * ? *) (EventBridge's cron has a year field"),
    ("", "empty schedule expression"),
]


@pytest.mark.parametrize("text,message", BAD_CRONS, ids=[row[0] or "empty" for row in BAD_CRONS])
def test_an_invalid_cron_names_its_field_and_what_it_accepts(text, message):
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text)
    assert str(caught.value).startswith(message) or message in str(caught.value), str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


@pytest.mark.parametrize("text,message", [
    ("rate(30 seconds)", "a rate below one minute; the shortest is rate(1 minute)"),
    ("rate(0 minutes)", "a rate below one minute"),
    ("0 hours", "a rate below one minute"),
    ("rate(1 fortnight)", "unknown unit 'fortnight'"),
    ("rate(1.5 hours)", "'1.5' is not a whole number"),
    ("rate(-1 hours)", "'-1' is not a whole number"),
    ("rate(hourly)", "expected rate(N minute|minutes|hour|hours|day|days)"),
])
def test_a_bad_rate_says_why(text, message):
    with pytest.raises(ScheduleError, match=re.escape(message)):
        parse_schedule(text)


def test_timezones():
    assert check_timezone("Europe/Berlin") == "Europe/Berlin"
    assert check_timezone("UTC") == "UTC"
    for bad in ("Mars/Olympus", "Europe/Berlin ", "../etc/passwd", ""):
        with pytest.raises(ScheduleError, match="timezone"):
            check_timezone(bad)
    with pytest.raises(ScheduleError, match="unknown timezone 'Mars/Olympus'"):
        parse_schedule("cron(0 3 * * ? *)").next_fires(START, 1, "Mars/Olympus")


def test_schedule_decorator_expressions_are_metaflows():
    defaults = {"hourly": False, "daily": True, "weekly": False, "cron": None, "timezone": None}
    assert (HOURLY, DAILY, WEEKLY) == ("cron(0 * * * ? *)", "cron(0 0 * * ? *)", "cron(0 0 ? * SUN *)")
    assert schedule_from_decorator(defaults) == (DAILY, None)
    assert schedule_from_decorator({**defaults, "hourly": True}) == (HOURLY, None)
    assert schedule_from_decorator({**defaults, "weekly": True, "hourly": True}) == (WEEKLY, None)
    assert schedule_from_decorator({**defaults, "cron": "0 3 * * ? *", "weekly": True,
                                    "timezone": "Europe/Berlin"}) == ("cron(0 3 * * ? *)", "Europe/Berlin")
    assert schedule_from_decorator({**defaults, "daily": False}) == (None, None)
    with pytest.raises(ScheduleError, match=r"^flow.py:3: @schedule: cron field 'hours' \(2nd\)"):
        schedule_from_decorator({**defaults, "cron": "0 25 * * ? *"}, "flow.py:3: ")
    with pytest.raises(ScheduleError, match=r"^flow.py:3: @schedule: unknown timezone 'Nowhere'"):
        schedule_from_decorator({**defaults, "timezone": "Nowhere"}, "flow.py:3: ")


def test_rule_names_are_deterministic_within_eventbridges_limits():
    assert rule_name("HelloFlow", "schedule") == "HelloFlow-schedule"
    assert rule_name("proj.main.HelloFlow", "event", "data.ready") == "proj.main.HelloFlow-event-data.ready"
    assert rule_name("HelloFlow", "finish", "Upstream") == "HelloFlow-finish-Upstream"
    long = "p" * 80
    names = {rule_name(long, "schedule"), rule_name(long + "x", "schedule"), rule_name(long, "event", "a"),
             rule_name(long, "event", "b"), rule_name("F", "event", "a/b"), rule_name("F", "event", "a:b")}
    assert len(names) == 6  # cut or rewritten names end in a hash of the whole
    for name in names | {rule_name("F", "event", "x" * 200)}:
        assert len(name) <= NAME_LIMIT and re.fullmatch(r"[.\-_A-Za-z0-9]+", name), name
    assert rule_name(long, "schedule") == rule_name(long, "schedule")
    assert EVENT_BUS == "mfc"
    with pytest.raises(ValueError):
        rule_name("F", "cron")


def _flow(tmp_path, body):
    path = write_flow(tmp_path, "params_flow", body)
    module = import_flow_file(str(path))
    return path, flow_class(module, None, str(path))


def test_default_parameters_are_deploy_time_cli_text(tmp_path):
    _, cls = _flow(tmp_path, """
        import json
        from mfc import JSONType

        def stamp(ctx):
            return f"{ctx.flow_name}-{ctx.user_name}"

        class ParamsFlow(FlowSpec):
            alpha = Parameter("alpha", default=0.5)
            count = Parameter("count", default=3)
            verbose = Parameter("verbose", default=False)
            label = Parameter("label", default=stamp)
            config = Parameter("config", default={"k": [1, 2]}, type=JSONType)
            tags = Parameter("tags", default=["a", "b"], separator=",", type=str)
            nothing = Parameter("nothing", default=None)

            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    values = default_parameters(cls, "ana")
    assert values == {"alpha": "0.5", "count": "3", "verbose": "false", "label": "ParamsFlow-ana",
                      "config": json.dumps({"k": [1, 2]}), "tags": "a,b"}


def test_a_required_parameter_without_default_is_refused_with_its_line(tmp_path):
    path, cls = _flow(tmp_path, """
        class ParamsFlow(FlowSpec):
            alpha = Parameter("alpha", default=0.5)
            size = Parameter("size", required=True)

            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
    """)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if '"size"' in text)
    with pytest.raises(MfcError) as caught:
        default_parameters(cls, "ana", why="ParamsFlow is started on a schedule")
    assert str(caught.value).startswith(f"{path}:{line}: parameter 'size' is required and has no default, but "
                                        "ParamsFlow is started on a schedule: a scheduled run has no one to give it")


def test_loading_the_events_package_keeps_the_schedule_decorator():
    # the package of schedules and triggers is mfc.events, so `from mfc import schedule` stays the decorator
    code = ("import mfc.events.deploy, mfc.events.expressions\n"
            "from mfc import schedule\n"
            "assert callable(schedule) and schedule.__name__ == 'schedule', schedule\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
