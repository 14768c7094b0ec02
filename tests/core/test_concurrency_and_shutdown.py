"""Worker pool limits, backpressure, sinks that fail, and graceful shutdown."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from ef_assertions import assert_conserved

import eventflow
from eventflow.sinks import JsonlSink, MemorySink, Message
from eventflow.testing import VirtualClock


async def test_per_handler_concurrency_one_never_overlaps_under_global_100() -> None:
    running = 0
    overlap = 0
    others_peak = 0
    others_running = 0

    @eventflow.handler(concurrency=1)
    async def serial(event: int, context: eventflow.Context) -> None:
        nonlocal running, overlap
        running += 1
        overlap = max(overlap, running)
        for _ in range(3):
            await asyncio.sleep(0)
        running -= 1

    @eventflow.handler
    async def parallel(event: int, context: eventflow.Context) -> None:
        nonlocal others_running, others_peak
        others_running += 1
        others_peak = max(others_peak, others_running)
        for _ in range(3):
            await asyncio.sleep(0)
        others_running -= 1

    async with eventflow.App(concurrency=100) as app:
        for i in range(300):
            await app.invoke(serial, i)
            await app.invoke(parallel, i)
        # a synchronous call of the capped handler waits for its slot too
        result = await app.invoke(serial, -1, invocation_type="RequestResponse")
        await app.drain()
        stats = app.stats()
    assert result.function_error is None
    assert overlap == 1
    assert others_peak > 1  # the cap is per handler, not global
    assert stats.succeeded == 600
    assert_conserved(stats)


async def test_flood_of_100x_queue_size_stays_bounded() -> None:
    gate = asyncio.Event()
    queue_size, concurrency = 50, 5

    @eventflow.handler
    async def slow(event: int, context: eventflow.Context) -> None:
        await gate.wait()

    async with eventflow.App(queue_size=queue_size, concurrency=concurrency) as app:
        # invoke_nowait refuses beyond the bound instead of growing
        accepted = refused = 0
        for i in range(100 * queue_size):
            try:
                app.invoke_nowait(slow, i)
                accepted += 1
            except eventflow.QueueFull:
                refused += 1
        assert accepted == queue_size and refused == 99 * queue_size
        await asyncio.sleep(0)
        # producers that await wait for room; nothing piles up beyond the bound
        peak = 0

        async def producer(n: int) -> None:
            for i in range(n):
                await app.invoke(slow, i)

        async def watcher() -> None:
            nonlocal peak
            while not gate.is_set():
                s = app.stats()
                peak = max(peak, s.queued)
                assert s.in_flight <= concurrency
                await asyncio.sleep(0)

        async with asyncio.TaskGroup() as tg:
            for _ in range(20):
                tg.create_task(producer(100))
            watch = tg.create_task(watcher())
            for _ in range(50):
                await asyncio.sleep(0)
            stats = app.stats()
            assert stats.queued == queue_size
            assert app.queue_statistics().waiting_producers == 20
            gate.set()
        await watch
        await app.drain()
        stats = app.stats()
    assert peak <= queue_size
    assert stats.received == stats.succeeded == queue_size + 2000
    assert_conserved(stats)


async def test_shutdown_finishes_work_in_flight_and_spills_the_rest() -> None:
    # Given work of every kind when shutdown begins
    clock = VirtualClock()
    spill = MemorySink()
    stuck_gate = asyncio.Event()
    finished: list[int] = []

    @eventflow.handler
    async def quick(event: int, context: eventflow.Context) -> None:
        await clock.sleep(5)
        finished.append(event)

    @eventflow.handler
    async def stuck(event: int, context: eventflow.Context) -> None:
        await stuck_gate.wait()

    @eventflow.handler(retry_delays=(60.0,))
    async def failing(event: int, context: eventflow.Context) -> None:
        raise RuntimeError("retry me later")

    app = eventflow.App(clock=clock, concurrency=4, shutdown_timeout=30.0, spill=spill)
    async with clock.autojump():
        async with app:
            await app.invoke(quick, 1)
            await app.invoke(quick, 2)
            stuck_id = (await app.invoke(stuck, 3)).request_id
            failing_id = (await app.invoke(failing, 4)).request_id
            await clock.advance(0)
            queued = [(await app.invoke(stuck, i)).request_id for i in range(10, 13)]
        # When the app stops
    stats = app.stats()
    # Then running work finished within the timeout, and everything else was spilled
    assert sorted(finished) == [1, 2]
    assert stats.succeeded == 2
    assert stats.failed == 0  # the cancelled attempt of `stuck` is not a failure
    assert stats.undelivered == 5
    spilled = {m.attributes["RequestID"]: m for m in spill.messages}
    assert set(spilled) == {stuck_id, failing_id, *queued}
    assert spilled[stuck_id].attributes == {
        "RequestID": stuck_id,
        "Handler": "stuck",
        "Attempt": "0",
    }
    assert spilled[failing_id].attributes["Attempt"] == "1"
    assert json.loads(spilled[failing_id].body) == 4
    assert stats.errors == 1  # only the real failure of `failing`
    assert_conserved(stats)
    with pytest.raises(eventflow.AppClosed):
        await app.invoke(quick, 5)


async def test_shutdown_without_spill_logs_payloads() -> None:
    from structlog.testing import capture_logs

    gate = asyncio.Event()

    @eventflow.handler
    async def stuck(event: dict[str, int], context: eventflow.Context) -> None:
        await gate.wait()

    clock = VirtualClock()
    with capture_logs() as logs:
        async with clock.autojump():
            async with eventflow.App(clock=clock, concurrency=1, shutdown_timeout=1.0) as app:
                await app.invoke(stuck, {"n": 1})
                await app.invoke(stuck, {"n": 2})
    lost = [e for e in logs if e["event"] == "event.undelivered"]
    assert sorted(e["payload"]["n"] for e in lost) == [1, 2]
    assert all(e["log_level"] == "error" for e in lost)
    assert app.stats().undelivered == 2


async def test_exception_in_body_still_spills_everything() -> None:
    spill = MemorySink()
    gate = asyncio.Event()

    @eventflow.handler
    async def stuck(event: int, context: eventflow.Context) -> None:
        await gate.wait()

    app = eventflow.App(concurrency=2, spill=spill)
    with pytest.raises(ZeroDivisionError):
        async with app:
            for i in range(5):
                await app.invoke(stuck, i)
            await asyncio.sleep(0)
            _ = 1 / 0
    assert len(spill.messages) == 5
    assert app.stats().undelivered == 5


class FlakySink:
    """Fails the first `failures` sends."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("sink unavailable")
        self.messages.append(message)


async def test_failing_sink_is_retried_then_delivered() -> None:
    clock = VirtualClock()
    dlq = FlakySink(failures=3)

    @eventflow.handler(max_retries=0, dead_letter=dlq)
    async def h(event: object, context: eventflow.Context) -> None:
        raise RuntimeError("x")

    async with eventflow.App(clock=clock) as app:
        await app.invoke(h, {"a": 1})
        async with clock.autojump():
            await app.drain()
        stats = app.stats()
    assert dlq.calls == 4 and len(dlq.messages) == 1
    assert stats.dead_letter_errors == 0 and stats.dead_lettered == 1
    assert clock.now() < 10.0


async def test_sink_that_keeps_failing_is_counted_and_logged_with_payload() -> None:
    from structlog.testing import capture_logs

    clock = VirtualClock()
    dlq = FlakySink(failures=10**9)
    dest = FlakySink(failures=10**9)

    @eventflow.handler(max_retries=0, dead_letter=dlq, on_failure=dest)
    async def h(event: object, context: eventflow.Context) -> None:
        raise RuntimeError("x")

    with capture_logs() as logs:
        async with eventflow.App(clock=clock, sink_timeout=10.0) as app:
            await app.invoke(h, {"order": 42})
            async with clock.autojump():
                await app.drain()
            stats = app.stats()
    assert stats.dead_letter_errors == 1 and stats.destination_errors == 1
    assert stats.failed == 1 and stats.dead_lettered == 0
    assert dlq.calls > 3
    gave_up = [e for e in logs if e["event"] == "sink.gave_up"]
    assert {e["role"] for e in gave_up} == {"dead_letter", "on_failure"}
    assert all(e["log_level"] == "error" for e in gave_up)
    dl = next(e for e in gave_up if e["role"] == "dead_letter")
    assert json.loads(dl["body"]) == {"order": 42}
    assert clock.now() == 10.0  # gave up once sink_timeout had passed
    assert_conserved(stats)


async def test_jsonl_sink_appends_lines(tmp_path: Path) -> None:
    path = tmp_path / "dead-letters.jsonl"
    sink = JsonlSink(path)

    @eventflow.handler(max_retries=0, dead_letter=sink)
    async def h(event: object, context: eventflow.Context) -> None:
        raise RuntimeError("to the file")

    async with eventflow.App() as app:
        ids = [(await app.invoke(h, {"i": i})).request_id for i in range(3)]
        await app.drain()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(line["attributes"]["RequestID"] for line in lines) == sorted(ids)
    assert {json.loads(line["body"])["i"] for line in lines} == {0, 1, 2}
    assert [m.attributes["ErrorMessage"] for m in sink.read()] == ["to the file"] * 3


async def test_sink_rejected_is_not_retried() -> None:
    from eventflow.sinks import SinkRejected

    class TooSmall:
        calls = 0

        async def send(self, message: Message) -> None:
            TooSmall.calls += 1
            raise SinkRejected(f"message of {len(message.body)} bytes is over the 10-byte limit")

    @eventflow.handler(max_retries=0, dead_letter=TooSmall())
    async def h(event: object, context: eventflow.Context) -> None:
        raise RuntimeError("x")

    async with eventflow.App() as app:
        await app.invoke(h, {"big": "x" * 100})
        await app.drain()
        stats = app.stats()
    assert TooSmall.calls == 1
    assert stats.dead_letter_errors == 1 and stats.failed == 1
