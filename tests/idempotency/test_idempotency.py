"""Idempotency: exactly-once effects on top of at-least-once delivery (Memory and SQLite)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import multiprocessing
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventflow
from eventflow._idempotency import canonical_json, natural_key, resolve_key
from eventflow.sinks import MemorySink
from eventflow.stores import ClaimStatus, MemoryStore, SQLiteStore
from eventflow.testing import VirtualClock, check_store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"

StoreFactory = Callable[[Path], Any]
STORES: dict[str, StoreFactory] = {
    "memory": lambda tmp: MemoryStore(),
    "sqlite": lambda tmp: SQLiteStore(tmp / "idempotency.db"),
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return STORES[request.param](tmp_path)


async def test_1000_invocations_of_100_keys_run_the_handler_100_times(store: Any) -> None:
    runs: Counter[int] = Counter()

    @eventflow.handler(idempotency=eventflow.Idempotency(store=store, key="id"))
    async def charge(event: dict[str, int], context: eventflow.Context) -> dict[str, int]:
        runs[event["id"]] += 1
        await asyncio.sleep(0)  # let duplicates arrive while the first is in progress
        return {"charged": event["id"]}

    async with eventflow.App(concurrency=200) as app:
        await asyncio.gather(*(app.invoke(charge, {"id": k % 100}) for k in range(1000)))
        await app.drain()
        stats = app.stats()
    assert sum(runs.values()) == 100 and set(runs.values()) == {1}
    assert stats.succeeded == 1000 and stats.deduplicated == 900
    assert stats.attempts == 100


async def test_failed_first_attempt_releases_the_claim_and_the_retry_completes(
    store: Any,
) -> None:
    clock = VirtualClock()
    attempts: list[int] = []

    @eventflow.handler(
        retry_delays=(1.0,), idempotency=eventflow.Idempotency(store=store, key="order")
    )
    async def ship(event: dict[str, str], context: eventflow.Context) -> str:
        attempts.append(context.attempt)
        if context.attempt == 1:
            raise ConnectionError("carrier API down")
        return f"shipped {event['order']}"

    async with eventflow.App(clock=clock) as app:
        await app.invoke(ship, {"order": "A-1"})
        async with clock.autojump():
            await app.drain()
        # a later duplicate does not run: it returns the stored result
        again = await app.invoke(ship, {"order": "A-1"}, invocation_type="RequestResponse")
        await app.invoke(ship, {"order": "A-1"})
        await app.drain()
        stats = app.stats()
    assert attempts == [1, 2]
    assert again.payload == "shipped A-1" and again.function_error is None
    assert stats.deduplicated == 2 and stats.succeeded == 2


async def test_same_key_with_another_payload_is_a_conflict(store: Any) -> None:
    dlq = MemorySink()

    @eventflow.handler(
        max_retries=0,
        dead_letter=dlq,
        idempotency=eventflow.Idempotency(store=store, key="id"),
    )
    async def h(event: dict[str, Any], context: eventflow.Context) -> str:
        return "ok"

    async with eventflow.App() as app:
        await app.invoke(h, {"id": 1, "amount": 10})
        await app.drain()
        result = await app.invoke(h, {"id": 1, "amount": 99}, invocation_type="RequestResponse")
        await app.invoke(h, {"id": 1, "amount": 99})
        await app.drain()
    assert result.function_error == "Unhandled"
    assert result.payload["errorType"] == "IdempotencyConflict"
    assert "first used with a different payload" in result.payload["errorMessage"]
    assert "different payload" in dlq.messages[0].attributes["ErrorMessage"]


async def test_unreachable_store_fails_the_attempt_and_is_retried(tmp_path: Path) -> None:
    clock = VirtualClock()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database folder should be")
    store = SQLiteStore(blocker / "db.sqlite")
    ran: list[int] = []
    dlq = MemorySink()

    @eventflow.handler(
        max_retries=1,
        retry_delays=(5.0,),
        dead_letter=dlq,
        idempotency=eventflow.Idempotency(store=store, key="id"),
    )
    async def h(event: dict[str, int], context: eventflow.Context) -> None:
        ran.append(event["id"])

    async with eventflow.App(clock=clock) as app:
        await app.invoke(h, {"id": 1})
        async with clock.autojump():
            await app.drain()
        stats = app.stats()
    assert ran == []  # never a silent pass-through
    assert stats.attempts == 2 and stats.failed == 1
    assert "cannot be opened" in dlq.messages[0].attributes["ErrorMessage"]


async def test_sqlite_completed_key_survives_an_app_restart(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    runs: list[str] = []

    def make_handler() -> eventflow.Handler:
        eventflow.reset_default_registry()

        @eventflow.handler(idempotency=eventflow.Idempotency(store=SQLiteStore(path)))
        async def h(event: dict[str, str], context: eventflow.Context) -> str:
            runs.append(event["k"])
            return event["k"].upper()

        return h

    h1 = make_handler()
    async with eventflow.App(handlers=[h1]) as app:
        await app.invoke(h1, {"k": "x"})
        await app.drain()
    h2 = make_handler()
    async with eventflow.App(handlers=[h2]) as app:
        result = await app.invoke(h2, {"k": "x"}, invocation_type="RequestResponse")
        assert app.stats().deduplicated == 1  # answered from the file, not run
    assert runs == ["x"]
    assert result.payload == "X"


def _claim_in_other_process(path: str, key: str, lease_until: float) -> None:
    # what a process that died mid-attempt leaves behind: a claim and nothing else
    async def main() -> None:
        store = SQLiteStore(path)
        claim = await store.claim(
            key, {"k": key}, now=time.time(), lease_until=lease_until, validate=True
        )
        assert claim.status is ClaimStatus.CLAIMED
        await store.aclose()

    asyncio.run(main())


async def test_sqlite_claim_of_a_dead_process_is_taken_over_when_its_lease_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    lease_until = time.time() + 120.0
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_claim_in_other_process, args=(str(path), "job-7", lease_until))
    proc.start()
    await asyncio.to_thread(proc.join, 60)
    assert proc.exitcode == 0
    with contextlib.closing(sqlite3.connect(path)) as conn:  # `with conn` would not close it
        assert conn.execute(
            "SELECT status FROM eventflow_idempotency WHERE key = 'job-7'"
        ).fetchone() == ("IN_PROGRESS",)

    clock = VirtualClock()
    runs: list[float] = []

    @eventflow.handler(idempotency=eventflow.Idempotency(store=SQLiteStore(path), key="k"))
    async def job(event: dict[str, str], context: eventflow.Context) -> str:
        runs.append(clock.now())
        return "done"

    wall_at_start = time.time()  # the app's wall clock starts here, then moves virtually
    async with eventflow.App(clock=clock) as app:
        remaining = lease_until - wall_at_start
        await app.invoke(job, {"k": "job-7"})
        # the claim is answered from SQLite's thread: wait until the event is parked
        with anyio.fail_after(10):
            while app.stats().scheduled != 1:  # noqa: ASYNC110 - one condition, bounded
                await asyncio.sleep(0.01)
        # not before the lease ends...
        await clock.advance(remaining - 5.0)
        assert runs == [] and app.stats().attempts == 0
        # ...but once it has
        async with clock.autojump():
            await app.drain()
        stats = app.stats()
    assert len(runs) == 1
    assert remaining - 0.01 <= runs[0] <= remaining + 1.5
    assert stats.succeeded == 1 and stats.attempts == 1


def _load(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text())


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (
            "s3/s3-put.json",
            "s3:lambda-artifacts-deafc19498e3f2df/b21b84d653bb07b05b1e6b33684dc11b"
            "#0C0F6F405D6ED209E1",
        ),
        ("real-captured/sns-lambda-s3-notification.json", None),
        ("real-captured/eventbridge-s3-object-created.json", None),
        ("sns/sns-lambda-event.json", None),
        ("eventbridge/eventbridge-custom-event.json", None),
        ("sqs/sqs-lambda-event-message-attributes.json", None),
    ],
)
def test_natural_keys_of_the_samples(sample: str, expected: str | None) -> None:
    event = _load(sample)
    key = natural_key(event)
    if expected is not None:
        assert key == expected
    elif "Records" in event and "Sns" in event["Records"][0]:
        assert key == f"sns:{event['Records'][0]['Sns']['MessageId']}"
    elif "Records" in event:
        assert key == "|".join(f"sqs:{r['messageId']}" for r in event["Records"])
    else:
        assert key == f"eventbridge:{event['id']}"
    assert natural_key(json.loads(json.dumps(event))) == key  # stable


def test_natural_key_of_other_payloads_is_a_stable_hash() -> None:
    assert natural_key({"b": 1, "a": [1, 2]}) == natural_key({"a": [1, 2], "b": 1})
    assert natural_key({"a": 1}) != natural_key({"a": 2})
    assert natural_key("x").startswith("sha256:")


def test_bad_idempotency_options() -> None:
    with pytest.raises(eventflow.ConfigurationError, match="expires_after"):
        eventflow.Idempotency(expires_after=0)
    with pytest.raises(eventflow.ConfigurationError, match="store"):
        eventflow.Idempotency(store=object())  # type: ignore[arg-type]
    with pytest.raises(eventflow.ConfigurationError, match="idempotency must be"):

        @eventflow.handler(idempotency=True)  # type: ignore[call-overload, untyped-decorator]
        async def h(event: object, context: eventflow.Context) -> None:
            return None


async def test_missing_key_path_is_a_clear_function_error() -> None:
    @eventflow.handler(idempotency=eventflow.Idempotency(key="detail.orderId"))
    async def h(event: object, context: eventflow.Context) -> None:
        return None

    async with eventflow.App() as app:
        result = await app.invoke(h, {"detail": {}}, invocation_type="RequestResponse")
    assert result.function_error == "Unhandled"
    assert "has no 'detail.orderId'" in result.payload["errorMessage"]


@pytest.mark.parametrize("kind", sorted(STORES))
async def test_the_store_passes_the_store_kit(kind: str, tmp_path: Path) -> None:
    made = itertools.count()

    def fresh() -> Any:
        home = tmp_path / f"store-{next(made)}"
        home.mkdir()
        return STORES[kind](home)

    await check_store(fresh)


def test_memory_store_drops_the_oldest_settled_records_beyond_max_records() -> None:
    store = MemoryStore(max_records=10)
    for i in range(10):
        _, token = store.claim_nowait(f"done-{i}", i, 1000.0, 1060.0, True)
        store.complete_nowait(f"done-{i}", token, "null", 9000.0)
    status, token = store.claim_nowait("live", 0, 1000.0, 1060.0, True)
    assert status is ClaimStatus.CLAIMED and len(store) == 9  # the oldest tenth, then "live"
    assert store.claim_nowait("done-0", 0, 1001.0, 1061.0, True)[0] is ClaimStatus.CLAIMED
    assert store.claim_nowait("done-9", 9, 1001.0, 1061.0, True)[0] is ClaimStatus.COMPLETED
    assert store.claim_nowait("live", 0, 1001.0, 1061.0, True)[0] is ClaimStatus.IN_PROGRESS


def test_keys_as_text() -> None:
    def key_of(key: Any, event: Any) -> str:
        return resolve_key(eventflow.Idempotency(key=key), event)

    assert key_of("id", {"id": 7}) == "7"
    assert key_of("id", {"id": "7"}) == "7"
    assert key_of("id", {"id": True}) == "true"
    assert key_of("id", {"id": {"b": 1, "a": 2}}) == '{"a":2,"b":1}'
    assert key_of("a.b", {"a": {"b": 7}}) == "7"
    assert key_of("a.0", {"a": [7]}) == "7"
    assert key_of(lambda e: e["n"] * 2, {"n": 7}) == "14"
    assert key_of(lambda e: "x", {}) == "x"
    assert key_of(None, {"b": 1}) == natural_key({"b": 1})
    with pytest.raises(KeyError, match="is None"):
        key_of("id", {"id": None})
    with pytest.raises(KeyError, match="has no 'id'"):
        key_of("id", {"other": 1})
    with pytest.raises(KeyError, match="has no 'id'"):
        key_of("id", [1])


class _FlakyStore(MemoryStore):
    """A non-blocking store whose next claim and next completion raise."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_claim = self.fail_complete = True

    def claim_nowait(
        self, key: str, payload: Any, now: float, lease_until: float, validate: bool
    ) -> tuple[ClaimStatus, Any]:
        if self.fail_claim:
            self.fail_claim = False
            raise OSError("store down")
        return super().claim_nowait(key, payload, now, lease_until, validate)

    def complete_nowait(self, key: str, token: Any, result: str, expires_at: float) -> None:
        if self.fail_complete:
            self.fail_complete = False
            raise OSError("store down")
        super().complete_nowait(key, token, result, expires_at)


