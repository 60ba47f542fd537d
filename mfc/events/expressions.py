"""EventBridge schedule expressions: ``cron(m h dom mon dow year)`` and ``rate(N unit)``, parsed,
checked by EventBridge's rules and evaluated (pure functions, no AWS call).

Each cron field is checked here against what EventBridge accepts in it, so an error names the
field; the fire times come from croniter, which is given the fields translated to its dialect
(day-of-week 1-7 = SUN-SAT becomes 0-6, ``?`` becomes ``*``, ``6L`` becomes ``L5``, the year is
its explicit list). A cron with a timezone is evaluated on that zone's wall clock as EventBridge
Scheduler does: a fire time that does not exist (the hour skipped in spring) is skipped, one that
exists twice (the hour repeated in autumn) fires once, at its first occurrence. A rate fires every
N minutes, hours or days (24-hour days, whatever the zone) from its start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from mfc.exceptions import MfcError

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
CRON_FORM = "cron(minutes hours day-of-month month day-of-week year), e.g. cron(0 3 * * ? *)"
RATE_FORM = "rate(N minute|minutes|hour|hours|day|days), e.g. rate(1 hour) or rate(5 minutes)"
# croniter evaluates years up to 2099; EventBridge accepts up to 2199 (later years never fire here).
_LIBRARY_LAST_YEAR = 2099
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th", "6th")


class ScheduleError(MfcError):
    """A schedule expression or timezone EventBridge would refuse. Exit code 2."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names of low..high, in order
    extras: tuple[str, ...] = ()  # what else it takes: "?", "L", "W", "#"

    def accepts(self) -> str:
        values = f"{self.low}-{self.high}" + (f" or {self.names[0]}-{self.names[-1]}" if self.names else "")
        parts = [values, "ranges a-b", "lists a,b", "steps */n or a/n"]
        for extra in self.extras:
            parts.append({"L": "L" if self.name == "day-of-month" else "L, nL", "W": "nW",
                          "#": "n#k (the k-th such day)", "?": "?"}[extra])
        return ", ".join(parts)


FIELDS = (
    _Field("minutes", 0, 59),
    _Field("hours", 0, 23),
    _Field("day-of-month", 1, 31, extras=("?", "L", "W")),
    _Field("month", 1, 12, MONTHS),
    _Field("day-of-week", 1, 7, DAYS, extras=("?", "L", "#")),
    _Field("year", 1970, 2199),
)


def _field_error(index: int, text: str, why: str) -> ScheduleError:
    spec = FIELDS[index]
    return ScheduleError(f"cron field '{spec.name}' ({_ORDINALS[index]}): {text!r} {why}; it accepts {spec.accepts()}")


def _value(index: int, text: str, whole: str) -> int:
    """One value of field ``index`` (a number or, in month and day-of-week, a name) as a number."""
    spec = FIELDS[index]
    upper = text.upper()
    if spec.names and upper in spec.names:
        return spec.low + spec.names.index(upper)
    if not text.isdigit():
        raise _field_error(index, whole, f"is not valid ({text!r} is not a value)")
    number = int(text)
    if not spec.low <= number <= spec.high:
        raise _field_error(index, whole, f"is out of range ({number} is not in {spec.low}-{spec.high})")
    return number


_ITEM = re.compile(r"^(?P<base>\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>[0-9]+))?$")


def _check_item(index: int, item: str, whole: str) -> None:
    """Check one comma-separated item of field ``index`` (``whole``: the field, for the message)."""
    spec = FIELDS[index]
    upper = item.upper()
    if spec.name == "day-of-month":
        if upper == "L":
            return
        if upper.endswith("W") and upper[:-1].isdigit():
            _value(index, upper[:-1], whole)
            return
    if spec.name == "day-of-week":
        if upper == "L":
            return
        if upper.endswith("L") and len(upper) > 1:
            _value(index, upper[:-1], whole)
            return
        if "#" in upper:
            day, _, nth = upper.partition("#")
            _value(index, day, whole)
            if not (nth.isdigit() and 1 <= int(nth) <= 5):
                raise _field_error(index, whole, f"is not valid (the k of n#k is 1-5, not {nth!r})")
            return
    match = _ITEM.match(item)
    if not match:
        raise _field_error(index, whole, "is not valid")
    base, step = match.group("base"), match.group("step")
    if step is not None and not 1 <= int(step) <= spec.high - spec.low + 1:
        raise _field_error(index, whole, f"is not valid (step {step} is not in 1-{spec.high - spec.low + 1})")
    if base == "*":
        return
    first, dash, last = base.partition("-")
    start = _value(index, first, whole)
    if dash and _value(index, last, whole) < start and spec.name == "year":
        raise _field_error(index, whole, f"is not valid (the range {base} ends before it starts)")


def check_fields(fields: list[str]) -> None:
    """Raise ScheduleError naming the first field of a six-field cron EventBridge would refuse."""
    for index, text in enumerate(fields):
        spec = FIELDS[index]
        if text == "?":
            if "?" not in spec.extras:
                raise _field_error(index, text, "is not valid (? is only for day-of-month or day-of-week)")
            continue
        items = text.split(",")
        if any(not item for item in items):
            raise _field_error(index, text, "is not valid (an empty list item)")
        for item in items:
            if "?" in item:
                raise _field_error(index, text, "is not valid (? stands alone)")
            _check_item(index, item, text)
        if spec.name == "day-of-week" and "#" in text and len(items) > 1:
            raise _field_error(index, text, "is not valid (a day-of-week with # takes one expression, no list)")
    dom, dow = fields[2], fields[4]
    if (dom == "?") == (dow == "?"):
        index = 4 if dom != "?" else 2
        raise _field_error(index, fields[index], "is not valid: exactly one of day-of-month and day-of-week "
                                                 "must be ? (the other a value or *)")


def _translate_dow(item: str) -> str:
    """One EventBridge day-of-week item in croniter's terms (days 0-6 from SUN)."""
    upper = item.upper()
    if upper == "L":
        return "6"  # the last day of the week: Saturday
    if upper.endswith("L"):
        return f"L{_shift(upper[:-1])}"
    if "#" in upper:
        day, _, nth = upper.partition("#")
        return f"{_shift(day)}#{nth}"
    base, slash, step = upper.partition("/")
    if base == "*":
        return item
    first, dash, last = base.partition("-")
    text = _shift(first) + (f"-{_shift(last)}" if dash else "")
    if slash and not dash:
        text += "-6"  # a/n: from a to the end of the week
    return text + (f"/{step}" if slash else "")


def _shift(day: str) -> str:
    """A checked day of the week (1-7 or SUN-SAT) as croniter's number (0-6 from Sunday)."""
    return str(int(day) - 1) if day.isdigit() else str(DAYS.index(day))


def _years(text: str) -> list[int]:
    """The years a (checked) year field selects, as a sorted list."""
    years: set[int] = set()
    for item in text.split(","):
        base, _, step = item.partition("/")
        first, dash, last = base.partition("-")
        low = FIELDS[5].low if first == "*" else int(first)
        high = int(last) if dash else (FIELDS[5].high if first == "*" or step else low)
        years.update(range(low, high + 1, int(step) if step else 1))
    return sorted(years)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule. ``expression``: the canonical ``cron(...)``/``rate(...)`` text;
    ``fields``: a cron's six fields; ``interval``: a rate's period."""

    expression: str
    fields: tuple[str, ...] = ()
    interval: timedelta | None = None
    _croniter: str = field(default="", repr=False, compare=False)

    @property
    def kind(self) -> str:
        return "rate" if self.interval is not None else "cron"

    def next_fires(self, after: datetime, count: int, timezone: str | None = None,
                   start: datetime | None = None) -> list[datetime]:
        """The next ``count`` fire times strictly after ``after`` (aware datetimes in UTC; a naive
        ``after`` is taken as UTC), fewer when the schedule ends (a past year, a 30th of
        February). A cron with ``timezone`` is evaluated in that zone (see the module docstring).
        A rate fires every interval from ``start`` (when the rule or schedule began, or last
        fired; default ``after``), whatever the zone."""
        after = _utc(after)
        if self.interval is not None:
            anchor = _utc(start) if start is not None else after
            skipped = max(0, int((after - anchor) / self.interval))
            fires = [anchor + self.interval * (skipped + k) for k in range(0, count + 2)]
            return [f for f in fires if f > after][:count]
        if not self._croniter:
            return []  # only years after what croniter evaluates
        return self._cron_fires(after, count, check_timezone(timezone) if timezone else None)

    def _cron_fires(self, after: datetime, count: int, zone_name: str | None) -> list[datetime]:
        from zoneinfo import ZoneInfo

        from croniter import CroniterBadDateError, croniter

        zone = ZoneInfo(zone_name) if zone_name else dt_timezone.utc
        # Iterate on the zone's wall clock (naive), from an hour before ``after`` there, so a
        # repeated hour is walked once; each wall time becomes its first UTC instant.
        wall = after.astimezone(zone).replace(tzinfo=None) - timedelta(hours=1)
        it = croniter(self._croniter, wall, ret_type=datetime, day_or=False,
                      max_years_between_matches=_LIBRARY_LAST_YEAR - 1969)
        fires: list[datetime] = []
        for _ in range(count + 10_000):
            try:
                local = it.get_next()
            except CroniterBadDateError:
                break
            aware = local.replace(tzinfo=zone, fold=0)
            if aware.astimezone(dt_timezone.utc).astimezone(zone).replace(tzinfo=None) != local:
                continue  # a wall time the zone skips (spring forward): EventBridge Scheduler skips it
            moment = aware.astimezone(dt_timezone.utc)
            if moment > after:
                fires.append(moment)
                if len(fires) == count:
                    break
        return fires


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt_timezone.utc)
    return moment.astimezone(dt_timezone.utc)


def parse_schedule(text: str) -> Schedule:
    """``cron(0 3 * * ? *)``, ``rate(1 hour)`` or the bare ``0 3 * * ? *`` / ``1 hour`` as a
    :class:`Schedule`; ScheduleError (exit 2) naming what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError(f"empty schedule expression: give {CRON_FORM} or {RATE_FORM}")
    stripped = " ".join(text.split())
    match = re.fullmatch(r"(cron|rate)\s*\((.*)\)", stripped, flags=re.IGNORECASE)
    if match:
        kind, body = match.group(1).lower(), match.group(2).strip()
    else:
        body = stripped
        kind = "rate" if re.fullmatch(r"\S+ [A-Za-z]+", body) else "cron"
    return _parse_rate(body, text) if kind == "rate" else _parse_cron(body, text)


def _parse_rate(body: str, text: str) -> Schedule:
    parts = body.split()
    if len(parts) != 2:
        raise ScheduleError(f"rate expression {text!r}: expected {RATE_FORM}")
    value, unit = parts[0], parts[1].lower()
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular in ("second", "sec", "secs") or singular not in _UNITS and singular.startswith("sec"):
        raise ScheduleError(f"rate expression {text!r}: a rate below one minute; the shortest is rate(1 minute)")
    if singular not in _UNITS:
        raise ScheduleError(f"rate expression {text!r}: unknown unit {parts[1]!r}; expected {RATE_FORM}")
    if not value.isdigit():
        raise ScheduleError(f"rate expression {text!r}: {value!r} is not a whole number; expected {RATE_FORM}")
    number = int(value)
    if number < 1:
        raise ScheduleError(f"rate expression {text!r}: a rate below one minute; the shortest is rate(1 minute)")
    canonical = f"rate({number} {singular}{'' if number == 1 else 's'})"
    return Schedule(canonical, interval=_UNITS[singular] * number)


def _parse_cron(body: str, text: str) -> Schedule:
    fields = body.split()
    if len(fields) != 6:
        hint = " (EventBridge's cron has a year field and ? in day-of-month or day-of-week: 0 3 * * ? *)" \
            if len(fields) == 5 else ""
        raise ScheduleError(f"cron expression {text!r}: has {len(fields)} fields, expected 6: {CRON_FORM}{hint}")
    check_fields(fields)
    fields = [f.upper() for f in fields]
    years = [y for y in _years(fields[5]) if y <= _LIBRARY_LAST_YEAR]
    dow = "*" if fields[4] == "?" else ",".join(_translate_dow(item) for item in fields[4].split(","))
    dom = "*" if fields[2] == "?" else fields[2]
    # croniter's seven fields: minute hour dom month dow second year.
    library = " ".join([fields[0], fields[1], dom, fields[3], dow, "0",
                        ",".join(map(str, years)) if years else str(_LIBRARY_LAST_YEAR)])
    schedule = Schedule(f"cron({' '.join(fields)})", tuple(fields), None, library if years else "")
    if years:
        _check_library(schedule, text)
    return schedule


def _check_library(schedule: Schedule, text: str) -> None:
    from croniter import croniter

    if not croniter.is_valid(schedule._croniter):
        raise ScheduleError(f"cron expression {text!r} cannot be evaluated ({schedule._croniter!r} is refused by "
                            f"croniter); expected {CRON_FORM}")


def check_timezone(name: str) -> str:
    """``name`` when it is an IANA timezone (``Europe/Berlin``, ``UTC``); ScheduleError otherwise."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(name, str) or not name.strip():
        raise ScheduleError("empty timezone: give an IANA name like Europe/Berlin or America/New_York")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown timezone {name!r}: give an IANA name like Europe/Berlin, America/New_York "
                            "or UTC") from None
    return name


# Metaflow's @schedule (metaflow/plugins/aws/step_functions/schedule_decorator.py): cron wins, then
# weekly, hourly, daily (daily is the default).
HOURLY = "cron(0 * * * ? *)"
DAILY = "cron(0 0 * * ? *)"
WEEKLY = "cron(0 0 ? * SUN *)"


def schedule_from_decorator(attrs: dict[str, Any], where: str = "") -> tuple[str | None, str | None]:
    """(canonical expression, timezone) of ``@schedule``'s attributes; (None, tz) when none is set.
    ``where`` (``file:line: ``) prefixes an error."""
    try:
        if attrs.get("cron"):
            expression: str | None = parse_schedule(str(attrs["cron"])).expression
        elif attrs.get("weekly"):
            expression = WEEKLY
        elif attrs.get("hourly"):
            expression = HOURLY
        elif attrs.get("daily"):
            expression = DAILY
        else:
            expression = None
        zone = check_timezone(str(attrs["timezone"])) if attrs.get("timezone") else None
    except ScheduleError as exc:
        raise ScheduleError(f"{where}@schedule: {exc}") from None
    return expression, zone
