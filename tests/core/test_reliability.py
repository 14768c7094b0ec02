"""Reliability of the engine under sick sinks, stuck threads, bad results and shutdown.

Every test keeps the accounting equation; sync handlers block on a ``threading.Event``
that the test sets when it is done with them (no real sleeps).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from ef_assertions import assert_conserved

import eventflow
from eventflow.queues import MemoryQueue
from eventflow.sinks import MemorySink, Message
from eventflow.sources import MemorySource, Outcome
from eventflow.testing import VirtualClock

HUGE = 10**5000  # an int JSON cannot encode: past Python's int/str conversion limit


class DownSink:
    """A sink whose target is down until ``up`` is set."""

    def __init__(self) -> None:
        self.up = False
        self.tries = 0
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.tries += 1
        if not self.up:
            raise ConnectionError("the target is down")
        self.messages.append(message)


class HangingSink:
    """A sink whose send never returns (until cancelled)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    async def send(self, message: Message) -> None:
        self.entered.set()
        await asyncio.Event().wait()


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """What blocked sync handlers wait for; set at teardown so their threads end."""
    event = threading.Event()
    yield event
    event.set()


def handler_threads(app: eventflow.App) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"eventflow-{app.name}-")]


async def poll(condition: Any, what: str, bound: float = 10.0) -> None:
    """Wait for a condition (often made true by another thread), up to ``bound`` real seconds."""
    deadline = asyncio.get_running_loop().time() + bound
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


# -- item 4: a dead letter that cannot be sent does not delete its event -------------------


async def test_a_source_event_whose_dead_letter_cannot_be_sent_is_given_back() -> None:
    clock = VirtualClock()
    dlq = DownSink()
    src = MemorySource("broken")
    app = eventflow.App(sources=[src], clock=clock, sink_timeout=5.0)

    @app.handler(dead_letter=dlq, max_retries=0)
    async def broken(event: Any, context: eventflow.Context) -> None:
        raise RuntimeError("always fails")

    async with clock.autojump(), app:
        await src.put({"n": 1})
        await poll(lambda: src.settled, "the outcome")
        await app.drain()
        stats = app.stats()
    [outcome] = src.settled.values()
    assert outcome is Outcome.UNDELIVERED  # not FAILED: the source keeps the message
    assert dlq.tries > 1  # retried for sink_timeout first
    assert stats.returned == 1 and stats.undelivered == 1 and stats.failed == 0
    assert stats.dead_letter_errors == 1
    assert_conserved(stats)


async def test_one_failure_record_sent_is_enough_to_fail_for_good() -> None:
    clock = VirtualClock()
    dlq, on_failure = DownSink(), MemorySink()
    src = MemorySource("broken")
    app = eventflow.App(sources=[src], clock=clock, sink_timeout=5.0)

    @app.handler(dead_letter=dlq, on_failure=on_failure, max_retries=0)
    async def broken(event: Any, context: eventflow.Context) -> None:
        raise RuntimeError("always fails")

    async with clock.autojump(), app:
        await src.put({"n": 1})
        await poll(lambda: src.settled, "the outcome")
        await app.drain()
        stats = app.stats()
    assert list(src.settled.values()) == [Outcome.FAILED]
    assert len(on_failure.messages) == 1
    assert stats.failed == 1 and stats.returned == 0 and stats.dead_letter_errors == 1
    assert_conserved(stats)


async def test_a_shared_queue_delivers_a_given_back_event_again_after_its_backoff() -> None:
    clock = VirtualClock(start=100.0)
    dlq = DownSink()
    queue = MemoryQueue(undelivered_delay=30.0)
    app = eventflow.App(queue=queue, clock=clock, sink_timeout=5.0)
    runs: list[int] = []

    @app.handler(dead_letter=dlq, max_retries=0)
    async def broken(event: Any, context: eventflow.Context) -> None:
        runs.append(context.attempt)
        raise RuntimeError("always fails")

    async with app:
        await app.invoke(broken, {"n": 1})
        await clock.advance(10.0)  # the dead letter is given up after sink_timeout (5 s)
        assert queue.statistics().returned == 1
        assert queue.statistics().delayed == 1  # kept, not deleted
        dlq.up = True  # the dead-letter queue is back
        await clock.advance(20.0)
        assert dlq.messages == []  # still waiting out its backoff
        await clock.advance(20.0)
        await app.drain(timeout=1.0)
        stats = app.stats()
    assert runs == [1]  # no retry left: the second delivery only sends the dead letter
    assert len(dlq.messages) == 1
    assert "no retries left" in dlq.messages[0].attributes["ErrorMessage"]
    assert queue.statistics().deleted == 1 and len(queue) == 0
    assert stats.received == 2 and stats.returned == 1 and stats.failed == 1
    assert_conserved(stats)