async def test_a_failing_non_blocking_store_fails_the_claim_but_not_the_result() -> None:
    clock = VirtualClock()
    store = _FlakyStore()
    attempts: list[int] = []

    @eventflow.handler(
        retry_delays=(1.0,), idempotency=eventflow.Idempotency(store=store, key="id")
    )
    async def h(event: dict[str, int], context: eventflow.Context) -> int:
        attempts.append(context.attempt)
        return event["id"]

    async with eventflow.App(clock=clock) as app:
        # the claim raises: a failed attempt; the retry claims, and its completion raises,
        # which is logged and leaves the claim to its lease, but the attempt succeeded
        await app.invoke(h, {"id": 1})
        async with clock.autojump():
            await app.drain()
        await app.invoke(h, {"id": 2})
        await app.drain()
        stats = app.stats()
    assert attempts == [2, 1]
    assert stats.attempts == 3 and stats.succeeded == 2 and stats.failed == 0
    now = time.time()
    one = store.claim_nowait("1", {"id": 1}, now, now + 1, True)
    assert one[0] is ClaimStatus.IN_PROGRESS
    assert store.claim_nowait("2", {"id": 2}, now, now + 1, True) == (ClaimStatus.COMPLETED, "2")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(_json_values)
def test_canonical_json_is_json_dumps_with_sorted_keys(value: Any) -> None:
    # natural keys and fingerprints are stored: their text must never change
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected
