"""A claim the store cannot write fails its own event only; the store stays usable.

A lone surrogate (``"\\ud800"``) is valid JSON but UTF-8 cannot encode it, so neither a
fingerprint nor SQLite can take it. Payloads with one are refused at the door (see
tests/core/test_payload_limits.py); a key made by a key function can still hold one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import eventflow
from eventflow._idempotency import fingerprint
from eventflow.sinks import MemorySink
from eventflow.stores import ClaimStatus, MemoryStore, SQLiteStore

LONE = "\ud800"


def _claim(store: Any, key: str, payload: Any, *, validate: bool = True) -> Any:
    now = time.time()
    return store.claim(key, payload, now=now, lease_until=now + 60, validate=validate)


def _writable_by_another_connection(path: Path) -> None:
    # a transaction left open holds SQLite's write lock: another writer would time out
    with sqlite3.connect(path, timeout=0.5, isolation_level=None) as other:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")


def test_fingerprint_of_an_unencodable_payload_is_a_clear_error() -> None:
    with pytest.raises(eventflow.InvalidPayload, match="lone surrogate"):
        fingerprint({"s": LONE})


async def test_sqlite_group_commit_with_unwritable_claims_fails_only_those(
    tmp_path: Path,
) -> None:
    path = tmp_path / "claims.db"
    store = SQLiteStore(path)
    try:
        with anyio.fail_after(30):  # today: the group's other claims never get an answer
            # the first claim runs alone; the next five queue up and commit as one group
            answers = await asyncio.gather(
                _claim(store, "first", {"n": 0}),
                _claim(store, "good-1", {"n": 1}),
                _claim(store, "bad-payload", {"s": LONE}),
                _claim(store, "good-2", {"n": 2}),
                _claim(store, "bad-key-" + LONE, {"n": 3}, validate=False),
                _claim(store, "good-3", {"n": 4}),
                return_exceptions=True,
            )
            first, good1, bad_payload, good2, bad_key, good3 = answers
            for good in (first, good1, good2, good3):
                assert not isinstance(good, BaseException), good
                assert good.status is ClaimStatus.CLAIMED
            for bad, what in ((bad_payload, "bad-payload"), (bad_key, "bad-key-")):
                assert isinstance(bad, eventflow.InvalidPayload), bad
                assert "lone surrogate" in str(bad) or "surrogates not allowed" in str(bad)
                assert what in str(bad)
            # a result the store cannot write fails that completion alone
            with pytest.raises(eventflow.InvalidPayload, match="good-1"):
                await store.complete("good-1", good1.token, '"' + LONE + '"', expires_at=1e12)
            # the store and the file go on: later claims, and other connections, write
            later = await _claim(store, "later", {"n": 5})
            assert later.status is ClaimStatus.CLAIMED
            await store.complete("good-2", good2.token, '"ok"', expires_at=time.time() + 60)
            again = await _claim(store, "good-2", {"n": 2})
            assert (again.status, again.result) == (ClaimStatus.COMPLETED, '"ok"')
        _writable_by_another_connection(path)
        with sqlite3.connect(path) as conn:
            keys = {k for (k,) in conn.execute("SELECT key FROM eventflow_idempotency")}
        assert keys == {"first", "good-1", "good-2", "good-3", "later"}
    finally:
        await store.aclose()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_an_unwritable_key_fails_its_own_event_and_the_others_run(
    kind: str, tmp_path: Path
) -> None:
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "app.db")
    dlq = MemorySink()
    ran: list[int] = []

    def key(event: dict[str, Any]) -> str:
        # a key function that builds text a store may not be able to write
        return LONE + str(event["n"]) if event["bad"] else f"order-{event['n']}"

    @eventflow.handler(
        max_retries=0,
        dead_letter=dlq,
        idempotency=eventflow.Idempotency(store=store, key=key),
    )
    async def h(event: dict[str, Any], context: eventflow.Context) -> None:
        ran.append(event["n"])

    async with eventflow.App(shutdown_timeout=10) as app:
        with anyio.fail_after(30):
            for n in range(40):
                await app.invoke(h, {"n": n, "bad": n % 10 == 3})
            await app.drain()
            stats = app.stats()
    good = [n for n in range(40) if n % 10 != 3]
    if kind == "memory":  # it writes no text, so it takes any key
        assert sorted(ran) == list(range(40)) and dlq.messages == []
        return
    assert sorted(ran) == good
    assert stats.succeeded == len(good) and stats.failed == 4
    assert len(dlq.messages) == 4
    for message in dlq.messages:
        assert "lone surrogate" in message.attributes["ErrorMessage"]
    _writable_by_another_connection(tmp_path / "app.db")