# -- item 6: one terminal outcome per event, even at shutdown ------------------------------


async def test_a_dead_lettered_event_is_not_spilled_when_shutdown_cuts_its_other_send() -> None:
    clock = VirtualClock()
    dlq, on_failure, spill = MemorySink(), HangingSink(), MemorySink()
    src = MemorySource("broken")
    app = eventflow.App(
        sources=[src], clock=clock, spill=spill, shutdown_timeout=1.0, sink_timeout=100.0
    )

    @app.handler(dead_letter=dlq, on_failure=on_failure, max_retries=0)
    async def broken(event: Any, context: eventflow.Context) -> None:
        raise RuntimeError("always fails")

    async with clock.autojump():
        async with app:
            await src.put({"n": 1})
            await app.invoke(broken, {"n": 2})
            await poll(lambda: len(dlq.messages) == 2, "both dead letters")
        stats = app.stats()
    assert list(src.settled.values()) == [Outcome.FAILED]  # deleted, not released
    assert spill.messages == []
    assert stats.failed == 2 and stats.undelivered == 0
    assert stats.dead_lettered == 2 and stats.destination_errors == 2
    assert_conserved(stats)


async def test_nothing_sent_before_shutdown_means_the_event_is_released() -> None:
    clock = VirtualClock()
    dlq, on_failure = HangingSink(), HangingSink()
    src = MemorySource("broken")
    app = eventflow.App(sources=[src], clock=clock, shutdown_timeout=1.0)

    @app.handler(dead_letter=dlq, on_failure=on_failure, max_retries=0)
    async def broken(event: Any, context: eventflow.Context) -> None:
        raise RuntimeError("always fails")

    async with clock.autojump():
        async with app:
            await src.put({"n": 1})
            await dlq.entered.wait()
        stats = app.stats()
    assert list(src.settled.values()) == [Outcome.RELEASED]
    assert stats.undelivered == 1 and stats.failed == 0 and stats.dead_letter_errors == 0
    assert_conserved(stats)


async def test_a_success_whose_record_is_cut_short_by_shutdown_is_not_run_again() -> None:
    clock = VirtualClock()
    on_success, spill = HangingSink(), MemorySink()
    app = eventflow.App(clock=clock, spill=spill, shutdown_timeout=1.0)

    @app.handler(on_success=on_success)
    async def ok(event: Any, context: eventflow.Context) -> str:
        return "done"

    async with clock.autojump():
        async with app:
            await app.invoke(ok, {"n": 1})
            await on_success.entered.wait()
        stats = app.stats()
    assert spill.messages == []
    assert stats.succeeded == 1 and stats.undelivered == 0 and stats.destination_errors == 1
    assert_conserved(stats)


# -- item 5: shutdown is bounded with a sync handler that does not return ------------------


async def test_shutdown_does_not_wait_for_a_sync_handler_that_does_not_return(
    gate: threading.Event,
) -> None:
    clock = VirtualClock()
    spill = MemorySink()
    started = threading.Event()
    # a safety net, so that an app that waits for the thread still ends this test
    safety = threading.Timer(10.0, gate.set)
    app = eventflow.App(clock=clock, spill=spill, shutdown_timeout=1.0, name="stuck")

    @app.handler
    def stuck(event: Any, context: eventflow.Context) -> None:
        started.set()
        gate.wait()

    safety.start()
    try:
        async with clock.autojump():
            async with app:
                accepted = await app.invoke(stuck, {"n": 1})
                await poll(started.is_set, "the attempt to start")
            still_blocked = not gate.is_set()
            threads = app.thread_statistics()
            alive = handler_threads(app)
    finally:
        safety.cancel()
    assert still_blocked  # the app left while the handler still ran
    assert threads.abandoned == 1 and threads.alive == 1
    assert alive and all(t.daemon for t in alive)  # it does not hold the process's exit
    [message] = spill.messages
    assert message.attributes["RequestID"] == accepted.request_id
    assert message.attributes["Attempt"] == "0"  # a cancelled attempt is not a failed one
    stats = app.stats()
    assert stats.undelivered == 1 and stats.attempts == 0 and stats.errors == 0
    assert_conserved(stats)
    gate.set()
    await poll(lambda: not any(t.is_alive() for t in alive), "the thread to end")


