"""Events and results cross the handler boundary as JSON would, as in Lambda.

Each attempt gets its own copy of the event: handlers change their event
(``event.pop("Records")``), and the retry, the dead-letter message, the destination records,
the idempotency check and the caller must not see that. A synchronous result comes back as
JSON decodes it, whether it ran now or is a duplicate answered from the store.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from ef_assertions import assert_conserved

import eventflow
from eventflow.sinks import MemorySink
from eventflow.testing import VirtualClock

NESTED: dict[str, Any] = {
    "Records": [{"s3": {"bucket": {"name": "photos"}, "object": {"key": "a.jpg"}}}],
    "tags": ("x", {"y": 1}),
    "n": 1,
}


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _mutate(event: Any) -> None:
    event["Records"][0]["s3"]["object"]["key"] = "changed"
    event["tags"][1]["y"] = 2
    event.pop("n")
    event["added"] = True


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["inline", "with-timeout"])
async def test_every_attempt_sees_the_original_event(timeout: float | None) -> None:
    clock = VirtualClock()
    seen: list[Any] = []
    dlq, on_failure = MemorySink(), MemorySink()
    payload = {**NESTED}

    @eventflow.handler(timeout=timeout, dead_letter=dlq, on_failure=on_failure)
    async def resize(event: Any, context: eventflow.Context) -> None:
        seen.append(_json(event))
        _mutate(event)
        raise ValueError("always fails")

    async with eventflow.App(clock=clock) as app:
        await app.invoke(resize, payload)
        async with clock.autojump():
            await app.drain()
        stats = app.stats()
    original = _json(NESTED)
    assert seen == [original] * 3
    assert dlq.messages[0].json() == original
    assert on_failure.messages[0].json()["requestPayload"] == original
    assert payload == NESTED  # the caller's object is untouched too
    assert_conserved(stats)


def test_sync_handler_and_request_response_get_a_copy() -> None:
    async def main() -> None:
        @eventflow.handler
        def tag(event: dict[str, Any], context: eventflow.Context) -> dict[str, Any]:
            event["tagged"] = True
            return event

        payload = {"id": 1, "inner": {"a": [1, 2]}}
        async with eventflow.App() as app:
            result = await app.invoke(tag, payload, invocation_type="RequestResponse")
        assert result.payload == {"id": 1, "inner": {"a": [1, 2]}, "tagged": True}
        assert payload == {"id": 1, "inner": {"a": [1, 2]}}

    asyncio.run(main())


async def test_success_record_carries_the_original_request_payload() -> None:
    on_success = MemorySink()

    @eventflow.handler(on_success=on_success)
    async def h(event: dict[str, Any], context: eventflow.Context) -> str:
        event.clear()
        return "done"

    async with eventflow.App() as app:
        await app.invoke(h, {"id": 7})
        await app.drain()
    assert on_success.messages[0].json()["requestPayload"] == {"id": 7}


@pytest.mark.parametrize("flat", [True, False], ids=["flat", "nested"])
async def test_idempotency_duplicate_of_a_mutating_handler_is_deduplicated(flat: bool) -> None:
    """The stored payload is the original, so a later duplicate is no conflict."""
    runs = 0

    @eventflow.handler(max_retries=0, idempotency=eventflow.Idempotency(key="id"))
    async def h(event: dict[str, Any], context: eventflow.Context) -> str:
        nonlocal runs
        runs += 1
        event["seen"] = True
        if not flat:
            event["inner"]["x"] = 2
        return "ok"

    def payload() -> dict[str, Any]:
        return {"id": 1} if flat else {"id": 1, "inner": {"x": 1}}

    async with eventflow.App() as app:
        await app.invoke(h, payload())
        await app.drain()
        again = await app.invoke(h, payload(), invocation_type="RequestResponse")
        await app.invoke(h, payload())
        await app.drain()
        stats = app.stats()
    assert again.function_error is None and again.payload == "ok"
    assert runs == 1 and stats.deduplicated == 2 and stats.failed == 0


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
async def test_request_response_result_is_what_json_gives_back(idempotent: bool) -> None:
    cached: dict[Any, Any] = {1: "one", "pair": (1, 2), "x": 1.5}
    idempotency = eventflow.Idempotency(key="id") if idempotent else None

    @eventflow.handler(idempotency=idempotency)
    async def h(event: dict[str, Any], context: eventflow.Context) -> dict[Any, Any]:
        return cached

    async with eventflow.App() as app:
        first = await app.invoke(h, {"id": 1}, invocation_type="RequestResponse")
        again = await app.invoke(h, {"id": 1}, invocation_type="RequestResponse")
    expected = {"1": "one", "pair": [1, 2], "x": 1.5}
    assert first.payload == expected and again.payload == expected
    first.payload["pair"].append(3)  # the caller's result is its own
    assert cached["pair"] == (1, 2)


@pytest.mark.parametrize("kind", ["inline", "timeout", "sync"])
async def test_sys_exit_in_a_handler_is_lambdas_exit_error_and_is_retried(kind: str) -> None:
    """In Lambda the runtime exits and the attempt fails; the host process here lives on."""
    clock = VirtualClock()
    dlq, on_failure = MemorySink(), MemorySink()
    attempts: list[int] = []

    def body(context: eventflow.Context) -> None:
        attempts.append(context.attempt)
        raise SystemExit(3)

    if kind == "sync":

        @eventflow.handler(dead_letter=dlq, on_failure=on_failure)
        def quits(event: Any, context: eventflow.Context) -> None:
            body(context)

    else:

        @eventflow.handler(
            dead_letter=dlq, on_failure=on_failure, timeout=5.0 if kind == "timeout" else None
        )
        async def quits(event: Any, context: eventflow.Context) -> None:
            body(context)

    async with eventflow.App(clock=clock) as app:
        accepted = await app.invoke(quits, {"id": 1})
        async with clock.autojump():
            await app.drain()
        stats = app.stats()
    assert attempts == [1, 2, 3]
    message = f"RequestId: {accepted.request_id} Error: Runtime exited with error: exit status 3"
    assert dlq.messages[0].attributes["ErrorMessage"] == message
    record = on_failure.messages[0].json()
    assert record["responsePayload"]["errorType"] == "Runtime.ExitError"
    assert stats.failed == 1
    assert_conserved(stats)
