"""The ``stackTrace`` of a failed attempt, on every path, and what a waiting retry keeps.

The expected trace is computed here, independently of eventflow: the handler is called
directly and ``traceback.format_list`` formats the frames from the handler's on, which is
what eventflow produced before it learned to skip its own frames before extracting them.
"""

from __future__ import annotations

import gc
import sys
import traceback
from typing import Any

import pytest
from structlog.testing import capture_logs

import eventflow
from eventflow._event import make_event
from eventflow._records import function_error
from eventflow.sinks import MemorySink
from eventflow.testing import VirtualClock

PATHS = ("inline", "general", "timeout", "thread", "request_response")


def _lookup(order: dict[str, Any]) -> int:
    return int(order["quantity"]) // 0  # a ZeroDivisionError, with ^ marks under a part


def _price(order: dict[str, Any]) -> int:
    total = _lookup(order) + 1
    return total


async def async_handler(event: dict[str, Any], context: Any) -> int:
    return _price(event) * 2


def plain_handler(event: dict[str, Any], context: Any) -> int:
    return _price(event) * 2


def expected_trace(handler: Any) -> list[str]:
    """The handler's own frames, formatted by the standard library alone."""
    try:
        if handler is async_handler:
            # it awaits nothing: its first step raises, no event loop needed
            handler({"quantity": 3}, None).send(None)
        else:
            handler({"quantity": 3}, None)
    except ZeroDivisionError as exc:
        tb = exc.__traceback__
        assert tb is not None
        frames = traceback.extract_tb(tb)
        # drop this function's frame: keep from the handler's on
        start = next(i for i, f in enumerate(frames) if f.name == handler.__name__)
        return traceback.format_list(frames[start:])
    raise AssertionError("the handler did not raise")


async def _errors_on(path: str, events: int = 2) -> list[dict[str, Any]]:
    on_failure = MemorySink()
    options: dict[str, Any] = {"name": "h", "max_retries": 0, "on_failure": on_failure}
    if path == "general":
        options["concurrency"] = 2  # a capped handler takes the general path
    if path == "timeout":
        options["timeout"] = 30.0
    fn = plain_handler if path == "thread" else async_handler
    h: eventflow.Handler = eventflow.Handler(fn, **options)
    async with eventflow.App(handlers=[h]) as app:
        if path == "request_response":
            errors = []
            for _ in range(events):
                result = await app.invoke(h, {"quantity": 3}, invocation_type="RequestResponse")
                assert result.function_error == "Unhandled"
                errors.append(result.payload)
            return errors
        for _ in range(events):
            await app.invoke(h, {"quantity": 3})
        await app.drain()
    return [m.json()["responsePayload"] for m in on_failure.messages]


@pytest.mark.parametrize("path", PATHS)
async def test_the_stack_trace_starts_at_the_handler_and_is_the_standard_one(path: str) -> None:
    fn = plain_handler if path == "thread" else async_handler
    expected = expected_trace(fn)
    assert len(expected) == 3
    # two failures: the second formats its frames from the cache, and must not differ
    first, second = await _errors_on(path)
    assert first["errorType"] == "ZeroDivisionError"
    assert first["stackTrace"] == expected
    assert second["stackTrace"] == expected
    assert first["stackTrace"][0].startswith(f'  File "{__file__}", line ')
    assert first["stackTrace"][0].split("\n")[0].endswith(f"in {fn.__name__}")
    assert "^" in first["stackTrace"][1]  # the marks under "_lookup(order)" are kept


async def test_the_logged_exception_carries_only_the_handlers_frames() -> None:
    # structlog formats the same exception: its traceback is cut at the handler too
    with capture_logs() as logs:
        await _errors_on("inline", events=1)
    (failed,) = [e for e in logs if e["event"] == "attempt.failed"]
    exc = failed["exc_info"]
    assert isinstance(exc, ZeroDivisionError)
    formatted = traceback.format_tb(exc.__traceback__)
    assert formatted == expected_trace(async_handler)


def _raise_at_depth(depth: int) -> None:
    if depth <= 1:
        raise ConnectionError("the downstream service is unavailable")
    _and_again(depth - 1)


def _and_again(depth: int) -> None:
    # two functions taking turns: Python folds a run of identical frames into one line
    _raise_at_depth(depth)


def _error_of_depth(depth: int, request_id: str) -> dict[str, Any]:
    try:
        _raise_at_depth(depth)
    except ConnectionError as exc:
        return function_error(exc, request_id)
    raise AssertionError("nothing was raised")


def _deep_size(obj: object) -> int:
    """Bytes of ``obj`` and of the containers and strings it holds, each counted once."""
    seen: set[int] = set()
    todo = [obj]
    size = 0
    while todo:
        o = todo.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        size += sys.getsizeof(o)
        if isinstance(o, dict):
            todo.extend(o.keys())
            todo.extend(o.values())
        elif isinstance(o, list | tuple):
            todo.extend(o)
    return size


def _kept_while_waiting(depth: int) -> int:
    """Bytes the event holds, besides what it held when accepted, once its retry waits."""
    rid = "0e9a1c3b-4f6d-4a8e-9b2c-5d7e8f901234"
    ev = make_event(rid, _Runtime(), {"order": 1}, 0.0)  # type: ignore[arg-type]
    accepted = {id(o) for o in gc.get_referents(ev)}
    ev.error = _error_of_depth(depth, rid)
    ev.wait_for_retry()
    added = [o for o in gc.get_referents(ev) if id(o) not in accepted]
    return sum(_deep_size(o) for o in added)


class _Runtime:
    config = None  # all the Event reads of its handler's runtime


def test_what_a_waiting_retry_keeps_does_not_grow_with_the_stack() -> None:
    rid = "0e9a1c3b-4f6d-4a8e-9b2c-5d7e8f901234"
    full3, full30 = _deep_size(_error_of_depth(3, rid)), _deep_size(_error_of_depth(30, rid))
    assert full30 > full3 + 27 * 8  # the measure sees the stack trace's growth
    kept3, kept30 = _kept_while_waiting(3), _kept_while_waiting(30)
    assert kept3 == kept30
    assert kept3 < full3 // 2
    assert kept3 <= 250  # the (type, message) pair: a tuple and two strings


def test_a_waiting_retry_still_reads_as_the_error_object_without_its_trace() -> None:
    rid = "0e9a1c3b-4f6d-4a8e-9b2c-5d7e8f901234"
    ev = make_event(rid, _Runtime(), {}, 0.0)  # type: ignore[arg-type]
    full = _error_of_depth(3, rid)
    ev.error = full
    assert ev.error is full
    ev.wait_for_retry()
    assert ev.error == {
        "errorMessage": "the downstream service is unavailable",
        "errorType": "ConnectionError",
        "requestId": rid,
        "stackTrace": [],
    }
    # another shape (not eventflow's error object) is kept whole
    other = {"errorMessage": "m", "errorType": "T", "requestId": rid, "stackTrace": [], "x": 1}
    ev.error = other
    ev.wait_for_retry()
    assert ev.error is other


async def test_an_event_that_expires_while_its_retry_waits_reports_type_and_message() -> None:
    clock = VirtualClock()
    on_failure = MemorySink()

    async def flaky(event: Any, context: eventflow.Context) -> None:
        _raise_at_depth(3)

    async def busy(event: Any, context: eventflow.Context) -> None:
        await clock.sleep(30.0)

    failing = eventflow.Handler(
        flaky,
        name="flaky",
        max_retries=1,
        retry_delays=(50.0,),
        max_event_age=60.0,
        on_failure=on_failure,
    )
    blocker = eventflow.Handler(busy, name="busy")
    # one worker: the retry, due at 50 s, waits behind "busy" (45 s to 75 s) and expires
    async with eventflow.App(handlers=[failing, blocker], clock=clock, concurrency=1) as app:
        accepted = await app.invoke(failing, {"order": 1})
        await clock.advance(45.0)
        await app.invoke(blocker, {})
        async with clock.autojump():
            await app.drain()
        assert app.stats().expired == 1
    record = on_failure.messages[0].json()
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["responsePayload"] == {
        "errorMessage": "the downstream service is unavailable",
        "errorType": "ConnectionError",
        "requestId": accepted.request_id,
        "stackTrace": [],
    }


async def test_an_event_out_of_retries_reports_its_whole_last_trace() -> None:
    clock = VirtualClock()
    on_failure = MemorySink()

    async def flaky(event: Any, context: eventflow.Context) -> None:
        _raise_at_depth(3)

    h = eventflow.Handler(
        flaky, name="flaky", max_retries=1, retry_delays=(50.0,), on_failure=on_failure
    )
    async with eventflow.App(handlers=[h], clock=clock) as app:
        await app.invoke(h, {"order": 1})
        async with clock.autojump():
            await app.drain()
    record = on_failure.messages[0].json()
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    trace = record["responsePayload"]["stackTrace"]
    assert len(trace) == 6  # flaky, then _raise_at_depth(3), _and_again(2), ... down to 1
    assert trace[0].split("\n")[0].endswith("in flaky")


def _failure_at_one_site() -> BaseException:
    try:
        plain_handler({"quantity": 3}, None)
    except ZeroDivisionError as exc:
        return exc
    raise AssertionError("the handler did not raise")


def test_failures_at_one_site_share_the_text_but_not_the_list() -> None:
    # called here, not by eventflow: the trace starts at this module's caller frame
    expected = expected_trace(plain_handler)
    first = function_error(_failure_at_one_site(), "r-1")
    second = function_error(_failure_at_one_site(), "r-2")  # the same stack, formatted once
    assert first["stackTrace"] == second["stackTrace"]
    assert first["stackTrace"][1:] == expected
    first["stackTrace"].append("changed by a middleware")
    assert second["stackTrace"][1:] == expected
    third = function_error(_failure_at_one_site(), "r-3")
    assert third["stackTrace"] == second["stackTrace"]
