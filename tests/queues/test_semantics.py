"""The semantics of asynchronous invocation, the same whichever event queue holds the events.

Each test runs on the default in-memory queue, on ``MemoryQueue``, on ``SQLiteQueue`` and on
``SQSEventQueue`` (see conftest.py).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import anyio
import pytest

import eventflow
from eventflow.sinks import MemorySink
from eventflow.stores import MemoryStore
from queue_support import Harness


def assert_accounted(stats: eventflow.Stats) -> None:
    assert stats.received == stats.finished + stats.pending, stats
    assert stats.pending == 0, stats


async def test_every_event_runs_once_under_its_request_id(harness: Harness) -> None:
    seen: dict[str, list[int]] = defaultdict(list)
    app = harness.app()

    @app.handler
    async def work(event: dict[str, int], context: eventflow.Context) -> int:
        seen[context.aws_request_id].append(context.attempt)
        return event["n"] * 2

    async with app, harness.time_flows():
        accepted = [await app.invoke(work, {"n": i}) for i in range(40)]
        await app.drain()
        stats = app.stats()
    assert sorted(seen) == sorted(a.request_id for a in accepted)
    assert all(attempts == [1] for attempts in seen.values())
    assert stats.succeeded == 40 and stats.attempts == 40 and stats.failed == 0
    assert stats.enqueued == (40 if harness.shared else 0)
    assert_accounted(stats)


async def test_a_failing_event_is_retried_twice_then_dead_lettered(harness: Harness) -> None:
    attempts: list[tuple[str, int, float]] = []
    dlq = MemorySink()
    app = harness.app()

    @app.handler(dead_letter=dlq, retry_delays=(harness.delay, 2 * harness.delay))
    async def broken(event: dict[str, str], context: eventflow.Context) -> None:
        attempts.append((context.aws_request_id, context.attempt, harness.now(app)))
        raise RuntimeError(f"cannot process {event['key']}")

    async with app, harness.time_flows():
        accepted = await app.invoke(broken, {"key": "photo.jpg"})
        await app.drain()
        stats = app.stats()
    assert [(rid, n) for rid, n, _ in attempts] == [(accepted.request_id, n) for n in (1, 2, 3)]
    gaps = [b[2] - a[2] for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= harness.delay and gaps[1] >= 2 * harness.delay, gaps
    assert len(dlq.messages) == 1
    letter = dlq.messages[0]
    assert letter.json() == {"key": "photo.jpg"}
    assert letter.attributes["RequestID"] == accepted.request_id
    assert letter.attributes["ErrorCode"] == "200"
    assert letter.attributes["ErrorMessage"] == "cannot process photo.jpg"
    assert stats.attempts == 3 and stats.errors == 3 and stats.retries == 2
    assert stats.dead_lettered == 1
    assert_accounted(stats)


async def test_an_event_failing_once_succeeds_on_the_retry(harness: Harness) -> None:
    on_success = MemorySink()
    app = harness.app()

    @app.handler(on_success=on_success, retry_delays=(harness.delay,))
    async def flaky(event: dict[str, str], context: eventflow.Context) -> dict[str, int]:
        if context.attempt == 1:
            raise TimeoutError("the first attempt times out")
        return {"attempt": context.attempt}

    async with app, harness.time_flows():
        accepted = await app.invoke(flaky, {"order": "o-1"})
        await app.drain()
        stats = app.stats()
    record = on_success.messages[0].json()
    assert record["requestContext"]["requestId"] == accepted.request_id
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responsePayload"] == {"attempt": 2}
    assert stats.attempts == 2 and stats.failed == 0
    assert_accounted(stats)


async def test_a_retry_past_max_event_age_is_not_run(harness: Harness) -> None:
    on_failure = MemorySink()
    calls: list[int] = []
    app = harness.app()

    @app.handler(on_failure=on_failure, max_event_age=60, retry_delays=(120,))
    async def slow_to_fix(event: dict[str, str], context: eventflow.Context) -> None:
        calls.append(context.attempt)
        raise ValueError("bad input")

    async with app, harness.time_flows():
        accepted = await app.invoke(slow_to_fix, {"id": "1"})
        await app.drain()
        stats = app.stats()
    assert calls == [1]
    record = on_failure.messages[0].json()
    assert record["requestContext"]["requestId"] == accepted.request_id
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert stats.expired == 1 and stats.failed == 1
    assert_accounted(stats)


async def test_duplicates_run_once_with_idempotency(harness: Harness) -> None:
    runs: list[str] = []
    app = harness.app()

    @app.handler(idempotency=eventflow.Idempotency(MemoryStore(), key="order"))
    async def charge(event: dict[str, str], context: eventflow.Context) -> str:
        runs.append(event["order"])
        return "charged"

    async with app, harness.time_flows():
        for _ in range(5):
            for order in ("a", "b"):
                await app.invoke(charge, {"order": order})
        await app.drain()
        stats = app.stats()
    assert sorted(runs) == ["a", "b"]
    assert stats.deduplicated == 8 and stats.succeeded == 10
    assert_accounted(stats)


async def test_bad_invokes_are_refused_and_nothing_is_queued(harness: Harness) -> None:
    app = harness.app()

    @app.handler
    async def ok(event: Any, context: eventflow.Context) -> None:
        return None

    async with app:
        with pytest.raises(eventflow.UnknownHandler, match="No handler 'missing'"):
            await app.invoke("missing", {})
        with pytest.raises(eventflow.InvalidPayload, match="not JSON-serialisable"):
            await app.invoke(ok, {"when": object()})
        stats = app.stats()
    assert stats.received == 0 and stats.enqueued == 0


async def test_a_retry_pending_at_shutdown_is_finished_by_the_next_app(
    harness: Harness,
) -> None:
    if not harness.shared:
        pytest.skip("the in-memory queue ends with its app (its spill is tested in tests/core)")
    attempts: list[tuple[str, int]] = []
    failed_once = anyio.Event()

    def build() -> eventflow.App:
        app = harness.app()

        @app.handler(retry_delays=(harness.delay,))
        async def flaky(event: dict[str, str], context: eventflow.Context) -> None:
            attempts.append((context.aws_request_id, context.attempt))
            if context.attempt == 1:
                failed_once.set()
                raise RuntimeError("first attempt fails")

        return app

    first = build()
    async with first:
        accepted = await first.invoke("flaky", {"k": "v"})
        await failed_once.wait()
    # the app finished the attempt before it stopped: its retry waits in the queue
    assert first.stats().requeued == 1 and first.stats().undelivered == 0
    second = build()
    async with second, harness.time_flows():
        await second.drain()
        stats = second.stats()
    assert attempts == [(accepted.request_id, 1), (accepted.request_id, 2)]
    assert stats.succeeded == 1
    assert_accounted(stats)
