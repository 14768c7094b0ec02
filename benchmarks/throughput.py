"""Throughput: 200,000 no-op events through eventflow.App against a bare-asyncio ceiling.

The ceiling is one ``asyncio.Queue(maxsize=1000)`` and 100 worker tasks calling the
handler directly: no request IDs, no retries, no accounting. Both run in the same process,
one after the other, in alternating rounds; the figure is the median of the rounds' ratios
(each round's app against that round's ceiling), so machine noise hits both alike. The
app runs twice per round: with logging configured as the README recommends for production
(filtered below WARNING), and with structlog never configured (its default prints every
level), as a user who never configures it gets: success lines are opt-in
(``App(log_success=True)``), so neither prints a line per event.

With ``--middleware prometheus`` each round also runs the app (logging filtered) with
``eventflow.metrics.PrometheusMetrics`` on a registry of its own, and the best of those
rounds is reported against the best without middleware (needs ``eventflow[metrics]``).

    python benchmarks/throughput.py [--events 200000] [--rounds 5] [--concurrency 1000]
        [--middleware none|prometheus]

With ``--instructions`` it counts instead the instructions per event of both (logging
filtered) under valgrind's callgrind, which a loaded machine does not disturb
(``benchmarks/_instructions.py``; ``--events`` is then the smaller of its two runs).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import time
from pathlib import Path

import structlog

import eventflow


async def handler_fn(event: object, context: object) -> None:
    return None


async def ceiling(n: int) -> float:
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1000)

    async def worker() -> None:
        while True:
            item = await queue.get()
            await handler_fn(item, None)
            queue.task_done()

    workers = [asyncio.create_task(worker()) for _ in range(100)]
    t0 = time.perf_counter()
    for i in range(n):
        await queue.put({"i": i})
    await queue.join()
    elapsed = time.perf_counter() - t0
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return n / elapsed


def middleware_for(name: str) -> list[object]:
    if name == "none":
        return []
    from prometheus_client import CollectorRegistry

    from eventflow.metrics import PrometheusMetrics

    return [PrometheusMetrics(CollectorRegistry())]


async def through_app(n: int, concurrency: int, middleware: str = "none") -> float:
    eventflow.reset_default_registry()
    noop = eventflow.handler(handler_fn)
    app = eventflow.App(concurrency=concurrency, middleware=middleware_for(middleware))
    async with app:
        t0 = time.perf_counter()
        for i in range(n):
            await app.invoke(noop, {"i": i})
        await app.drain()
        elapsed = time.perf_counter() - t0
        stats = app.stats()
    assert stats.succeeded == n, stats
    return n / elapsed


def configure_filtered() -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )


def instructions(events: int, concurrency: int) -> None:
    """Instructions per event of the ceiling and of the app, and their ratio."""
    from _instructions import count_per_event, require_valgrind

    require_valgrind()
    script = Path(__file__).resolve()
    ceiling_count = count_per_event(script, "ceiling", events)
    app_count = count_per_event(script, f"app:{concurrency}", events)
    print("instructions per event under valgrind --tool=callgrind (runs of N and 2N, differenced)")
    print(f"bare asyncio ceiling : {ceiling_count:12,.0f}")
    print(f"eventflow.App        : {app_count:12,.0f}  (concurrency={concurrency})")
    ratio = ceiling_count / app_count
    print(
        f"ratio                : {ratio:.3f} of the ceiling (target >= 0.65) "
        f"{'PASS' if ratio >= 0.65 else 'FAIL'}"
    )


def run_workload(name: str, events: int) -> None:
    """Run one workload once: the child process that valgrind counts."""
    configure_filtered()
    if name == "ceiling":
        asyncio.run(ceiling(events))
    else:
        asyncio.run(through_app(events, int(name.partition(":")[2])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument(
        "--middleware",
        choices=("none", "prometheus"),
        default="none",
        help="also run the app with this middleware each round (none)",
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions with valgrind instead"
    )
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload is not None:
        run_workload(args.workload, args.events)
        return
    if args.instructions:
        # under valgrind Python runs about 50 times slower: a smaller default
        events = args.events if "--events" in sys.argv else 20_000
        instructions(events, args.concurrency)
        return
    best_ceiling = best_app = best_default = best_mw = 0.0
    ratios: list[float] = []
    default_ratios: list[float] = []
    for r in range(args.rounds):
        gc.collect()
        c = asyncio.run(ceiling(args.events))
        configure_filtered()
        gc.collect()
        a = asyncio.run(through_app(args.events, args.concurrency))
        if args.middleware != "none":
            gc.collect()
            m = asyncio.run(through_app(args.events, args.concurrency, args.middleware))
            best_mw = max(best_mw, m)
            print(f"round {r + 1}: eventflow with {args.middleware} {m:,.0f} events/s (filtered)")
        structlog.reset_defaults()  # never configured: structlog prints every level
        gc.collect()
        d = asyncio.run(through_app(args.events, args.concurrency))
        best_ceiling, best_app = max(best_ceiling, c), max(best_app, a)
        best_default = max(best_default, d)
        ratios.append(a / c)
        default_ratios.append(d / c)
        print(
            f"round {r + 1}: ceiling {c:,.0f} events/s, eventflow {a:,.0f} events/s "
            f"(filtered), {d:,.0f} events/s (structlog unconfigured)"
        )
    ratio = statistics.median(ratios)
    print(f"bare asyncio ceiling : {best_ceiling:12,.0f} events/s (best round)")
    print(f"eventflow.App        : {best_app:12,.0f} events/s  (concurrency={args.concurrency})")
    print(f"  structlog default  : {best_default:12,.0f} events/s  (never configured)")
    print(f"ratios by round      : {', '.join(f'{x:.2f}' for x in ratios)}")
    print(
        f"ratio                : {ratio:.2f} of the ceiling, median of {len(ratios)} alternating "
        f"rounds (target >= 0.50) {'PASS' if ratio >= 0.50 else 'FAIL'}"
    )
    print(f"ratio, unconfigured  : {statistics.median(default_ratios):.2f} of the ceiling (median)")
    if args.middleware != "none":
        print(
            f"with {args.middleware:<11}: {best_mw:12,.0f} events/s  "
            f"({best_mw / best_app:.2f} of the app without middleware, "
            f"{best_mw / best_ceiling:.2f} of the ceiling)"
        )


if __name__ == "__main__":
    main()
