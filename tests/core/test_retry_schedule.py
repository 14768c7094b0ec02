"""Lambda's retry schedule, checked exactly in virtual time."""

from __future__ import annotations

import json

import pytest
from ef_assertions import assert_conserved

import eventflow
from eventflow.sinks import MemorySink
from eventflow.testing import VirtualClock


async def test_default_schedule_is_0_60_180_then_dead_letter_and_record() -> None:
    # Given a handler that always fails, with a DLQ and an on-failure destination
    clock = VirtualClock()
    dlq, on_failure = MemorySink(), MemorySink()
    attempts: list[tuple[float, str, int]] = []

    @eventflow.handler(dead_letter=dlq, on_failure=on_failure)
    async def always_fails(event: dict[str, int], context: eventflow.Context) -> None:
        attempts.append((clock.now(), context.aws_request_id, context.attempt))
        raise ValueError("Simulating error")

    async with eventflow.App(clock=clock) as app:
        # When it is invoked asynchronously
        accepted = await app.invoke(always_fails, {"key1": "value1"})
        assert accepted.status_code == 202
        await clock.advance(0)
        assert [a[0] for a in attempts] == [0.0]
        # Then the first retry waits a full minute after the failure...
        await clock.advance(59.999)
        assert len(attempts) == 1
        assert app.stats().scheduled == 1
        await clock.advance(0.001)
        assert [a[0] for a in attempts] == [0.0, 60.0]
        # ...and the second two more minutes
        await clock.advance(119.999)
        assert len(attempts) == 2
        await clock.advance(0.001)
        assert [a[0] for a in attempts] == [0.0, 60.0, 180.0]
        await app.drain()
        stats = app.stats()

    # every attempt ran under the request ID the 202 returned
    assert {a[1] for a in attempts} == {accepted.request_id}
    assert [a[2] for a in attempts] == [1, 2, 3]
    # one dead letter, with Lambda's attributes
    assert len(dlq.messages) == 1
    dead = dlq.messages[0]
    assert json.loads(dead.body) == {"key1": "value1"}
    assert dead.attributes == {
        "RequestID": accepted.request_id,
        "ErrorCode": "200",
        "ErrorMessage": "Simulating error",
    }
    # one RetriesExhausted record
    record = on_failure.messages[0].json()
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": accepted.request_id,
        "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:always_fails:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"key1": "value1"}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "Simulating error"
    assert record["responsePayload"]["requestId"] == accepted.request_id
    assert record["timestamp"].endswith("Z")
    assert stats.failed == 1 and stats.retries == 2 and stats.attempts == 3
    assert stats.errors == 3 and stats.dead_lettered == 1 and stats.succeeded == 0
    assert_conserved(stats)


async def test_fails_twice_then_succeeds_sends_success_record() -> None:
    clock = VirtualClock()
    on_success, dlq = MemorySink(), MemorySink()
    seen: list[int] = []

    @eventflow.handler(on_success=on_success, dead_letter=dlq)
    async def flaky(event: dict[str, int], context: eventflow.Context) -> dict[str, int]:
        seen.append(context.attempt)
        if context.attempt < 3:
            raise RuntimeError(f"attempt {context.attempt} failed")
        return {"doubled": event["n"] * 2}

    async with eventflow.App(clock=clock) as app:
        accepted = await app.invoke("flaky", {"n": 21})
        async with clock.autojump():
            await app.drain()
        stats = app.stats()

    assert seen == [1, 2, 3]
    assert dlq.messages == []
    record = on_success.messages[0].json()
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["requestId"] == accepted.request_id
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"doubled": 42}
    assert stats.succeeded == 1 and stats.retries == 2 and stats.failed == 0
    assert_conserved(stats)


async def test_max_retries_zero_runs_once() -> None:
    clock = VirtualClock()
    dlq = MemorySink()
    runs = 0

    @eventflow.handler(max_retries=0, dead_letter=dlq)
    async def once(event: object, context: eventflow.Context) -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("no second chance")

    async with eventflow.App(clock=clock) as app:
        await app.invoke(once, [1, 2, 3])
        async with clock.autojump():
            await app.drain()
        stats = app.stats()
    assert runs == 1
    assert stats.retries == 0 and stats.failed == 1 and stats.dead_lettered == 1
    assert dlq.messages[0].attributes["ErrorMessage"] == "no second chance"


async def test_last_retry_delay_repeats_for_longer_schedules() -> None:
    clock = VirtualClock()
    starts: list[float] = []

    @eventflow.handler(max_retries=4, retry_delays=(1.0, 2.0))
    async def h(event: object, context: eventflow.Context) -> None:
        starts.append(clock.now())
        raise RuntimeError("again")

    async with eventflow.App(clock=clock) as app:
        await app.invoke(h, None)
        async with clock.autojump():
            await app.drain()
    assert starts == [0.0, 1.0, 3.0, 5.0, 7.0]


