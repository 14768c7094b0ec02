"""Scheduled events: EventBridge's ``rate()`` and ``cron()`` expressions as a source.

A :class:`Schedule` computes its fire times in UTC, sleeps on the app's clock until the
next one, and submits EventBridge's "Scheduled Event" for it. The event's ``id`` is a
UUID derived from the rule ARN and the scheduled minute, so every process that runs the
same schedule submits the same ``id`` for the same fire, and an idempotency store dedups
them.

Cron fields, as EventBridge has them (all six required, UTC)::

    Minutes  Hours  Day-of-month  Month         Day-of-week       Year
    0-59     0-23   1-31 ? L W    1-12/JAN-DEC  1-7/SUN-SAT ? L #  1970-2199

with ``,`` lists, ``-`` ranges, ``/`` steps and ``*``; exactly one of day-of-month and
day-of-week is ``?``.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import structlog
from anyio.abc import TaskStatus

from ._clock import Clock, LoopClock, sleep_until
from ._errors import AppClosed, ConfigurationError

if TYPE_CHECKING:
    from ._app import App
    from ._handler import Handler

__all__ = ("Schedule", "ScheduleStatistics")

_log = structlog.get_logger("eventflow.schedule")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_RATE = re.compile(r"rate\(\s*(\d+)\s+([a-z]+)\s*\)")
_UNITS: Final = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_DAYS: Final = {
    name: number for number, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)
}
_RULE_NAME = re.compile(r"[.\-_A-Za-z0-9]{1,64}")
_LATE: Final = timedelta(milliseconds=1)  # a wake-up this close to the fire time is on time


class _Invalid(Exception):
    pass


def _number(text: str, low: int, high: int, names: dict[str, int] | None, what: str) -> int:
    upper = text.upper()
    if names is not None and upper in names:
        return names[upper]
    if not text.isdigit():
        known = f" or a name ({', '.join(names)})" if names else ""
        raise _Invalid(f"{what} has {text!r}, which is not a number{known}")
    value = int(text)
    if not low <= value <= high:
        raise _Invalid(f"{what} has {value}, outside {low}-{high}")
    return value


def _values(
    field: str, low: int, high: int, names: dict[str, int] | None, what: str
) -> frozenset[int]:
    """The values of a plain field: lists, ranges (wrapping around), steps and ``*``."""
    values: set[int] = set()
    for item in field.split(","):
        if not item:
            raise _Invalid(f"{what} has an empty list item in {field!r}")
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise _Invalid(f"{what} has step {step_text!r}; a step is a positive number")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            start, _, end = base.partition("-")
            first = _number(start, low, high, names, what)
            last = _number(end, low, high, names, what)
        else:
            first = _number(base, low, high, names, what)
            last = high if step_text else first
        span = (
            list(range(first, last + 1))
            if first <= last
            else [
                *range(first, high + 1),
                *range(low, last + 1),
            ]
        )
        values.update(span[::step])
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class _DayOfMonth:
    days: frozenset[int] = frozenset()
    last: int | None = None  # L or L-n: the last day minus n
    last_weekday: bool = False  # LW
    nearest_weekday: int | None = None  # nW

    def matches(self, year: int, month: int) -> set[int]:
        length = calendar.monthrange(year, month)[1]
        if self.last is not None:
            day = length - self.last
            return {day} if day >= 1 else set()
        if self.last_weekday:
            day = length
            while calendar.weekday(year, month, day) >= 5:
                day -= 1
            return {day}
        if self.nearest_weekday is not None:
            day = self.nearest_weekday
            if day > length:
                return set()
            weekday = calendar.weekday(year, month, day)
            if weekday == 5:  # Saturday: Friday, or Monday when Friday is last month
                day = day - 1 if day > 1 else day + 2
            elif weekday == 6:  # Sunday: Monday, or Friday when Monday is next month
                day = day + 1 if day < length else day - 2
            return {day}
        return {d for d in self.days if d <= length}


def _aws_weekday(year: int, month: int, day: int) -> int:
    return (calendar.weekday(year, month, day) + 1) % 7 + 1  # 1 = Sunday ... 7 = Saturday


@dataclass(frozen=True, slots=True)
class _DayOfWeek:
    days: frozenset[int] = frozenset()
    last_of: int | None = None  # nL: the last such weekday of the month
    nth: tuple[int, int] | None = None  # n#k: the k-th such weekday

    def matches(self, year: int, month: int) -> set[int]:
        length = calendar.monthrange(year, month)[1]
        if self.last_of is not None:
            day = length
            while _aws_weekday(year, month, day) != self.last_of:
                day -= 1
            return {day}
        if self.nth is not None:
            weekday, nth = self.nth
            first = next(d for d in range(1, 8) if _aws_weekday(year, month, d) == weekday)
            day = first + 7 * (nth - 1)
            return {day} if day <= length else set()
        return {d for d in range(1, length + 1) if _aws_weekday(year, month, d) in self.days}


def _day_of_month(field: str) -> _DayOfMonth:
    what = "day-of-month"
    if field == "L":
        return _DayOfMonth(last=0)
    if field == "LW":
        return _DayOfMonth(last_weekday=True)
    if field.startswith("L-"):
        offset = field[2:]
        if not offset.isdigit() or not 0 <= int(offset) <= 30:
            raise _Invalid(f"{what} has {field!r}; write L-n with n from 0 to 30")
        return _DayOfMonth(last=int(offset))
    if field.endswith("W"):
        day = field[:-1]
        if not day.isdigit() or not 1 <= int(day) <= 31:
            raise _Invalid(f"{what} has {field!r}; W follows one day, as in 15W")
        return _DayOfMonth(nearest_weekday=int(day))
    if "L" in field or "W" in field:
        raise _Invalid(f"{what} has {field!r}; L and W stand alone (L, L-3, LW, 15W), not in lists")
    return _DayOfMonth(days=_values(field, 1, 31, None, what))


def _day_of_week(field: str) -> _DayOfWeek:
    what = "day-of-week"
    if "#" in field:
        day, _, nth = field.partition("#")
        if "," in field or "-" in field or "/" in field:
            raise _Invalid(f"{what} has {field!r}; a # expression stands alone, as in 3#2")
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise _Invalid(f"{what} has {field!r}; after # comes 1 to 5 (the n-th such day)")
        return _DayOfWeek(nth=(_number(day, 1, 7, _DAYS, what), int(nth)))
    if field == "L":
        return _DayOfWeek(days=frozenset({7}))  # L alone is the last day of the week
    if field.endswith("L"):
        if "," in field or "-" in field or "/" in field:
            raise _Invalid(f"{what} has {field!r}; nL stands alone, as in 6L (the last Friday)")
        return _DayOfWeek(last_of=_number(field[:-1], 1, 7, _DAYS, what))
    return _DayOfWeek(days=_values(field, 1, 7, _DAYS, what))


@dataclass(frozen=True, slots=True)
class _Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_of_month: _DayOfMonth | None  # None when "?"
    months: tuple[int, ...]
    day_of_week: _DayOfWeek | None  # None when "?"
    years: tuple[int, ...]

    def days(self, year: int, month: int) -> list[int]:
        if self.day_of_month is not None:
            return sorted(self.day_of_month.matches(year, month))
        assert self.day_of_week is not None
        return sorted(self.day_of_week.matches(year, month))

    def next_after(self, moment: datetime) -> datetime | None:
        start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for year in self.years:
            if year < start.year:
                continue
            same_year = year == start.year
            for month in self.months:
                if same_year and month < start.month:
                    continue
                same_month = same_year and month == start.month
                for day in self.days(year, month):
                    if same_month and day < start.day:
                        continue
                    same_day = same_month and day == start.day
                    for hour in self.hours:
                        if same_day and hour < start.hour:
                            continue
                        same_hour = same_day and hour == start.hour
                        for minute in self.minutes:
                            if same_hour and minute < start.minute:
                                continue
                            return datetime(year, month, day, hour, minute, tzinfo=UTC)
        return None


def _parse_cron(body: str) -> _Cron:
    fields = body.split()
    if len(fields) != 6:
        raise _Invalid(
            f"cron() takes six fields (minutes hours day-of-month month day-of-week year), "
            f"got {len(fields)}"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise _Invalid(
            "exactly one of day-of-month and day-of-week must be '?': use '?' in the one "
            "you do not restrict, as in cron(0 12 * * ? *)"
        )
    return _Cron(
        minutes=tuple(sorted(_values(minute, 0, 59, None, "minutes"))),
        hours=tuple(sorted(_values(hour, 0, 23, None, "hours"))),
        day_of_month=None if dom == "?" else _day_of_month(dom.upper()),
        months=tuple(sorted(_values(month, 1, 12, _MONTHS, "month"))),
        day_of_week=None if dow == "?" else _day_of_week(dow.upper()),
        years=tuple(sorted(_values(year, 1970, 2199, None, "year"))),
    )


@dataclass(frozen=True, slots=True)
class ScheduleStatistics:
    """Counters of one :class:`Schedule`.

    Attributes:
        fired: Events submitted, one per fire.
        missed: Fires skipped because the process was not running (or was stalled) at
            their time; EventBridge does not make up missed fires either.
    """

    fired: int
    missed: int


class Schedule:
    """A scheduled rule: submits EventBridge's Scheduled Event at every fire time.

    Args:
        expression: ``rate(N unit)`` (unit ``minute``/``hour``/``day``, singular exactly
            when N is 1) or ``cron(minutes hours day-of-month month day-of-week year)``,
            in UTC, as EventBridge writes them.
        handler: The handler (or its name) invoked, asynchronously, at every fire.
        name: The rule's name, used in ``resources`` (``...:rule/<name>``) and in the
            event ``id``; default: the handler's name and a digest of the expression.
        input: When given, the handler gets this instead of the Scheduled Event, as with
            a target's constant JSON input.
        start: The UTC time at which the schedule starts, when the app starts it (default:
            the current time), and the origin its rate counts from. From then on its time
            follows the app's clock, so on a :class:`eventflow.testing.VirtualClock` it
            moves only with virtual time.

    Rates count from ``start`` when it is given, as EventBridge counts from the rule's
    creation; without it they count from the Unix epoch (``rate(5 minutes)`` fires at
    :00, :05, ...), so that every process running the same schedule fires at the same
    instants and submits the same event ``id``.

    Raises:
        ConfigurationError: The expression is invalid (the message names the field and
            the problem), or the name is not a valid rule name.
    """

    def __init__(
        self,
        expression: str,
        handler: str | Handler,
        *,
        name: str | None = None,
        input: Any = None,
        start: datetime | None = None,
    ) -> None:
        if not isinstance(expression, str):
            raise ConfigurationError(
                f"A schedule expression is a string such as 'rate(5 minutes)' or "
                f"'cron(0 12 * * ? *)', got {expression!r}."
            )
        self.expression = expression
        self._period: timedelta | None = None
        self._cron: _Cron | None = None
        try:
            self._parse(expression.strip())
        except _Invalid as exc:
            raise ConfigurationError(
                f"Invalid schedule expression {expression!r}: {exc}."
            ) from None
        handler_name = handler if isinstance(handler, str) else handler.name
        if name is None:
            digest = hashlib.sha256(expression.encode()).hexdigest()[:8]
            name = f"{handler_name}-{digest}"[-64:]
        if not isinstance(name, str) or not _RULE_NAME.fullmatch(name):
            raise ConfigurationError(
                f"A rule name has 1 to 64 letters, digits, '.', '-' or '_', got {name!r}."
            )
        if start is not None and (not isinstance(start, datetime) or start.tzinfo is None):
            raise ConfigurationError(
                f"start must be a timezone-aware datetime (UTC), got {start!r}; "
                "write datetime(..., tzinfo=datetime.UTC)."
            )
        self.handler = handler
        self.name = name
        self.input = input
        self._start = start
        self._fired = 0
        self._missed = 0

    def _parse(self, expression: str) -> None:
        if expression.startswith("rate(") and expression.endswith(")"):
            found = _RATE.fullmatch(expression)
            if found is None:
                raise _Invalid("write rate(value unit), as in rate(5 minutes)")
            value, unit = int(found.group(1)), found.group(2)
            singular = unit.rstrip("s") if unit.endswith("s") else unit
            if singular not in _UNITS or unit not in (singular, singular + "s"):
                raise _Invalid(f"the unit {unit!r} is not minute(s), hour(s) or day(s)")
            if value < 1:
                raise _Invalid("the value must be a positive whole number")
            if (value == 1) != (unit == singular):
                wanted = singular if value == 1 else singular + "s"
                raise _Invalid(f"write rate({value} {wanted}): the unit is singular only for 1")
            self._period = timedelta(seconds=value * _UNITS[singular])
        elif expression.startswith("cron(") and expression.endswith(")"):
            self._cron = _parse_cron(expression[5:-1])
        else:
            raise _Invalid("it must be rate(value unit) or cron(six fields)")

    def __repr__(self) -> str:
        return f"Schedule({self.expression!r}, name={self.name!r})"

    # -- the calendar ---------------------------------------------------------------

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment``, or None when no more come.

        A naive ``moment`` is taken as UTC and the answer is naive too; an aware one is
        answered in UTC.
        """
        naive = moment.tzinfo is None
        utc = moment.replace(tzinfo=UTC) if naive else moment.astimezone(UTC)
        if self._period is not None:
            period = self._period
            origin = _EPOCH if self._start is None else self._start.astimezone(UTC)
            count = max((utc - origin) // period + 1, 1)
            found: datetime | None = origin + count * period
        else:
            assert self._cron is not None
            found = self._cron.next_after(utc)
        if found is not None and naive:
            return found.replace(tzinfo=None)
        return found

    # -- the source -----------------------------------------------------------------

    def statistics(self) -> ScheduleStatistics:
        """A snapshot of the schedule's counters."""
        return ScheduleStatistics(fired=self._fired, missed=self._missed)

    def event(self, app: App, when: datetime) -> dict[str, Any]:
        """The Scheduled Event EventBridge sends for a fire at ``when`` (UTC)."""
        time = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        arn = f"arn:aws:events:{app.region}:{app.account_id}:rule/{self.name}"
        return {
            "version": "0",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{arn}@{time}")),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": app.account_id,
            "time": time,
            "region": app.region,
            "resources": [arn],
            "detail": {},
        }

    async def run(self, app: App, *, task_status: TaskStatus[None]) -> None:
        """Submit an event at every fire time until cancelled or the schedule ends."""
        wall = _WallClock(app.clock, self._start)
        task_status.started()
        due = self.next_after(wall.now())
        while due is not None:
            now = wall.now()
            if now + _LATE < due:
                await sleep_until(app.clock, app.clock.now() + (due - now).total_seconds())
                continue
            payload = self.event(app, due) if self.input is None else self.input
            try:
                accepted = await app.submit(self.handler, payload)
            except AppClosed:
                return
            self._fired += 1
            _log.debug(
                "schedule.fired",
                rule=self.name,
                handler=self.handler if isinstance(self.handler, str) else self.handler.name,
                scheduled_time=due.isoformat(),
                request_id=accepted.request_id,
            )
            following = self.next_after(due)
            now = wall.now()
            if following is not None and following + _LATE < now:
                resumed = self.next_after(now)
                skipped = self._count_between(following, resumed)
                self._missed += skipped
                _log.warning(
                    "schedule.fires_missed",
                    rule=self.name,
                    missed=skipped,
                    detail="the process was not running or was stalled at their time; "
                    "they are not made up, as EventBridge does not make them up",
                )
                following = resumed
            due = following

    def _count_between(self, first: datetime, stop: datetime | None) -> int:
        count, moment = 0, first
        while moment is not None and (stop is None or moment < stop) and count < 1_000_000:
            count += 1
            moment = self.next_after(moment)  # type: ignore[assignment]
        return count


class _WallClock:
    """UTC time that moves with the app's clock (virtual in tests)."""

    __slots__ = ("_clock", "_origin", "_real", "_started")

    def __init__(self, clock: Clock, start: datetime | None) -> None:
        self._clock = clock
        # the real clock is re-read every time, so the schedule follows the system's time
        self._real = start is None and isinstance(clock, LoopClock)
        self._origin = clock.now()
        self._started = (start or datetime.now(UTC)).astimezone(UTC)

    def now(self) -> datetime:
        if self._real:
            return datetime.now(UTC)
        return self._started + timedelta(seconds=self._clock.now() - self._origin)
