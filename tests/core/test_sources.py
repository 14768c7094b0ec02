"""Sources: submitted events are settled exactly once, released (not spilled) at shutdown."""

from __future__ import annotations

import asyncio

from ef_assertions import assert_conserved

import eventflow
from eventflow.sinks import MemorySink
from eventflow.sources import MemorySource, Outcome
from eventflow.testing import VirtualClock


async def test_memory_source_events_are_settled_by_outcome() -> None:
    clock = VirtualClock()
    dlq = MemorySink()

    @eventflow.handler(max_retries=1, retry_delays=(5.0,), dead_letter=dlq)
    async def h(event: dict[str, bool], context: eventflow.Context) -> None:
        if event["fail"]:
            raise RuntimeError("bad event")

    source = MemorySource(h)
    async with eventflow.App(clock=clock, sources=[source]) as app:
        await source.put({"fail": False})
        await source.put({"fail": True})
        async with clock.autojump():
            while len(source.submitted) < 2:
                await clock.settle()
            await app.drain()
        stats = app.stats()
    ok_id, bad_id = source.submitted
    assert source.settled == {ok_id: Outcome.SUCCEEDED, bad_id: Outcome.FAILED}
    assert dlq.messages[0].attributes["RequestID"] == bad_id
    assert_conserved(stats)


async def test_source_events_are_released_at_shutdown_not_spilled() -> None:
    gate = asyncio.Event()
    spill = MemorySink()

    @eventflow.handler
    async def stuck(event: int, context: eventflow.Context) -> None:
        await gate.wait()

    source = MemorySource(stuck)
    clock = VirtualClock()
    async with clock.autojump():
        async with eventflow.App(
            clock=clock, sources=[source], concurrency=1, spill=spill, shutdown_timeout=5.0
        ) as app:
            for i in range(3):
                await source.put(i)
            while len(source.submitted) < 3:
                await clock.settle()
    assert spill.messages == []
    assert set(source.settled.values()) == {Outcome.RELEASED}
    assert len(source.settled) == 3
    stats = app.stats()
    assert stats.undelivered == 3 and stats.failed == 0
    assert_conserved(stats)


async def test_reject_goes_straight_to_the_failure_path() -> None:
    dlq, on_failure = MemorySink(), MemorySink()
    ran: list[object] = []
    settled: list[tuple[str, Outcome]] = []

    @eventflow.handler(dead_letter=dlq, on_failure=on_failure)
    async def h(event: object, context: eventflow.Context) -> None:
        ran.append(event)

    async with eventflow.App() as app:
        accepted = await app.reject(
            h,
            "not json {",
            "The SQS message body is not valid JSON.",
            settle=lambda rid, outcome: settled.append((rid, outcome)),
        )
        await app.drain()
        stats = app.stats()
    assert ran == []
    assert settled == [(accepted.request_id, Outcome.FAILED)]
    assert dlq.messages[0].body == '"not json {"'
    assert dlq.messages[0].attributes["ErrorMessage"] == "The SQS message body is not valid JSON."
    record = on_failure.messages[0].json()
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert stats.failed == 1 and stats.retries == 0 and stats.attempts == 0
    assert_conserved(stats)
