"""Durable queue: SQLiteQueue against persist-queue and against the in-memory shared queue.

Two figures, each with SQLite's ``synchronous`` at FULL (a 202 survives a power cut) and at
NORMAL (it survives a crash of the process):

1. **Durable accepts per second** with 100 concurrent callers: ``app.invoke`` on
   ``App(queue=SQLiteQueue(path, consume=False))`` (each returns once its row is committed;
   concurrent invokes share commits) against persist-queue's ``SQLiteAckQueue.put`` (each
   put commits on its own), called from 100 asyncio tasks through worker threads, as an
   asyncio service would call it. persist-queue opens its file in WAL mode; for NORMAL its
   connection is set to ``synchronous=NORMAL`` too. Target: >= 20x.
2. **End-to-end no-op events per second** (accept, run, delete): 100 callers invoke, the
   app runs each event and deletes its row, until drained; ``SQLiteQueue`` against
   ``MemoryQueue`` (the in-memory shared queue, the same path through the app). Target:
   >= 0.25. The default in-memory queue (no shared queue) is printed for reference.

Rounds alternate between the contenders and the best round of each counts (these
machines are noisy). The ratios are printed last.

    pip install -e '.[bench]'
    python benchmarks/durable_queue.py [--events 20000] [--pq-puts 1000] [--rounds 2] [--dir D]

Put ``--dir`` on the disk the queue would live on: a memory file system syncs for free.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread
import structlog

import eventflow
from eventflow.queues import MemoryQueue, SQLiteQueue

Sync = Literal["FULL", "NORMAL"]
SYNCS: tuple[Sync, ...] = ("FULL", "NORMAL")
CALLERS = 100


async def _noop(event: Any, context: eventflow.Context) -> None:
    return None


async def _invoke_all(app: eventflow.App, n: int) -> None:
    async def caller(first: int) -> None:
        for i in range(first, n, CALLERS):
            await app.invoke("noop", {"i": i})

    async with anyio.create_task_group() as tg:
        for first in range(CALLERS):
            tg.start_soon(caller, first)


def _app(queue: Any) -> eventflow.App:
    app = eventflow.App(queue=queue, concurrency=100)
    app.handler(name="noop")(_noop)
    return app


async def accepts_sqlite(folder: Path, n: int, synchronous: Sync) -> tuple[float, float]:
    """Durable accepts per second, and rows per commit."""
    queue = SQLiteQueue(
        folder / f"accept-{time.monotonic_ns()}.db", consume=False, synchronous=synchronous
    )
    async with _app(queue) as app:
        t0 = time.perf_counter()
        await _invoke_all(app, n)
        elapsed = time.perf_counter() - t0
        stats = queue.statistics()
    assert stats.put == n, stats
    return n / elapsed, stats.rows_per_commit


async def accepts_persist_queue(folder: Path, n: int, synchronous: str) -> float:
    """Puts per second into persist-queue's SQLiteAckQueue from 100 concurrent tasks."""
    from persistqueue import SQLiteAckQueue

    q = SQLiteAckQueue(str(folder / f"pq-{time.monotonic_ns()}"), multithreading=True)
    for conn in {id(q._conn): q._conn, id(q._putter): q._putter}.values():
        if conn is not None:  # persist-queue opens both in its constructor
            conn.execute(f"PRAGMA synchronous={synchronous}")
    limiter = anyio.CapacityLimiter(CALLERS)

    async def caller(first: int) -> None:
        for i in range(first, n, CALLERS):
            await anyio.to_thread.run_sync(q.put, {"i": i}, limiter=limiter)

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for first in range(CALLERS):
            tg.start_soon(caller, first)
    elapsed = time.perf_counter() - t0
    assert q.size == n, q.size
    return n / elapsed


async def end_to_end(queue: Any, n: int) -> float:
    """No-op events per second: invoked by 100 callers, run, deleted, drained."""
    async with _app(queue) as app:
        t0 = time.perf_counter()
        await _invoke_all(app, n)
        await app.drain()
        elapsed = time.perf_counter() - t0
        stats = app.stats()
    assert stats.succeeded == n, stats
    return n / elapsed


async def main(events: int, pq_puts: int, rounds: int, folder_arg: str | None) -> None:
    best: dict[str, float] = {}
    per_commit: dict[str, float] = {}

    def keep(name: str, value: float) -> None:
        best[name] = max(best.get(name, 0.0), value)

    with tempfile.TemporaryDirectory(dir=folder_arg) as tmp:
        folder = Path(tmp)
        for r in range(1, rounds + 1):
            for sync in SYNCS:
                rate, rows = await accepts_sqlite(folder, events, sync)
                keep(f"accept sqlite {sync}", rate)
                per_commit[sync] = rows
                keep(
                    f"accept persist-queue {sync}",
                    await accepts_persist_queue(folder, pq_puts, sync),
                )
                keep(
                    f"e2e sqlite {sync}",
                    await end_to_end(
                        SQLiteQueue(folder / f"e2e-{r}-{sync}.db", synchronous=sync), events
                    ),
                )
                keep("e2e MemoryQueue", await end_to_end(MemoryQueue(), events))
            keep("e2e default in-memory", await end_to_end(None, events))
            print(f"round {r}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in best.items()))
    print()
    print(f"{'contender':<28} {'events/s':>10}")
    for name, value in best.items():
        print(f"{name:<28} {value:>10,.0f}")
    print()
    full, normal = per_commit["FULL"], per_commit["NORMAL"]
    print(f"rows per commit with {CALLERS} callers: FULL {full:.1f}, NORMAL {normal:.1f}")
    for sync in SYNCS:
        ratio = best[f"accept sqlite {sync}"] / best[f"accept persist-queue {sync}"]
        print(f"durable accepts, SQLiteQueue / persist-queue, {sync}: {ratio:.1f}x (target >= 20x)")
    for sync in SYNCS:
        ratio = best[f"e2e sqlite {sync}"] / best["e2e MemoryQueue"]
        print(f"end-to-end, SQLiteQueue / MemoryQueue, {sync}: {ratio:.2f} (target >= 0.25)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--pq-puts", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--dir", default=None, help="folder for the files (default: the system's temp folder)"
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(args.events, args.pq_puts, args.rounds, args.dir))
