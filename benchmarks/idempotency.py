"""Idempotency overhead: the same no-op handler with and without each store, same run.

10,000 events with distinct keys go through ``eventflow.App`` (invoke, then drain); the
figure is µs per invocation (the best of alternating rounds), and each store's ratio to the
handler without idempotency. Every event is claimed and completed (no duplicates), the
expensive path. DynamoDB runs against a moto server in a child process, with fewer events
(moto answers in ms).

A "hand-written floor" runs alongside: no store, but the handler itself does the least any
dict-based store must (the key's text, one insert of a record holding the payload, a
completion in place) and nothing else: no clock reading, lease, expiry or check. It shows
how much of the MemoryStore target CPython's dict and memory costs leave for the rest.

    python benchmarks/idempotency.py [--events 10000] [--rounds 7] [--dynamodb-events 500]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

import eventflow
from _moto_server import start_moto
from eventflow.stores import MemoryStore, SQLiteStore


async def run_once(
    n: int, idempotency: eventflow.Idempotency | None, *, handwritten: bool = False
) -> float:
    eventflow.reset_default_registry()
    seen: dict[str, list[Any]] = {}

    @eventflow.handler(idempotency=idempotency)
    async def noop(event: dict[str, int], context: eventflow.Context) -> None:
        if handwritten:
            # the least a dict-based store must do: the key's text, one insert of a record
            # that keeps the payload, a completion in place; no clock, lease or checks
            record: list[Any] = [0.0, None, event]
            if seen.setdefault(str(event["id"]), record) is record:
                record[1] = "null"
        return None

    async with eventflow.App(concurrency=100) as app:
        t0 = time.perf_counter()
        for i in range(n):
            await app.invoke(noop, {"id": i})
        await app.drain()
        elapsed = time.perf_counter() - t0
        stats = app.stats()
    assert stats.succeeded == n and stats.attempts == n, stats
    return elapsed / n * 1e6


def best_of(n: int, rounds: int, variants: dict[str, Any]) -> dict[str, float]:
    """The best µs/invocation of each variant, rounds alternating so drift hits all alike."""
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, make in variants.items():
            gc.collect()
            handwritten = name == "handwritten"
            results[name].append(asyncio.run(run_once(n, make(), handwritten=handwritten)))
    return {name: min(times) for name, times in results.items()}


def dynamodb_us(n: int) -> float | None:
    try:
        from eventflow.aws import DynamoDBStore
    except ImportError:
        return None
    proc, endpoint = start_moto(patched=False)  # the patch concerns SQS only
    try:
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
        )
        asyncio.run(DynamoDBStore.create_table("bench-idempotency", endpoint_url=endpoint))
        return asyncio.run(
            run_once(
                n,
                eventflow.Idempotency(
                    store=DynamoDBStore("bench-idempotency", endpoint_url=endpoint), key="id"
                ),
            )
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--dynamodb-events", type=int, default=500, help="0 skips DynamoDB (500)")
    args = parser.parse_args()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )
    n = args.events
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10**6))
        figures = best_of(
            n,
            args.rounds,
            {
                "base": lambda: None,
                "memory": lambda: eventflow.Idempotency(store=MemoryStore(), key="id"),
                "handwritten": lambda: None,
                "sqlite": lambda: eventflow.Idempotency(
                    store=SQLiteStore(Path(tmp) / f"bench-{next(counter)}.db"), key="id"
                ),
            },
        )
    base, memory, sqlite = figures["base"], figures["memory"], figures["sqlite"]
    print(f"{n} events, no-op handler, best of {args.rounds} rounds")
    print(f"  without idempotency : {base:7.2f} µs/invocation")
    print(f"  MemoryStore         : {memory:7.2f} µs/invocation  ({memory / base:.2f}x)")
    hand = figures["handwritten"]
    print(
        f"  hand-written floor  : {hand:7.2f} µs/invocation  ({hand / base:.2f}x: a dict "
        "insert keeping the payload, in the handler; no clock, lease or checks)"
    )
    print(
        f"  SQLiteStore         : {sqlite:7.2f} µs/invocation  ({sqlite / base:.2f}x, "
        f"{1e6 / sqlite:,.0f} claimed-and-completed events/s)"
    )
    dynamo = dynamodb_us(args.dynamodb_events) if args.dynamodb_events > 0 else None
    if dynamo is not None:
        print(
            f"  DynamoDBStore (moto): {dynamo:7.0f} µs/invocation  ({dynamo / base:.0f}x, "
            f"{args.dynamodb_events} events against a local moto server)"
        )
    added = memory / base - 1
    print(f"MemoryStore adds {added:.0%} (target <= 20%) {'PASS' if added <= 0.20 else 'FAIL'}")
    rate = 1e6 / sqlite
    print(
        f"SQLiteStore sustains {rate:,.0f} events/s (target >= 5,000) "
        f"{'PASS' if rate >= 5000 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
