"""Middleware: hooks around the life of an event see exactly what the accounting counts."""

from __future__ import annotations

import asyncio
import contextvars
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import structlog
from ef_assertions import assert_conserved

import eventflow
from eventflow import EventInfo, Middleware
from eventflow.sinks import MemorySink
from eventflow.sources import Outcome
from eventflow.testing import VirtualClock

# what the attempt context sets and the handler reads: proof that it wraps the call
SPAN: contextvars.ContextVar[str | None] = contextvars.ContextVar("SPAN", default=None)


class Counting(Middleware):
    """Counts every hook call and checks what each hook sees."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.outcomes: Counter[Outcome] = Counter()
        self.attempts_seen: list[tuple[str, int]] = []
        self.exits_with_error = 0

    def accepted(self, event: EventInfo) -> None:
        assert event.attempt == 0 and event.age >= 0
        self.calls["accepted"] += 1

    @asynccontextmanager
    async def attempt(self, event: EventInfo) -> AsyncIterator[None]:
        self.calls["attempt.enter"] += 1
        self.attempts_seen.append((event.request_id, event.attempt))
        token = SPAN.set(f"{event.request_id}/{event.attempt}")
        try:
            yield
        except BaseException:
            self.exits_with_error += 1
            raise
        finally:
            SPAN.reset(token)
            self.calls["attempt.exit"] += 1

    def retry_scheduled(self, event: EventInfo, delay: float) -> None:
        assert delay > 0
        self.calls["retry_scheduled"] += 1

    def finished(self, event: EventInfo, outcome: Outcome) -> None:
        self.calls["finished"] += 1
        self.outcomes[outcome] += 1


async def test_counting_middleware_sees_exactly_what_the_accounting_reports() -> None:
    # Given 1,000 events: a third always fail (dead letter), a third fail once, a third succeed
    clock = VirtualClock()
    dlq = MemorySink()
    counting = Counting()
    spans: list[str | None] = []
    tried: Counter[int] = Counter()

    @eventflow.handler(max_retries=2, retry_delays=(1.0, 2.0), dead_letter=dlq)
    async def flaky(event: dict[str, int], context: eventflow.Context) -> None:
        spans.append(SPAN.get())
        i = event["i"]
        tried[i] += 1
        if i % 3 == 0 or (i % 3 == 1 and tried[i] == 1):
            raise ValueError(f"event {i} fails")

    async with eventflow.App(clock=clock, handlers=[flaky], middleware=[counting]) as app:
        # When they all run to their outcome
        for i in range(1000):
            await app.invoke(flaky, {"i": i})
        async with clock.autojump():
            await app.drain()
        stats = app.stats()

    # Then every hook call matches a counter of the accounting
    assert_conserved(stats)
    assert stats.retries > 0 and stats.failed > 0 and stats.dead_lettered == len(dlq) > 0
    assert counting.calls["accepted"] == stats.received == 1000
    assert counting.calls["attempt.enter"] == counting.calls["attempt.exit"] == stats.attempts
    assert counting.exits_with_error == stats.errors
    assert counting.calls["retry_scheduled"] == stats.retries
    assert counting.calls["finished"] == stats.succeeded + stats.failed + stats.undelivered
    assert counting.outcomes == {Outcome.SUCCEEDED: stats.succeeded, Outcome.FAILED: stats.failed}
    # and the attempt context was open around every handler call, with its attempt number
    assert None not in spans and len(spans) == stats.attempts
    assert sorted(f"{rid}/{n}" for rid, n in counting.attempts_seen) == sorted(
        s for s in spans if s is not None
    )


class Raising:
    """Raises in every hook (not a Middleware subclass: any object with hooks will do)."""

    def __init__(self) -> None:
        self.exited = 0

    def accepted(self, event: EventInfo) -> None:
        raise RuntimeError("accepted hook bug")

    @asynccontextmanager
    async def attempt(self, event: EventInfo) -> AsyncIterator[None]:
        if event.attempt == 1:
            raise RuntimeError("attempt hook bug on entry")
        yield
        self.exited += 1
        raise RuntimeError("attempt hook bug on exit")

    def retry_scheduled(self, event: EventInfo, delay: float) -> None:
        raise RuntimeError("retry hook bug")

    def finished(self, event: EventInfo, outcome: Outcome) -> None:
        raise RuntimeError("finished hook bug")


async def test_a_raising_hook_fails_nothing_and_is_logged() -> None:
    clock = VirtualClock()
    raising, counting = Raising(), Counting()
    runs: list[int] = []

    @eventflow.handler(retry_delays=(1.0, 1.0))
    async def once_failing(event: dict[str, int], context: eventflow.Context) -> str:
        runs.append(context.attempt)
        if context.attempt == 1:
            raise ValueError("first attempt fails")
        return "ok"

    with structlog.testing.capture_logs() as logs:
        app = eventflow.App(clock=clock, handlers=[once_failing], middleware=[raising, counting])
        async with app:
            for i in range(10):
                await app.invoke(once_failing, {"i": i})
            async with clock.autojump():
                await app.drain()
            stats = app.stats()

    # every event ran its two attempts and succeeded, as without the broken middleware
    assert stats.succeeded == 10 and stats.failed == 0 and stats.retries == 10
    assert runs.count(1) == 10 and runs.count(2) == 10
    # the other middleware saw every call
    assert counting.calls["accepted"] == 10 and counting.calls["finished"] == 10
    assert counting.calls["attempt.enter"] == 20
    # a context whose entry raised was not exited; the others were, once each
    assert raising.exited == 10
    failed = Counter(e["hook"] for e in logs if e["event"] == "middleware.failed")
    assert failed == {"accepted": 10, "attempt": 20, "retry_scheduled": 10, "finished": 10}
    assert all(
        e["log_level"] == "error" and e["exc_info"] is not None
        for e in logs
        if e["event"] == "middleware.failed"
    )


class Suppressing:
    @asynccontextmanager
    async def attempt(self, event: EventInfo) -> AsyncIterator[None]:
        try:
            yield
        except Exception:
            pass  # tries to swallow the handler's error: the engine ignores that


async def test_an_attempt_context_cannot_suppress_the_handlers_error() -> None:
    @eventflow.handler
    async def fails(event: Any, context: eventflow.Context) -> None:
        raise ValueError("the handler's error")

    async with eventflow.App(handlers=[fails], middleware=[Suppressing()]) as app:
        result = await app.invoke(fails, {}, invocation_type="RequestResponse")
    assert result.function_error == "Unhandled"
    assert result.payload["errorType"] == "ValueError"


@pytest.mark.parametrize("path", ["inline", "timeout", "thread", "thread_timeout", "sync_call"])
async def test_the_attempt_context_wraps_the_handler_on_every_path(path: str) -> None:
    counting = Counting()
    seen: list[str | None] = []
    timeout = 5.0 if path.endswith("timeout") else None

    if path.startswith("thread"):

        def plain(event: Any, context: eventflow.Context) -> None:
            seen.append(SPAN.get())

        fn: Any = plain
    else:

        async def coro(event: Any, context: eventflow.Context) -> None:
            seen.append(SPAN.get())

        fn = coro
    h = eventflow.handler(fn, name="h", timeout=timeout)
    async with eventflow.App(handlers=[h], middleware=[counting]) as app:
        if path == "sync_call":
            result = await app.invoke(h, {}, invocation_type="RequestResponse")
            assert result.function_error is None
            rid = result.request_id
        else:
            rid = (await app.invoke(h, {})).request_id
            await app.drain()
    assert seen == [f"{rid}/1"]
    assert counting.calls["attempt.enter"] == counting.calls["attempt.exit"] == 1
    # RequestResponse is not queued: not accepted, not finished (as in stats())
    expected_finished = 0 if path == "sync_call" else 1
    assert counting.calls["finished"] == expected_finished


async def test_a_timed_out_attempt_exits_its_context_with_the_cancellation() -> None:
    clock = VirtualClock()
    counting = Counting()

    @eventflow.handler(timeout=1.0, max_retries=0)
    async def slow(event: Any, context: eventflow.Context) -> None:
        await asyncio.Event().wait()

    async with eventflow.App(clock=clock, handlers=[slow], middleware=[counting]) as app:
        await app.invoke(slow, {})
        async with clock.autojump():
            await app.drain()
        stats = app.stats()
    assert stats.failed == 1 and stats.errors == 1
    assert counting.exits_with_error == 1 and counting.outcomes == {Outcome.FAILED: 1}


def test_middleware_without_any_hook_is_refused() -> None:
    with pytest.raises(eventflow.ConfigurationError, match="none of the hooks"):
        eventflow.App(middleware=[object()])


CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("CALLER", default="none")


class Seams(Middleware):
    """The hooks that carry what the four first ones cannot see."""

    def __init__(self) -> None:
        self.apps: list[object] = []
        self.errors: list[tuple[str, int, str]] = []
        self.gave_up: Counter[str] = Counter()
        self.carried: list[tuple[str, object]] = []

    def started(self, app: Any) -> None:
        self.apps.append(app)

    def inject(self, event: EventInfo) -> dict[str, str]:
        # read in the caller's context: its context variables are the invoker's
        return {"caller": CALLER.get()}

    @asynccontextmanager
    async def attempt(self, event: EventInfo) -> AsyncIterator[None]:
        self.carried.append((event.request_id, event.trace_context))
        yield

    def attempt_failed(self, event: EventInfo, error: Any) -> None:
        self.errors.append((event.handler, event.attempt, error["errorType"]))

    def delivery_failed(self, event: EventInfo, role: str) -> None:
        self.gave_up[role] += 1


async def test_the_new_hooks_see_every_error_give_up_and_the_callers_context() -> None:
    # Given failures of every kind: a function error, a result JSON cannot carry, an
    # idempotency key that cannot be read, and records that no sink takes
    clock = VirtualClock()
    seams = Seams()

    class Refusing:
        async def send(self, message: eventflow.Message) -> None:
            raise eventflow.sinks.SinkRejected("refused")

    refusing = Refusing()

    @eventflow.handler(max_retries=1, retry_delays=(1.0,), dead_letter=refusing)
    async def raises(event: Any, context: eventflow.Context) -> None:
        raise KeyError("missing")

    @eventflow.handler(max_retries=0, on_failure=refusing, on_success=refusing)
    async def unencodable(event: Any, context: eventflow.Context) -> object:
        return object() if event["bad"] else "fine"

    @eventflow.handler(max_retries=0, idempotency=eventflow.Idempotency(key="id"))
    async def keyed(event: Any, context: eventflow.Context) -> None:
        pass

    app = eventflow.App(clock=clock, handlers=[raises, unencodable, keyed], middleware=[seams])
    async with app:
        token = CALLER.set("request-42")
        try:
            first = await app.invoke(raises, {})
        finally:
            CALLER.reset(token)
        await app.invoke(unencodable, {"bad": True})
        await app.invoke(unencodable, {"bad": False})
        await app.invoke(keyed, {"no": "id"})
        async with clock.autojump():
            await app.drain()
        stats = app.stats()

    # Then each hook call matches its counter
    assert seams.apps == [app]
    assert len(seams.errors) == stats.errors == 4
    assert sorted(seams.errors) == sorted(
        [
            ("raises", 1, "KeyError"),
            ("raises", 2, "KeyError"),
            ("unencodable", 1, "Runtime.MarshalError"),
            ("keyed", 1, "IdempotencyKeyMissing"),
        ]
    )
    assert seams.gave_up == {"dead_letter": 1, "on_failure": 1, "on_success": 1}
    assert stats.dead_letter_errors == 1 and stats.destination_errors == 2
    # and the caller's context came with the event to both of its attempts
    assert [c for rid, c in seams.carried if rid == first.request_id] == [
        {"caller": "request-42"},
        {"caller": "request-42"},
    ]
    assert {"caller": "none"} in [c for rid, c in seams.carried if rid != first.request_id]


async def test_a_raising_started_hook_is_logged_and_the_app_starts() -> None:
    class BadStart:
        def started(self, app: Any) -> None:
            raise RuntimeError("started hook bug")

    @eventflow.handler
    async def fine(event: Any, context: eventflow.Context) -> str:
        return "ok"

    with structlog.testing.capture_logs() as logs:
        async with eventflow.App(handlers=[fine], middleware=[BadStart()]) as app:
            result = await app.invoke(fine, {}, invocation_type="RequestResponse")
    assert result.payload == "ok"
    assert [e["hook"] for e in logs if e["event"] == "middleware.failed"] == ["started"]
