"""Fan-out: 10,000 events whose handler awaits 50 ms of I/O, at concurrency 1,000.

The ideal makespan is events / concurrency x latency = 0.5 s; the benchmark prints the
measured makespan as a ratio to that ideal, next to a bare asyncio queue with the same
number of workers measured in the same run.

    python benchmarks/fanout.py [--events 10000] [--latency 0.05] [--concurrency 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

import structlog

import eventflow


async def bare(events: int, latency: float, concurrency: int) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=10_000)

    async def worker() -> None:
        while True:
            await queue.get()
            await asyncio.sleep(latency)
            queue.task_done()

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for i in range(events):
        await queue.put(i)
    await queue.join()
    makespan = time.perf_counter() - t0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return makespan


async def through_app(events: int, latency: float, concurrency: int) -> float:
    eventflow.reset_default_registry()

    @eventflow.handler
    async def io_bound(event: object, context: eventflow.Context) -> None:
        await asyncio.sleep(latency)

    async with eventflow.App(concurrency=concurrency) as app:
        t0 = time.perf_counter()
        for i in range(events):
            await app.invoke(io_bound, {"i": i})
        await app.drain()
        makespan = time.perf_counter() - t0
        assert app.stats().succeeded == events
    return makespan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )
    ideal = args.events / args.concurrency * args.latency
    best_bare = best_app = float("inf")
    for r in range(args.rounds):
        b = asyncio.run(bare(args.events, args.latency, args.concurrency))
        a = asyncio.run(through_app(args.events, args.latency, args.concurrency))
        best_bare, best_app = min(best_bare, b), min(best_app, a)
        print(f"round {r + 1}: bare asyncio {b:.3f} s, eventflow {a:.3f} s")
    ratio = best_app / ideal
    print(f"ideal makespan       : {ideal:.3f} s")
    print(f"bare asyncio queue   : {best_bare:.3f} s  ({best_bare / ideal:.2f} of ideal)")
    print(
        f"eventflow.App        : {best_app:.3f} s  ({ratio:.2f} of ideal, target <= 1.10) "
        f"{'PASS' if ratio <= 1.10 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
