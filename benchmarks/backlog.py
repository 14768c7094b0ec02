"""A large backlog: what accepting an event costs as the queue fills, and the collector's part.

An app with ``queue_size`` 1,000,000 and one worker, held by its first event, accepts
``--events`` no-op events with ``invoke_nowait`` (each with its own small payload, as in
throughput.py); nothing runs meanwhile, so the queue only grows. CPU per accepted event
(``time.process_time``) is reported over the whole fill, with the CPU time Python's cyclic
garbage collector took (``gc.callbacks``), and over its first and its last 10% (a full
collection lands in one window or the other). Each collector setting runs in turn:

* ``default``: the interpreter's thresholds (700, 10, 10);
* ``freeze``: ``gc.freeze()`` once the app has started (start-up objects leave the collector's
  scans; the queued events do not);
* ``threshold``: ``gc.set_threshold(100_000, 50, 100)``, fewer and larger young collections.

    python benchmarks/backlog.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

import structlog

import eventflow

DEFAULT_THRESHOLD = gc.get_threshold()


class CollectorClock:
    """CPU seconds the cyclic collector ran, summed, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.total += time.process_time() - self._started


async def fill(n: int, setup: Callable[[], None]) -> tuple[float, float, float, float]:
    """µs per accept (all, first 10%, last 10%) and the collector's µs per accept (all)."""
    release = asyncio.Event()

    async def blocker(event: Any, context: eventflow.Context) -> None:
        await release.wait()

    async def noop(event: Any, context: eventflow.Context) -> None:
        return None

    hold = eventflow.Handler(blocker, name="hold")
    h = eventflow.Handler(noop, name="noop")
    async with eventflow.App(handlers=[hold, h], queue_size=n + 10, concurrency=1) as app:
        app.invoke_nowait(hold, {})
        await asyncio.sleep(0)  # the one worker takes it and waits
        await asyncio.sleep(0)
        setup()
        clock = CollectorClock()
        gc.callbacks.append(clock)
        try:
            first = n // 10
            last_start = n - n // 10
            invoke = app.invoke_nowait
            start = t0 = time.process_time()
            for i in range(first):
                invoke(h, {"i": i})
            early = time.process_time() - t0
            for i in range(first, last_start):
                invoke(h, {"i": i})
            t0 = time.process_time()
            for i in range(last_start, n):
                invoke(h, {"i": i})
            late = time.process_time() - t0
            total, collector = time.process_time() - start, clock.total
        finally:
            gc.callbacks.remove(clock)
        release.set()
        await app.drain()
        stats = app.stats()
    assert stats.succeeded == n + 1, stats
    last = n - last_start
    return total / n * 1e6, collector / n * 1e6, early / first * 1e6, late / last * 1e6


def reset() -> None:
    gc.unfreeze()
    gc.set_threshold(*DEFAULT_THRESHOLD)
    gc.collect()


SETTINGS: dict[str, Callable[[], None]] = {
    "default": lambda: None,
    "freeze": gc.freeze,
    "threshold": lambda: gc.set_threshold(100_000, 50, 100),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )
    n = args.events
    print(f"accepting {n:,} events into one queue (µs of CPU per accepted event; GC = collector)")
    print(f"{'setting':<10}{'all':>8}{'of it GC':>10}{'first 10%':>11}{'last 10%':>10}")
    for name, setup in SETTINGS.items():
        reset()
        total, collector, early, late = asyncio.run(fill(n, setup))
        print(f"{name:<10}{total:>8.2f}{collector:>10.2f}{early:>11.2f}{late:>10.2f}")
    reset()


if __name__ == "__main__":
    main()