async def test_thread_limit_bounds_the_threads_of_timed_out_attempts(
    gate: threading.Event,
) -> None:
    clock = VirtualClock()
    app = eventflow.App(clock=clock, thread_limit=3, name="bounded")
    peak = 0

    @app.handler(timeout=1.0, max_retries=0)
    def stuck(event: Any, context: eventflow.Context) -> None:
        gate.wait()

    before = set(threading.enumerate())
    async with clock.autojump(), app:
        for wave in range(5):  # each wave times out; its threads run on
            for i in range(4):
                await app.invoke(stuck, {"wave": wave, "n": i})
            await app.drain()
            started = [t for t in threading.enumerate() if t not in before and t.is_alive()]
            peak = max(peak, len(started))
        stats = app.stats()
    assert peak <= 3
    threads = app.thread_statistics()
    assert threads.alive == 3 and threads.abandoned == 3 and len(handler_threads(app)) == 3
    assert stats.failed == 20 and stats.errors == 20  # each timed out, waiting or running
    assert_conserved(stats)


# -- item 11: a timed-out sync attempt's context and its retry -----------------------------


async def test_a_retry_waits_for_the_timed_out_thread_and_contexts_never_change(
    gate: threading.Event,
) -> None:
    clock = VirtualClock()
    app = eventflow.App(clock=clock, name="overlap")
    started: list[tuple[int, float]] = []
    seen_after_gate: list[int] = []
    first_started = threading.Event()

    @app.handler(timeout=5.0, retry_delays=(10.0,), max_retries=1)
    def slow(event: Any, context: eventflow.Context) -> None:
        started.append((context.attempt, clock.now()))
        if context.attempt == 1:
            first_started.set()
            gate.wait()
            seen_after_gate.append(context.attempt)
            raise RuntimeError("the first attempt fails late")

    async with app:
        await app.invoke(slow, {"n": 1})
        await poll(first_started.is_set, "the first attempt")
        await clock.advance(5.0)  # it times out; the retry is due at 15
        await clock.advance(12.0)  # at 17: due, but held while the thread runs (bound: 20)
        assert [a for a, _ in started] == [1]
        assert app.stats().scheduled == 1
        gate.set()
        await poll(lambda: len(started) == 2, "the retry")
        await app.drain(timeout=1.0)
        stats = app.stats()
    assert started == [(1, 0.0), (2, 17.0)]  # it started as soon as the thread returned
    assert seen_after_gate == [1]  # the old attempt's context kept its attempt number
    assert stats.succeeded == 1 and stats.attempts == 2 and stats.errors == 1
    assert_conserved(stats)


async def test_a_retry_starts_anyway_one_timeout_after_it_was_due(
    gate: threading.Event,
) -> None:
    clock = VirtualClock()
    app = eventflow.App(clock=clock, name="bound")
    started: list[tuple[int, float]] = []
    first_started = threading.Event()

    @app.handler(timeout=5.0, retry_delays=(10.0,), max_retries=1)
    def stuck_once(event: Any, context: eventflow.Context) -> None:
        started.append((context.attempt, clock.now()))
        if context.attempt == 1:
            first_started.set()
            gate.wait()

    async with app:
        await app.invoke(stuck_once, {"n": 1})
        await poll(first_started.is_set, "the first attempt")
        await clock.advance(19.0)
        assert len(started) == 1
        await clock.advance(1.0)  # at 20 = due (15) + timeout (5)
        await poll(lambda: len(started) == 2, "the retry")
        await app.drain(timeout=1.0)
        stats = app.stats()
    assert started == [(1, 0.0), (2, 20.0)]
    assert stats.succeeded == 1
    assert_conserved(stats)


