"""The one exception classifier, case by case, through every attempt path."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import pytest

import eventflow
from eventflow.sinks import MemorySink
from eventflow.stores import MemoryStore
from eventflow.testing import VirtualClock

CASES: dict[str, tuple[Callable[[], BaseException], str]] = {
    # what the handler raises -> the errorType of the attempt's error object
    "exception": (lambda: ValueError("bad input"), "ValueError"),
    "sys_exit": (lambda: SystemExit(3), "Runtime.ExitError"),
    "own_cancelled_error": (lambda: asyncio.CancelledError("its own"), "CancelledError"),
}
PATHS = (
    "inline",
    "inline_idempotent",  # the worker's inline path with MemoryStore's non-blocking claim
    "general",
    "general_idempotent",  # the general path's async claim
    "middleware",  # middleware sends every attempt down the general path
    "timeout",
    "thread",
    "request_response",
)


class _Counting(eventflow.Middleware):
    def __init__(self) -> None:
        self.attempts = 0

    def attempt(self, event: eventflow.EventInfo) -> AbstractAsyncContextManager[object]:
        self.attempts += 1
        return nullcontext()


def _handler(path: str, raised: BaseException, on_failure: MemorySink) -> eventflow.Handler:
    options: dict[str, Any] = {"name": "h", "max_retries": 0, "on_failure": on_failure}
    if path.startswith("general"):
        options["concurrency"] = 2  # a capped handler takes the general path
    if path.endswith("idempotent"):
        options["idempotency"] = eventflow.Idempotency(store=MemoryStore())
    if path == "timeout":
        options["timeout"] = 30.0
    if path == "thread":

        def plain(event: Any, context: eventflow.Context) -> None:
            raise raised

        return eventflow.Handler(plain, **options)

    async def coro(event: Any, context: eventflow.Context) -> None:
        raise raised

    return eventflow.Handler(coro, **options)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", sorted(CASES))
async def test_each_case_is_the_same_function_error_on_every_path(case: str, path: str) -> None:
    make, error_type = CASES[case]
    on_failure = MemorySink()
    h = _handler(path, make(), on_failure)
    counting = _Counting()
    middleware = [counting] if path == "middleware" else []
    async with eventflow.App(handlers=[h], middleware=middleware) as app:
        if path == "request_response":
            result = await app.invoke(h, {}, invocation_type="RequestResponse")
            assert result.function_error == "Unhandled"
            error = result.payload
        else:
            await app.invoke(h, {})
            await app.drain()
            stats = app.stats()
            assert (stats.attempts, stats.errors, stats.failed) == (1, 1, 1)
            error = on_failure.messages[0].json()["responsePayload"]
    assert error["errorType"] == error_type
    assert counting.attempts == (1 if path == "middleware" else 0)


@pytest.mark.parametrize("path", ["timeout", "thread_timeout"])
async def test_a_timeout_is_task_timed_out(path: str) -> None:
    clock = VirtualClock()
    on_failure = MemorySink()
    release = asyncio.Event()

    if path == "thread_timeout":
        import threading

        gate = threading.Event()

        def plain(event: Any, context: eventflow.Context) -> None:
            gate.wait(30)

        h: eventflow.Handler = eventflow.Handler(
            plain, name="h", max_retries=0, timeout=1.0, on_failure=on_failure
        )
    else:

        async def coro(event: Any, context: eventflow.Context) -> None:
            await release.wait()

        h = eventflow.Handler(coro, name="h", max_retries=0, timeout=1.0, on_failure=on_failure)
    async with eventflow.App(handlers=[h], clock=clock) as app:
        await app.invoke(h, {})
        async with clock.autojump():
            await app.drain()
        if path == "thread_timeout":
            gate.set()
    error = on_failure.messages[0].json()["responsePayload"]
    assert error["errorType"] == "Sandbox.Timedout"
    assert "timed out" in error["errorMessage"]
