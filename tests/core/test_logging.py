"""Structured logs: one request ID across attempts, levels by outcome, no global config."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

import eventflow
from eventflow.sinks import MemorySink
from eventflow.testing import VirtualClock


async def test_every_entry_about_an_event_carries_its_context() -> None:
    clock = VirtualClock()

    @eventflow.handler(dead_letter=MemorySink())
    async def broken(event: object, context: eventflow.Context) -> None:
        context.log.info("handler.working", step="resize")
        raise ValueError("Simulating error")

    with capture_logs() as logs:
        async with eventflow.App(clock=clock, log_success=True) as app:
            accepted = await app.invoke(broken, {"key1": "value1"})
            async with clock.autojump():
                await app.drain()

    about_event = [e for e in logs if "request_id" in e]
    assert about_event, logs
    for entry in about_event:
        assert entry["request_id"] == accepted.request_id
        assert entry["handler"] == "broken"
        assert entry["attempt"] in (1, 2, 3)
    by_name: dict[str, list[Any]] = {}
    for e in about_event:
        by_name.setdefault(str(e["event"]), []).append(e)
    failed = by_name["attempt.failed"]
    assert [e["attempt"] for e in failed] == [1, 2, 3]
    assert all(e["log_level"] == "error" for e in failed)
    assert all(isinstance(e["exc_info"], ValueError) for e in failed)
    assert [e["attempt"] for e in by_name["attempt.started"]] == [1, 2, 3]
    assert [e["delay_s"] for e in by_name["retry.scheduled"]] == [60.0, 120.0]
    assert by_name["event.dead_lettered"][0]["log_level"] == "warning"
    # the handler's own logger is bound to the event too
    assert [e["attempt"] for e in by_name["handler.working"]] == [1, 2, 3]


async def test_entries_through_a_shared_queue_carry_the_context_too() -> None:
    from eventflow.queues import MemoryQueue

    app = eventflow.App(queue=MemoryQueue(), log_success=True)

    @app.handler
    async def fine(event: object, context: eventflow.Context) -> None:
        return None

    with capture_logs() as logs:
        async with app:
            accepted = await app.invoke(fine, {"k": 1})
            await app.drain()
    about_event = [e for e in logs if "request_id" in e]
    assert {e["event"] for e in about_event} >= {"event.enqueued", "attempt.succeeded"}
    for entry in about_event:
        assert (entry["request_id"], entry["handler"]) == (accepted.request_id, "fine")
        # attempts made so far: 0 while it waits in the queue
        assert entry["attempt"] == (0 if entry["event"] == "event.enqueued" else 1), entry


async def test_success_logs_below_error_level() -> None:
    @eventflow.handler
    async def fine(event: object, context: eventflow.Context) -> int:
        return 1

    with capture_logs() as logs:
        async with eventflow.App(log_success=True) as app:
            await app.invoke(fine, None)
            await app.drain()
    levels = {e["event"]: e["log_level"] for e in logs if "request_id" in e}
    assert levels == {"attempt.started": "info", "attempt.succeeded": "info"}


@pytest.mark.parametrize("path", ["inline", "general", "thread"])
async def test_success_lines_are_opt_in_and_failures_always_logged(path: str) -> None:
    clock = VirtualClock()
    timeout = 5.0 if path == "general" else None

    async def coro(event: dict[str, int], context: eventflow.Context) -> None:
        if event["n"] == 1 and context.attempt == 1:
            raise ValueError("first attempt fails")

    def plain(event: dict[str, int], context: eventflow.Context) -> None:
        if event["n"] == 1 and context.attempt == 1:
            raise ValueError("first attempt fails")

    h = eventflow.handler(plain if path == "thread" else coro, name="h", timeout=timeout)
    with capture_logs() as logs:
        async with eventflow.App(clock=clock, handlers=[h]) as app:
            assert app.log_success is False
            await app.invoke(h, {"n": 0})
            await app.invoke(h, {"n": 1})
            async with clock.autojump():
                await app.drain()
    names = [e["event"] for e in logs if "request_id" in e]
    # no line for the success of either event; the failure and its retry are logged
    assert sorted(names) == ["attempt.failed", "retry.scheduled"]


async def test_log_success_can_be_set_before_start_only() -> None:
    app = eventflow.App()
    app.log_success = True
    assert app.log_success
    async with app:
        with pytest.raises(eventflow.ConfigurationError, match="before the app starts"):
            app.log_success = False


@pytest.mark.parametrize("path", ["inline", "general", "thread", "sync_call"])
async def test_a_handlers_own_structlog_lines_carry_the_attempt_context(path: str) -> None:
    # what structlog's default configuration does: merge_contextvars first
    structlog.reset_defaults()
    timeout = 5.0 if path == "general" else None

    async def coro(event: object, context: eventflow.Context) -> None:
        structlog.get_logger("mine").warning("handler.own_line")

    def plain(event: object, context: eventflow.Context) -> None:
        structlog.get_logger("mine").warning("handler.own_line")

    h = eventflow.handler(plain if path == "thread" else coro, name="h", timeout=timeout)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        async with eventflow.App(handlers=[h]) as app:
            if path == "sync_call":
                request_id = (await app.invoke(h, {}, invocation_type="RequestResponse")).request_id
            else:
                request_id = (await app.invoke(h, {})).request_id
                await app.drain()
    own = [e for e in logs if e["event"] == "handler.own_line"]
    assert len(own) == 1
    assert (own[0]["request_id"], own[0]["handler"], own[0]["attempt"]) == (request_id, "h", 1)
    # and unbound again once the attempt is over
    assert structlog.contextvars.get_contextvars() == {}


def test_library_never_configures_structlog(capsys: pytest.CaptureFixture[str]) -> None:
    # importing and using eventflow leaves structlog's configuration to the application
    import asyncio

    structlog.reset_defaults()

    @eventflow.handler
    async def h(event: object, context: eventflow.Context) -> None:
        return None

    async def main() -> str:
        async with eventflow.App(log_success=True) as app:
            accepted = await app.invoke(h, None)
            await app.drain()
        return accepted.request_id

    request_id = asyncio.run(main())
    assert not structlog.is_configured()
    # structlog's own defaults printed the entries
    assert request_id in capsys.readouterr().out


async def test_the_context_survives_a_handler_that_clears_or_rebinds_it() -> None:
    # one worker runs every event inline: what a handler does to the log context must
    # not leak into the next event's lines, and a retry's lines say attempt 2
    structlog.reset_defaults()
    clock = VirtualClock()

    async def coro(event: dict[str, int], context: eventflow.Context) -> None:
        structlog.get_logger("mine").warning("handler.own_line", n=event["n"])
        if event["n"] == 0:
            structlog.contextvars.clear_contextvars()
        elif event["n"] == 1:
            structlog.contextvars.bind_contextvars(handler="not-h")
        elif event["n"] == 2 and context.attempt == 1:
            raise ValueError("the first attempt fails")

    h = eventflow.handler(coro, name="h", retry_delays=(1.0,))
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        async with eventflow.App(clock=clock, handlers=[h], concurrency=1) as app:
            ids = [(await app.invoke(h, {"n": n})).request_id for n in range(4)]
            async with clock.autojump():
                await app.drain()
    own = [
        (e["n"], e["request_id"], e["handler"], e["attempt"])
        for e in logs
        if e["event"] == "handler.own_line"
    ]
    assert sorted(own) == [
        (0, ids[0], "h", 1),
        (1, ids[1], "h", 1),
        (2, ids[2], "h", 1),
        (2, ids[2], "h", 2),
        (3, ids[3], "h", 1),
    ]


async def test_keys_a_handler_scopes_to_its_attempt_do_not_reach_the_next_event() -> None:
    # the README's advice: bound_contextvars (or context.log.bind) scopes a key to the
    # attempt; bind_contextvars alone outlives it in the worker, as in a Lambda sandbox
    structlog.reset_defaults()

    async def scoped(event: dict[str, int], context: eventflow.Context) -> None:
        if event["n"] == 0:
            with structlog.contextvars.bound_contextvars(order_id="order-0"):
                structlog.get_logger("mine").warning("own", n=0)
        else:
            structlog.get_logger("mine").warning("own", n=event["n"])

    async def unscoped(event: dict[str, int], context: eventflow.Context) -> None:
        if event["n"] == 0:
            structlog.contextvars.bind_contextvars(order_id="order-0")
        structlog.get_logger("mine").warning("own", n=event["n"])

    seen: dict[str, list[tuple[int, object]]] = {}
    for fn in (scoped, unscoped):
        h = eventflow.handler(fn, name=fn.__name__)
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            async with eventflow.App(handlers=[h], concurrency=1) as app:
                for n in range(3):
                    await app.invoke(h, {"n": n})
                await app.drain()
        seen[fn.__name__] = [(e["n"], e.get("order_id")) for e in logs if e["event"] == "own"]
        structlog.contextvars.clear_contextvars()
    assert seen["scoped"] == [(0, "order-0"), (1, None), (2, None)]
    assert seen["unscoped"] == [(0, "order-0"), (1, "order-0"), (2, "order-0")]