# -- item 7: results JSON cannot encode, and internal errors -------------------------------


@pytest.mark.parametrize("sync", [False, True], ids=["async", "def"])
@pytest.mark.parametrize("timeout", [None, 30.0], ids=["no-timeout", "timeout"])
@pytest.mark.parametrize("result", [HUGE, {"n": HUGE}], ids=["int", "nested"])
async def test_a_result_json_cannot_encode_is_a_marshal_error_and_settles(
    sync: bool, timeout: float | None, result: Any
) -> None:
    clock = VirtualClock()
    dlq, on_success = MemorySink(), MemorySink()
    src = MemorySource("bad_result")
    app = eventflow.App(sources=[src], clock=clock)

    def fn(event: Any, context: eventflow.Context) -> Any:
        return result

    async def afn(event: Any, context: eventflow.Context) -> Any:
        return result

    app.handler(
        fn if sync else afn,
        name="bad_result",
        dead_letter=dlq,
        on_success=on_success,
        max_retries=1,
        retry_delays=(1.0,),
        timeout=timeout,
    )
    async with app:
        await src.put({"n": 1})
        # virtual time stands still while an attempt runs: a thread cannot time out early
        await poll(lambda: app.stats().errors == 1, "the first attempt")
        await clock.advance(1.0)  # the retry
        await poll(lambda: src.settled, "the outcome")
        await app.drain(timeout=1.0)
        stats = app.stats()
    assert list(src.settled.values()) == [Outcome.FAILED]
    assert on_success.messages == []
    assert dlq.messages[0].attributes["ErrorMessage"].startswith("Unable to marshal response:")
    assert stats.attempts == 2 and stats.errors == 2 and stats.internal_errors == 0
    assert_conserved(stats)


@pytest.mark.parametrize("result", [HUGE, {"n": HUGE}], ids=["int", "nested"])
async def test_request_response_answers_a_marshal_error(result: Any) -> None:
    app = eventflow.App()

    @app.handler
    async def bad(event: Any, context: eventflow.Context) -> Any:
        return result

    async with app:
        answer = await app.invoke(bad, {}, invocation_type="RequestResponse")
    assert answer.function_error == "Unhandled"
    assert answer.payload["errorType"] == "Runtime.MarshalError"
    assert answer.payload["errorMessage"].startswith("Unable to marshal response:")
    assert answer.payload["stackTrace"] == []


async def test_an_idempotent_result_json_cannot_encode_is_a_marshal_error() -> None:
    dlq = MemorySink()
    app = eventflow.App()

    @app.handler(idempotency=eventflow.Idempotency(key="id"), dead_letter=dlq, max_retries=0)
    async def bad(event: Any, context: eventflow.Context) -> Any:
        return HUGE

    async with app:
        await app.invoke(bad, {"id": "a"})
        await app.drain()
        stats = app.stats()
    assert "Unable to marshal response" in dlq.messages[0].attributes["ErrorMessage"]
    assert stats.failed == 1 and stats.succeeded == 0
    assert_conserved(stats)


async def test_an_internal_error_settles_the_event_with_its_source_and_is_counted() -> None:
    def fail_on_dead_letter(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        if event_dict.get("event") == "event.dead_lettered":
            raise RuntimeError("this logger breaks")
        return event_dict

    logger = structlog.wrap_logger(
        structlog.ReturnLogger(), processors=[fail_on_dead_letter], wrapper_class=None
    )
    dlq = MemorySink()
    src = MemorySource("broken")
    app = eventflow.App(sources=[src], logger=logger)

    @app.handler(dead_letter=dlq, max_retries=0)
    async def broken(event: Any, context: eventflow.Context) -> None:
        raise RuntimeError("always fails")

    async with app:
        await src.put({"n": 1})
        await poll(lambda: src.settled, "the outcome")
        await app.invoke(broken, {"n": 2})
        await app.drain()
        stats = app.stats()
    assert list(src.settled.values()) == [Outcome.UNDELIVERED]
    assert stats.internal_errors == 2 and stats.undelivered == 2
    assert_conserved(stats)
