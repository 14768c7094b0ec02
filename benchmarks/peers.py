"""eventflow beside its peers: the same no-op and fan-out workloads on Taskiq's, Dramatiq's
and FastStream's in-memory brokers, eventflow and a bare asyncio queue, in one run.

* no-op: ``--events`` events whose handler does nothing; each framework's rate as a ratio
  to the bare asyncio ceiling (one ``asyncio.Queue(maxsize=1000)``, 100 worker tasks);
* fan-out: ``--events`` events whose handler awaits ``--latency`` s of I/O at concurrency
  ``--concurrency``; each makespan as a ratio to the ideal events / concurrency x latency.

The peers, as their in-memory modes run: Taskiq's ``InMemoryBroker`` (``max_async_tasks``
= concurrency), Dramatiq's ``StubBroker`` with a ``Worker`` of ``concurrency`` threads and
its AsyncIO middleware (async actors), FastStream's ``TestNatsBroker`` (in-memory: its
publish runs the subscriber in the publisher's task, so ``concurrency`` publishers run at
once). Each workload runs ``--rounds`` times per framework; the best round counts.
It prints the ratios and writes a bar chart (matplotlib) with the date and machine of the
run to ``--chart`` (docs/peers.png).

    pip install -e '.[bench-peers]'
    python benchmarks/peers.py [--events 10000] [--latency 0.05] [--concurrency 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

import eventflow

Run = Callable[[int, float, int], Awaitable[float]]  # (events, latency, concurrency) -> s


async def bare(events: int, latency: float, concurrency: int) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1000)

    async def worker() -> None:
        while True:
            await queue.get()
            if latency:
                await asyncio.sleep(latency)
            queue.task_done()

    # the ceiling of throughput.py: 100 workers for no-op work, `concurrency` for I/O
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency if latency else 100)]
    t0 = time.perf_counter()
    for i in range(events):
        await queue.put(i)
    await queue.join()
    elapsed = time.perf_counter() - t0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return elapsed


async def with_eventflow(events: int, latency: float, concurrency: int) -> float:
    eventflow.reset_default_registry()

    @eventflow.handler
    async def work(event: object, context: eventflow.Context) -> None:
        if latency:
            await asyncio.sleep(latency)

    async with eventflow.App(concurrency=concurrency) as app:
        t0 = time.perf_counter()
        for i in range(events):
            await app.invoke(work, {"i": i})
        await app.drain()
        elapsed = time.perf_counter() - t0
        assert app.stats().succeeded == events
    return elapsed


async def with_taskiq(events: int, latency: float, concurrency: int) -> float:
    from taskiq import InMemoryBroker

    broker = InMemoryBroker(max_async_tasks=concurrency)
    done = 0

    @broker.task
    async def work(i: int) -> None:
        nonlocal done
        if latency:
            await asyncio.sleep(latency)
        done += 1

    await broker.startup()
    t0 = time.perf_counter()
    for i in range(events):
        await work.kiq(i)
    await broker.wait_all()
    elapsed = time.perf_counter() - t0
    await broker.shutdown()
    assert done == events, done
    return elapsed


async def with_faststream(events: int, latency: float, concurrency: int) -> float:
    from faststream.nats import NatsBroker, TestNatsBroker

    broker = NatsBroker()
    done = 0

    @broker.subscriber("work")
    async def work(i: int) -> None:
        nonlocal done
        if latency:
            await asyncio.sleep(latency)
        done += 1

    async with TestNatsBroker(broker) as test_broker:
        slots = asyncio.Semaphore(concurrency)

        async def publish(i: int) -> None:
            try:
                await test_broker.publish(i, "work")
            finally:
                slots.release()

        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for i in range(events):
                await slots.acquire()  # at most `concurrency` publishers (and tasks) at once
                tg.create_task(publish(i))
        elapsed = time.perf_counter() - t0
    assert done == events, done
    return elapsed


async def with_dramatiq(events: int, latency: float, concurrency: int) -> float:
    import dramatiq
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.middleware.asyncio import AsyncIO

    broker = StubBroker()
    broker.add_middleware(AsyncIO())
    dramatiq.set_broker(broker)
    done = 0
    lock = threading.Lock()

    @dramatiq.actor(max_retries=0)
    async def work(i: int) -> None:
        nonlocal done
        if latency:
            await asyncio.sleep(latency)
        with lock:
            done += 1

    worker = dramatiq.Worker(broker, worker_threads=concurrency, worker_timeout=100)
    worker.start()
    try:
        t0 = time.perf_counter()
        for i in range(events):
            work.send(i)
        # Dramatiq's stub broker and worker are synchronous: wait off this loop
        await asyncio.to_thread(broker.join, work.queue_name)
        await asyncio.to_thread(worker.join)
        elapsed = time.perf_counter() - t0
    finally:
        worker.stop()
        broker.close()
    assert done == events, done
    return elapsed


FRAMEWORKS: dict[str, Run] = {
    "asyncio queue": bare,
    "eventflow": with_eventflow,
    "Taskiq": with_taskiq,
    "Dramatiq": with_dramatiq,
    "FastStream": with_faststream,
}


async def _as_coroutine(awaitable: Awaitable[float]) -> float:
    return await awaitable


def _best(run: Run, events: int, latency: float, concurrency: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        best = min(best, asyncio.run(_as_coroutine(run(events, latency, concurrency))))
    return best


def machine() -> str:
    """The machine, as the chart names it."""
    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def chart(path: Path, noop: dict[str, float], fanout: dict[str, float], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = list(noop)
    colours = [
        "#888888" if n == "asyncio queue" else "#d9480f" if n == "eventflow" else "#4c6ef5"
        for n in names
    ]
    left.barh(names, [noop[n] for n in names], color=colours)
    left.set_xscale("log")
    left.set_xlabel("no-op throughput, ratio to the asyncio ceiling (higher is better)")
    left.invert_yaxis()
    for y, n in enumerate(names):
        left.annotate(
            f"{noop[n]:.3g}", (noop[n], y), xytext=(3, 0), textcoords="offset points", va="center"
        )
    right.barh(names, [fanout[n] for n in names], color=colours)
    right.set_xlabel("fan-out makespan, ratio to the ideal (lower is better)")
    right.axvline(1.0, color="black", linewidth=0.8)
    right.invert_yaxis()
    for y, n in enumerate(names):
        right.annotate(
            f"{fanout[n]:.2f}",
            (fanout[n], y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
        )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chart", type=Path, default=Path("docs/peers.png"))
    args = parser.parse_args()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING)  # the peers log through the standard library
    events, latency, concurrency = args.events, args.latency, args.concurrency
    ideal = events / concurrency * latency
    noop: dict[str, float] = {}
    fanout: dict[str, float] = {}
    for name, run in FRAMEWORKS.items():
        seconds = _best(run, events, 0.0, concurrency, args.rounds)
        noop[name] = seconds
        makespan = _best(run, events, latency, concurrency, args.rounds)
        fanout[name] = makespan / ideal
        print(f"{name:14}: no-op {events / seconds:10,.0f} events/s, fan-out {makespan:.3f} s")
    ceiling = noop["asyncio queue"]
    noop = {name: ceiling / seconds for name, seconds in noop.items()}
    print(f"\n{'':14}  no-op (of the ceiling)  fan-out (of the ideal {ideal:.2f} s)")
    for name in FRAMEWORKS:
        print(f"{name:14}  {noop[name]:22.3f}  {fanout[name]:10.2f}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = (
        f"{events:,} events; fan-out {latency * 1000:.0f} ms each at concurrency "
        f"{concurrency:,}; {stamp}; {machine()}"
    )
    chart(args.chart, noop, fanout, title)
    print(f"\nchart: {args.chart} ({title})")


if __name__ == "__main__":
    main()