async def test_retry_too_late_for_max_event_age_expires_instead() -> None:
    # Given an event whose second retry would come after its maximum age
    clock = VirtualClock()
    dlq, on_failure = MemorySink(), MemorySink()
    starts: list[float] = []

    @eventflow.handler(max_event_age=100.0, dead_letter=dlq, on_failure=on_failure)
    async def h(event: object, context: eventflow.Context) -> None:
        starts.append(clock.now())
        raise RuntimeError("still broken")

    async with eventflow.App(clock=clock) as app:
        await app.invoke(h, {"a": 1})
        async with clock.autojump():
            await app.drain()
        stats = app.stats()
    # Then it ran at 0 and +60, and was not kept for a retry at +180
    assert starts == [0.0, 60.0]
    assert stats.expired == 1 and stats.failed == 1 and stats.retries == 1
    record = on_failure.messages[0].json()
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert "max_event_age of 100 s" in dlq.messages[0].attributes["ErrorMessage"]
    assert_conserved(stats)


async def test_event_too_old_when_a_worker_frees_up_never_runs() -> None:
    clock = VirtualClock()
    on_failure = MemorySink()
    ran: list[str] = []

    @eventflow.handler
    async def blocker(event: object, context: eventflow.Context) -> None:
        await clock.sleep(500)

    @eventflow.handler(max_event_age=60.0, on_failure=on_failure)
    async def late(event: object, context: eventflow.Context) -> None:
        ran.append(context.aws_request_id)

    async with eventflow.App(clock=clock, concurrency=1) as app:
        await app.invoke(blocker, None)
        await clock.advance(0)
        await app.invoke(late, {"waited": True})
        async with clock.autojump():
            await app.drain()
        stats = app.stats()
    assert ran == []
    record = on_failure.messages[0].json()
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in record
    assert stats.expired == 1 and stats.succeeded == 1


async def test_timeout_is_a_function_error_and_is_retried() -> None:
    clock = VirtualClock()
    on_failure = MemorySink()
    remaining: list[int] = []

    @eventflow.handler(timeout=3.0, max_retries=1, retry_delays=(10.0,), on_failure=on_failure)
    async def slow(event: object, context: eventflow.Context) -> None:
        remaining.append(context.get_remaining_time_in_millis())
        await clock.sleep(5)

    async with eventflow.App(clock=clock) as app:
        accepted = await app.invoke(slow, {})
        async with clock.autojump():
            await app.drain()
        stats = app.stats()
    assert remaining == [3000, 3000]
    assert stats.attempts == 2 and stats.errors == 2 and stats.failed == 1
    error = on_failure.messages[0].json()["responsePayload"]
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"] == (
        f"RequestId: {accepted.request_id} Error: Task timed out after 3.00 seconds"
    )


@pytest.mark.parametrize("tick", [0.01, 0.001, 0.25])
async def test_retry_never_fires_early_and_within_one_tick(tick: float) -> None:
    clock = VirtualClock()
    starts: list[float] = []

    @eventflow.handler(max_retries=3, retry_delays=(0.1 + 0.2, 1.0 / 3.0, 60.0))
    async def h(event: object, context: eventflow.Context) -> None:
        starts.append(clock.now())
        raise RuntimeError("x")

    async with eventflow.App(clock=clock, tick=tick) as app:
        await app.invoke(h, None)
        async with clock.autojump():
            await app.drain()
    expected = [0.0, 0.1 + 0.2, 0.1 + 0.2 + 1.0 / 3.0]
    expected.append(expected[-1] + 60.0)
    assert len(starts) == 4
    for got, want in zip(starts, expected, strict=True):
        assert got >= want
        assert got - want <= tick


async def test_configure_handler_applies_to_events_accepted_afterwards() -> None:
    clock = VirtualClock()
    old_dlq, new_dlq = MemorySink(), MemorySink()
    attempts: dict[str, int] = {}

    @eventflow.handler(max_retries=2, retry_delays=(1.0,), dead_letter=old_dlq)
    async def h(event: str, context: eventflow.Context) -> None:
        attempts[event] = context.attempt
        raise RuntimeError(event)

    async with eventflow.App(clock=clock) as app:
        await app.invoke(h, "before")
        await clock.advance(0)
        new = await app.configure_handler(h, max_retries=0, dead_letter=new_dlq)
        assert new.max_retries == 0 and app.handler_config(h) is new
        assert h.max_retries == 2  # the decorator's options are unchanged
        await app.invoke(h, "after")
        async with clock.autojump():
            await app.drain()
        with pytest.raises(eventflow.ConfigurationError, match="max_retries"):
            await app.configure_handler(h, max_retries=-1)
        with pytest.raises(eventflow.ConfigurationError, match="Unknown handler setting"):
            await app.configure_handler(h, retries=1)
        restored = await app.configure_handler(h, h.config)
        assert restored == h.config
    assert attempts == {"before": 3, "after": 1}
    assert [m.body for m in old_dlq.messages] == ['"before"']
    assert [m.body for m in new_dlq.messages] == ['"after"']
