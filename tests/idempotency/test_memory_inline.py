"""The worker claims and completes a MemoryStore's keys inline: the same contract as the
store's own methods (tests/idempotency/test_idempotency.py), checked through the app."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio

import eventflow
from eventflow.sinks import MemorySink
from eventflow.stores import ClaimStatus, MemoryStore
from eventflow.testing import VirtualClock


async def _until_started(started: list[str], count: int) -> None:
    with anyio.fail_after(5):
        while len(started) < count:  # noqa: ASYNC110 - one condition, bounded
            await asyncio.sleep(0)


async def test_a_lapsed_claim_taken_over_is_not_completed_by_its_first_holder() -> None:
    clock = VirtualClock()
    store = MemoryStore()
    started: list[str] = []
    gates = {"first": asyncio.Event(), "second": asyncio.Event()}

    @eventflow.handler(idempotency=eventflow.Idempotency(store=store, key="id", lease=10.0))
    async def slow(event: dict[str, str], context: eventflow.Context) -> str:
        name = "first" if not started else "second"
        started.append(name)
        await gates[name].wait()
        return name

    wall0 = time.time()
    async with eventflow.App(clock=clock, concurrency=4) as app:
        await app.invoke(slow, {"id": "k"})
        await _until_started(started, 1)
        await clock.advance(11.0)  # the first claim's lease has lapsed
        await app.invoke(slow, {"id": "k"})
        await _until_started(started, 2)  # taken over: the duplicate runs

        gates["first"].set()  # the first holder finishes late...
        with anyio.fail_after(5):
            while app.stats().succeeded < 1:  # noqa: ASYNC110 - one condition, bounded
                await asyncio.sleep(0)
        # ...and its result is not recorded: the key is still the second's claim
        status, _ = store.claim_nowait("k", {"id": "k"}, wall0 + 12.0, wall0 + 22.0, True)
        assert status is ClaimStatus.IN_PROGRESS

        gates["second"].set()
        await app.drain()
        again = await app.invoke(slow, {"id": "k"}, invocation_type="RequestResponse")
        stats = app.stats()
    assert started == ["first", "second"]
    assert again.payload == "second"
    # (a RequestResponse call is not an event: only the two invoked events count as such)
    assert stats.attempts == 2 and stats.succeeded == 2 and stats.deduplicated == 1


async def test_a_claim_after_the_worker_waited_for_work_reads_the_clock_anew() -> None:
    clock = VirtualClock()
    store = MemoryStore()
    started: list[str] = []
    gate = asyncio.Event()

    @eventflow.handler(idempotency=eventflow.Idempotency(store=store, key="id", lease=10.0))
    async def job(event: dict[str, str], context: eventflow.Context) -> None:
        started.append(event["id"])
        if event["id"] == "b":
            await gate.wait()

    wall0 = time.time()
    async with eventflow.App(clock=clock, concurrency=1) as app:
        await app.invoke(job, {"id": "a"})
        await app.drain()  # the only worker completed "a", then waits for work
        await clock.advance(100.0)
        await app.invoke(job, {"id": "b"})
        await _until_started(started, 2)
        await clock.advance(5.0)
        # "b" was claimed at 100 s for 10 s: in progress at 105 s, not a lapsed claim
        status, lease_until = store.claim_nowait(
            "b", {"id": "b"}, wall0 + 105.0, wall0 + 115.0, True
        )
        gate.set()
        await app.drain()
    assert status is ClaimStatus.IN_PROGRESS
    assert wall0 + 109.0 <= lease_until <= wall0 + 111.0


async def test_back_to_back_claims_share_one_clock_reading_and_expire_from_completion() -> None:
    clock = VirtualClock()
    store = MemoryStore()

    @eventflow.handler(idempotency=eventflow.Idempotency(store=store, key="id", expires_after=60.0))
    async def job(event: dict[str, int], context: eventflow.Context) -> int:
        return event["id"] * 2

    wall0 = time.time()
    async with eventflow.App(clock=clock, concurrency=1) as app:
        for i in range(50):
            await app.invoke(job, {"id": i})
        await app.drain()
        stats = app.stats()
    assert stats.succeeded == 50 and stats.attempts == 50
    for i in range(50):
        # completed, with the handler's result, until 60 s after completion (and not after)
        assert store.claim_nowait(str(i), {"id": i}, wall0 + 59.0, wall0 + 70.0, True) == (
            ClaimStatus.COMPLETED,
            str(i * 2),
        )
    for i in range(50):
        status, _ = store.claim_nowait(str(i), {"id": i}, wall0 + 61.0, wall0 + 70.0, True)
        assert status is ClaimStatus.CLAIMED


async def test_top_level_key_fields_of_every_json_type_and_missing_ones() -> None:
    store = MemoryStore()
    dlq = MemorySink()
    runs: list[Any] = []

    @eventflow.handler(
        max_retries=0,
        dead_letter=dlq,
        idempotency=eventflow.Idempotency(store=store, key="id"),
    )
    async def h(event: Any, context: eventflow.Context) -> None:
        runs.append(event)

    payloads: list[Any] = [
        {"id": "s-1"},
        {"id": 7},
        {"id": True},  # a bool is not the int 1: its key is JSON "true"
        {"id": 1},
        {"id": {"b": 2, "a": 1}},
        {"id": 7},  # a duplicate of the int key 7
        {"id": "7"},  # the text "7" is the same key as the int 7, with another payload
        {"other": 1},  # no key field: a clear error
        {"id": None},  # a None key: a clear error
        ["id"],  # not an object at all
    ]
    async with eventflow.App() as app:
        for payload in payloads:
            await app.invoke(h, payload)
        await app.drain()
        stats = app.stats()
    assert runs == payloads[:5]
    # the keys the store keeps, through its public non-blocking claim
    assert len(store) == 5
    for key in ("1", "7", '{"a":1,"b":2}', "s-1", "true"):
        assert store.claim_nowait(key, None, 0.0, 1.0, False)[0] is ClaimStatus.COMPLETED, key
    assert stats.succeeded == 6 and stats.deduplicated == 1 and stats.failed == 4
    errors = [m.attributes["ErrorMessage"] for m in dlq.messages]
    assert "first used with a different payload" in errors[0]
    # plain sentences (not a KeyError's quoted repr) that name the path
    assert errors[1].startswith("The idempotency key path 'id' is not in the event: it has no")
    assert errors[2].startswith("The idempotency key of this event is None")
    assert errors[3].startswith("The idempotency key path 'id' is not in the event")
