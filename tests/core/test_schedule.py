"""Schedule: EventBridge's rate() and cron() calendars, and the source firing in virtual time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import eventflow
from eventflow.sources import Schedule, ScheduleStatistics
from eventflow.testing import VirtualClock


def nxt(expression: str, moment: datetime) -> datetime | None:
    return Schedule(expression, "h").next_after(moment)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # strictly after, minute resolution
        ("cron(0 12 * * ? *)", datetime(2024, 1, 1, 12, 0), datetime(2024, 1, 2, 12, 0)),
        ("cron(0 12 * * ? *)", datetime(2024, 1, 1, 11, 59, 59), datetime(2024, 1, 1, 12, 0)),
        ("cron(5,35 14 * * ? *)", datetime(2024, 1, 1, 14, 5), datetime(2024, 1, 1, 14, 35)),
        ("cron(0/15 * * * ? *)", datetime(2024, 1, 1, 0, 50), datetime(2024, 1, 1, 1, 0)),
        ("cron(*/20 8-9 * * ? *)", datetime(2024, 1, 1, 9, 40), datetime(2024, 1, 2, 8, 0)),
        # month ends: the 31st skips 30-day months, and the year rolls over
        ("cron(0 0 31 * ? *)", datetime(2024, 3, 31, 0, 0), datetime(2024, 5, 31, 0, 0)),
        ("cron(30 23 31 12 ? *)", datetime(2024, 12, 31, 23, 30), datetime(2025, 12, 31, 23, 30)),
        ("cron(0 0 1 * ? *)", datetime(2024, 1, 31, 23, 59), datetime(2024, 2, 1, 0, 0)),
        # leap days
        ("cron(0 0 29 2 ? *)", datetime(2024, 2, 29, 0, 0), datetime(2028, 2, 29, 0, 0)),
        ("cron(0 0 29 2 ? *)", datetime(2023, 3, 1), datetime(2024, 2, 29, 0, 0)),
        ("cron(0 0 29 2 ? 2025-2027)", datetime(2024, 3, 1), None),
        # L: the last day; L-n; LW: the last weekday
        ("cron(0 0 L * ? *)", datetime(2024, 2, 1), datetime(2024, 2, 29)),
        ("cron(0 0 L * ? *)", datetime(2023, 2, 1), datetime(2023, 2, 28)),
        ("cron(0 0 L-2 * ? *)", datetime(2024, 4, 1), datetime(2024, 4, 28)),
        ("cron(0 0 LW * ? *)", datetime(2024, 3, 1), datetime(2024, 3, 29)),  # 31st is a Sunday
        ("cron(0 10 ? * 6L *)", datetime(2024, 5, 1), datetime(2024, 5, 31, 10, 0)),  # last Fri
        ("cron(15 10 ? * 6L 2019-2022)", datetime(2019, 1, 1), datetime(2019, 1, 25, 10, 15)),
        ("cron(15 10 ? * 6L 2019-2022)", datetime(2022, 12, 30, 10, 15), None),
        ("cron(0 0 ? * L *)", datetime(2024, 6, 3), datetime(2024, 6, 8)),  # L alone: Saturday
        # W: the nearest weekday, never leaving the month
        ("cron(0 0 15W * ? *)", datetime(2024, 6, 1), datetime(2024, 6, 14)),  # Sat 15th -> Fri
        ("cron(0 0 16W * ? *)", datetime(2024, 6, 1), datetime(2024, 6, 17)),  # Sun 16th -> Mon
        ("cron(0 0 1W * ? *)", datetime(2024, 5, 31), datetime(2024, 6, 3)),  # Sat 1st -> Mon 3rd
        ("cron(0 0 31W * ? *)", datetime(2024, 3, 1), datetime(2024, 3, 29)),  # Sun 31st -> Fri
        ("cron(0 0 31W * ? *)", datetime(2024, 4, 1), datetime(2024, 5, 31)),  # no 31st in April
        # #: the n-th weekday; a month without a fifth Friday is skipped
        ("cron(0 9 ? * 3#2 *)", datetime(2024, 1, 1), datetime(2024, 1, 9, 9, 0)),
        ("cron(0 9 ? * FRI#5 *)", datetime(2024, 1, 1), datetime(2024, 3, 29, 9, 0)),
        ("cron(0 9 ? * 2#1 *)", datetime(2024, 7, 1, 9, 0), datetime(2024, 8, 5, 9, 0)),
        # names, ranges, wrap-around, years
        ("cron(0 8 ? * MON-FRI *)", datetime(2024, 6, 7, 8, 0), datetime(2024, 6, 10, 8, 0)),
        ("cron(0 8 ? * FRI-MON *)", datetime(2024, 6, 4), datetime(2024, 6, 7, 8, 0)),
        ("cron(0 0 1 JAN,jul ? *)", datetime(2024, 2, 1), datetime(2024, 7, 1)),
        ("cron(0 0 1 1 ? 2030/5)", datetime(2031, 1, 1), datetime(2035, 1, 1)),
        ("cron(0 0 1 1 ? 2199)", datetime(2199, 1, 1), None),
        # rates count from the Unix epoch
        ("rate(5 minutes)", datetime(2024, 1, 1, 0, 2, 30), datetime(2024, 1, 1, 0, 5)),
        ("rate(5 minutes)", datetime(2024, 1, 1, 0, 5), datetime(2024, 1, 1, 0, 10)),
        ("rate(1 minute)", datetime(2024, 1, 1, 0, 0, 0, 1), datetime(2024, 1, 1, 0, 1)),
        ("rate(1 hour)", datetime(2024, 1, 1, 0, 30), datetime(2024, 1, 1, 1, 0)),
        ("rate(1 day)", datetime(2024, 2, 28, 12), datetime(2024, 2, 29)),
        ("rate(7 days)", datetime(1970, 1, 1), datetime(1970, 1, 8)),
    ],
)
def test_next_after(expression: str, after: datetime, expected: datetime | None) -> None:
    assert nxt(expression, after) == expected


def test_a_rate_counts_from_start_when_given() -> None:
    start = datetime(2024, 1, 1, 12, 0, 30, tzinfo=UTC)
    schedule = Schedule("rate(5 minutes)", "h", start=start)
    assert schedule.next_after(start) == start + timedelta(minutes=5)
    assert schedule.next_after(start - timedelta(days=1)) == start + timedelta(minutes=5)
    assert schedule.next_after(start + timedelta(minutes=7)) == start + timedelta(minutes=10)


def test_aware_in_aware_out() -> None:
    schedule = Schedule("cron(0 12 * * ? *)", "h")
    paris = datetime(2024, 1, 1, 12, 30, tzinfo=UTC).astimezone()
    found = schedule.next_after(paris)
    assert found == datetime(2024, 1, 2, 12, 0, tzinfo=UTC)
    assert found is not None and found.tzinfo == UTC
    assert schedule.next_after(datetime(2024, 1, 1, 11, 0)) == datetime(2024, 1, 1, 12, 0)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(1 minutes)", r"write rate\(1 minute\)"),
        ("rate(5 minute)", r"write rate\(5 minutes\)"),
        ("rate(0 minutes)", "positive whole number"),
        ("rate(5 weeks)", "not minute"),
        ("rate(five minutes)", r"write rate\(value unit\)"),
        ("every 5 minutes", r"rate\(value unit\) or cron"),
        ("cron(0 12 * * ?)", "six fields"),
        ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(60 12 * * ? *)", "minutes has 60, outside 0-59"),
        ("cron(0 24 * * ? *)", "hours has 24"),
        ("cron(0 0 32 * ? *)", "day-of-month has 32"),
        ("cron(0 0 1 13 ? *)", "month has 13"),
        ("cron(0 0 1 FOO ? *)", "month has 'FOO', which is not a number or a name"),
        ("cron(0 0 ? * 8 *)", "day-of-week has 8"),
        ("cron(0 0 1 1 ? 1969)", "year has 1969, outside 1970-2199"),
        ("cron(0/0 * * * ? *)", "a step is a positive number"),
        ("cron(L 0 * * ? *)", "minutes has 'L'"),
        ("cron(0 0 1,L * ? *)", "L and W stand alone"),
        ("cron(0 0 ? * 3#6 *)", "1 to 5"),
        ("cron(0 0 ? * 3#1,4#2 *)", "stands alone"),
        ("cron(0 0 1,,2 * ? *)", "empty list item"),
    ],
)
def test_invalid_expressions(expression: str, message: str) -> None:
    with pytest.raises(eventflow.ConfigurationError, match=message) as raised:
        Schedule(expression, "h")
    assert str(raised.value).startswith(f"Invalid schedule expression {expression!r}: ")


def test_invalid_name_and_start() -> None:
    with pytest.raises(eventflow.ConfigurationError, match="rule name"):
        Schedule("rate(1 minute)", "h", name="bad name")
    with pytest.raises(eventflow.ConfigurationError, match="timezone-aware"):
        Schedule("rate(1 minute)", "h", start=datetime(2024, 1, 1))


# -- the source, in virtual time ----------------------------------------------------------


async def test_rate_fires_on_time_with_the_scheduled_event() -> None:
    clock = VirtualClock()
    seen: list[tuple[float, dict[str, Any]]] = []

    @eventflow.handler
    async def tick(event: dict[str, Any], context: eventflow.Context) -> None:
        seen.append((clock.now(), event))

    start = datetime(2024, 2, 28, 23, 58, tzinfo=UTC)
    schedule = Schedule("rate(1 minute)", tick, name="every-minute", start=start)
    async with eventflow.App(
        clock=clock, sources=[schedule], region="eu-west-1", account_id="123456789012"
    ) as app:
        await clock.advance(59)
        assert seen == []
        await clock.advance(1)  # 23:59:00
        assert [t for t, _ in seen] == [60.0]
        await clock.advance(120)  # 00:00 and 00:01 on the leap day
        assert [t for t, _ in seen] == [60.0, 120.0, 180.0]
        await app.drain()
    assert schedule.statistics().fired == 3
    event = seen[1][1]
    arn = "arn:aws:events:eu-west-1:123456789012:rule/every-minute"
    assert event == {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{arn}@2024-02-29T00:00:00Z")),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2024-02-29T00:00:00Z",
        "region": "eu-west-1",
        "resources": [arn],
        "detail": {},
    }
    assert len({e["id"] for _, e in seen}) == 3


async def test_cron_fires_at_the_calendar_time_and_ids_agree_across_processes() -> None:
    clock = VirtualClock()
    seen: list[dict[str, Any]] = []

    @eventflow.handler
    async def report(event: dict[str, Any], context: eventflow.Context) -> None:
        seen.append(event)

    start = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)
    # two "processes" running the same rule submit the same id for the same fire
    schedules = [
        Schedule("cron(0 0 L * ? *)", report, name="month-end", start=start) for _ in range(2)
    ]
    async with eventflow.App(clock=clock, sources=schedules) as app:
        until_april_30 = timedelta(days=29, hours=12).total_seconds()
        await clock.advance(until_april_30 - 1)
        assert seen == []
        await clock.advance(1)  # 2024-04-30T00:00, the last day of April
        assert [e["time"] for e in seen] == ["2024-04-30T00:00:00Z"] * 2
        await clock.advance(timedelta(days=31).total_seconds())
        await app.drain()
    assert [e["time"] for e in seen[2:]] == ["2024-05-31T00:00:00Z"] * 2
    assert seen[0]["id"] == seen[1]["id"] != seen[2]["id"] == seen[3]["id"]


async def test_input_replaces_the_scheduled_event() -> None:
    clock = VirtualClock()
    seen: list[Any] = []

    @eventflow.handler
    async def job(event: Any, context: eventflow.Context) -> None:
        seen.append(event)

    start = datetime(2024, 1, 1, tzinfo=UTC)
    schedule = Schedule("rate(1 hour)", job, input={"task": "cleanup"}, start=start)
    async with eventflow.App(clock=clock, sources=[schedule]) as app:
        await clock.advance(3 * 3600)
        await app.drain()
    assert seen == [{"task": "cleanup"}] * 3


async def test_a_schedule_with_no_more_fires_ends() -> None:
    clock = VirtualClock()
    seen: list[Any] = []

    @eventflow.handler
    async def once(event: Any, context: eventflow.Context) -> None:
        seen.append(event["time"])

    start = datetime(2030, 12, 31, 23, 0, tzinfo=UTC)
    schedule = Schedule("cron(0 0 1 1 ? 2031)", once, start=start)
    async with eventflow.App(clock=clock, sources=[schedule]) as app:
        await clock.advance(3600)
        await clock.advance(10 * 365 * 86400)
        await app.drain()
    assert seen == ["2031-01-01T00:00:00Z"]
    assert clock.pending == 0


async def test_without_start_the_schedule_follows_the_app_clock_from_now() -> None:
    clock = VirtualClock()
    seen: list[str] = []

    @eventflow.handler
    async def tick(event: dict[str, Any], context: eventflow.Context) -> None:
        seen.append(event["time"])

    async with eventflow.App(clock=clock, sources=[Schedule("rate(1 minute)", tick)]) as app:
        await clock.advance(60)
        assert len(seen) == 1
        await clock.advance(60)
        await app.drain()
    assert len(seen) == 2
    first, second = (datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ") for t in seen)
    assert second - first == timedelta(minutes=1) and first.second == 0


async def test_fires_missed_while_stalled_are_counted_not_made_up() -> None:
    clock = VirtualClock()
    release = asyncio.Event()
    seen: list[str] = []

    @eventflow.handler
    async def slow(event: dict[str, Any], context: eventflow.Context) -> None:
        seen.append(event["time"])
        await release.wait()

    start = datetime(2024, 1, 1, tzinfo=UTC)
    schedule = Schedule("rate(1 minute)", slow, start=start)
    # one worker and room for one queued event: the third fire waits to be accepted
    async with eventflow.App(clock=clock, sources=[schedule], concurrency=1, queue_size=1) as app:
        await clock.advance(60)  # 00:01 runs and blocks
        await clock.advance(60)  # 00:02 is queued
        await clock.advance(60)  # 00:03 waits for room in the queue
        await clock.advance(300)  # 00:04 .. 00:08 pass while it waits
        release.set()
        await clock.settle()
        await clock.advance(60)  # 00:09
        await app.drain()
    assert seen == [
        "2024-01-01T00:01:00Z",
        "2024-01-01T00:02:00Z",
        "2024-01-01T00:03:00Z",
        "2024-01-01T00:09:00Z",
    ]
    assert schedule.statistics() == ScheduleStatistics(fired=4, missed=5)
