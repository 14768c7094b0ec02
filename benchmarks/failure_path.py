"""The failure path: CPU per failed attempt against a successful no-op event, and bytes per retry.

In a downstream outage every event fails, so what a failure costs is what the app costs
then. In the same run, alternating rounds (the best round of each kept):

* **success**: no-op ``async def`` events through ``App`` (invoke, then drain): CPU
  (``time.process_time``) per event;
* **failure**: events whose handler raises three frames deep (the handler and two functions
  it calls), each attempt's retry scheduled (an hour away, so none runs during the round):
  CPU per event from ``invoke`` until every retry is scheduled.

Both with logging filtered away (structlog filtering at CRITICAL: the ``attempt.failed``
line is not even built) and with the README's production configuration (filtering below
WARNING, JSON lines, tracebacks by ``eventflow.logs.format_exc_info``: each failure logs
``attempt.failed`` at error level with its traceback), printed to ``os.devnull`` rather
than the terminal. For reference, also with structlog's default processors (its
``ConsoleRenderer``) filtered at WARNING, with ``eventflow.logs.plain_traceback`` as its
exception formatter and without (structlog's own, which formats every traceback anew).

Then **bytes per scheduled retry**: with tracemalloc, everything that ``N`` failed events
hold once their retries wait (the event, its request ID, its error, its timer), divided by
``N``, for a handler raising 3 and 30 frames deep (the payload is one shared object, and
100 events warm the caches first). The ratios come last.

    python benchmarks/failure_path.py [--successes 20000] [--failures 5000] [--rounds 3]
    python benchmarks/failure_path.py --instructions   # instructions per event (valgrind),
                                                       # failures filtered and logged
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import logging
import os
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog

import eventflow
import eventflow.logs
from eventflow.sinks import MemorySink

SUCCESS_TARGET = 15.0  # failed attempt vs successful event, CPU, logging filtered away
WARNING_TARGET = 80.0  # the same with the README's WARNING configuration
BYTES_TARGET = 450.0  # bytes per scheduled retry, for the 3- and the 30-frame handler
RETRY_DELAY = 3600.0  # far enough that no retry runs while a round is measured


def _ping(depth: int) -> None:
    if depth <= 1:
        raise ConnectionError("the downstream service is unavailable")
    _pong(depth - 1)


def _pong(depth: int) -> None:
    # a second function, so that the frames alternate and no line repeats (Python would
    # fold a run of identical frames into "[Previous line repeated N more times]")
    if depth <= 1:
        raise ConnectionError("the downstream service is unavailable")
    _ping(depth - 1)


def failing_handler(depth: int) -> eventflow.Handler:
    """A handler whose exception's stack trace has ``depth`` frames (the handler's first)."""

    async def failing(event: Any, context: eventflow.Context) -> None:
        _ping(depth - 1)

    return eventflow.Handler(
        failing, name="failing", max_retries=2, retry_delays=(RETRY_DELAY, RETRY_DELAY)
    )


async def noop(event: Any, context: eventflow.Context) -> None:
    return None


#: the configurations measured: the first two are the targets', the others for reference
CONFIGS = {
    "filtered": "logging filtered away",
    "warning": "the README's production configuration (WARNING, JSON, format_exc_info)",
    "console": "structlog's default processors + eventflow.logs.plain_traceback",
    "default": "structlog's default processors alone",
}


def configure_logging(config: str) -> None:
    """Configure structlog as :data:`CONFIGS` names ``config``, printing nowhere."""
    level = logging.CRITICAL if config == "filtered" else logging.WARNING
    processors: list[Any] | None = None
    if config == "warning":  # the README's "For production" block, word for word
        processors = [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            eventflow.logs.format_exc_info,
            structlog.processors.JSONRenderer(),
        ]
    elif config == "console":
        processors = [
            *_DEFAULT_PROCESSORS[:-1],
            structlog.dev.ConsoleRenderer(exception_formatter=eventflow.logs.plain_traceback),
        ]
    elif config == "default":
        processors = list(_DEFAULT_PROCESSORS)
    structlog.configure(
        processors=processors if processors is not None else _DEFAULT_PROCESSORS,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
        logger_factory=structlog.PrintLoggerFactory(_DEVNULL),
    )


# structlog's defaults (the last is its ConsoleRenderer), as the process started with them
_DEFAULT_PROCESSORS: list[Any] = list(structlog.get_config()["processors"])
_DEVNULL = open(os.devnull, "w")  # a real write per line, as to a terminal or a pipe
atexit.register(_DEVNULL.close)


async def successes(n: int) -> float:
    """CPU seconds for ``n`` successful no-op events (invoke, then drain)."""
    h = eventflow.Handler(noop, name="noop")
    async with eventflow.App(handlers=[h]) as app:
        payload = {"order": 1}
        t0 = time.process_time()
        for _ in range(n):
            await app.invoke(h, payload)
        await app.drain()
        cpu = time.process_time() - t0
        stats = app.stats()
    assert stats.succeeded == n, stats
    return cpu


async def _until_scheduled(app: eventflow.App, n: int) -> None:
    # polled, not awaited: a middleware hook would take the events off the inline path, and
    # the loop sleeps while it waits, which costs no CPU
    while app.stats().retries < n:  # noqa: ASYNC110
        await asyncio.sleep(0.001)


async def failures(n: int, depth: int = 3, measure: Callable[[], Any] | None = None) -> Any:
    """CPU seconds for ``n`` failed attempts until their retries are scheduled; or, with
    ``measure`` (start, stop), what it returns for them."""
    h = failing_handler(depth)
    # the retries still waiting at the end are spilled to memory, not logged
    async with eventflow.App(handlers=[h], shutdown_timeout=0.01, spill=MemorySink()) as app:
        payload = {"order": 1}
        warm = 100 if measure is not None else 0
        for _ in range(warm):  # first-use costs: linecache, code positions, free lists
            await app.invoke(h, payload)
        await _until_scheduled(app, warm)
        start = measure() if measure is not None else time.process_time()
        for _ in range(n):
            await app.invoke(h, payload)
        await _until_scheduled(app, warm + n)
        result = measure() - start if measure is not None else time.process_time() - start
    return result


def retry_bytes(n: int, depth: int) -> float:
    """Bytes that each of ``n`` waiting retries holds (tracemalloc), ``depth`` frames deep."""

    def traced() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        held: int = asyncio.run(failures(n, depth, measure=traced))
    finally:
        tracemalloc.stop()
    return held / n


# -- instructions (valgrind) ------------------------------------------------------------


async def ceiling(n: int) -> None:
    """The asyncio ceiling of throughput.py: one bounded queue, 100 workers, no framework."""
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1000)

    async def worker() -> None:
        while True:
            item = await queue.get()
            await noop(item, None)  # type: ignore[arg-type]
            queue.task_done()

    workers = [asyncio.create_task(worker()) for _ in range(100)]
    for i in range(n):
        await queue.put({"i": i})
    await queue.join()
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


WORKLOADS: dict[str, Callable[[int], Coroutine[Any, Any, Any]]] = {
    "ceiling": ceiling,
    "success": successes,
    "failure": failures,
    "failure-logged": failures,  # with the README's production logging
    "failure-default": failures,  # with structlog's default processors, for reference
}

_WORKLOAD_LOGGING = {"failure-logged": "warning", "failure-default": "default"}


def run_workload(name: str, events: int) -> None:
    """Run one workload once (the child process that valgrind counts)."""
    configure_logging(_WORKLOAD_LOGGING.get(name, "filtered"))
    asyncio.run(WORKLOADS[name](events))


def instructions(successes_n: int, failures_n: int) -> None:
    from _instructions import count_per_event, require_valgrind

    require_valgrind()
    script = Path(__file__).resolve()
    print("instructions per event under valgrind --tool=callgrind (runs of N and 2N, differenced)")
    per = {
        "ceiling": count_per_event(script, "ceiling", successes_n),
        "success": count_per_event(script, "success", successes_n),
        "failure": count_per_event(script, "failure", failures_n),
        "failure-logged": count_per_event(script, "failure-logged", failures_n),
        "failure-default": count_per_event(script, "failure-default", failures_n),
    }
    for name, count in per.items():
        print(f"  {name:<14} {count:14,.0f}")
    print(f"success vs the asyncio ceiling  : {per['ceiling'] / per['success']:.3f} of the ceiling")
    print(f"failed attempt vs success       : {per['failure'] / per['success']:.1f}x")
    print(
        "the same, README's logging     : "
        f"{per['failure-logged'] / per['success']:.1f}x (logging filtered away above)"
    )
    print(f"for reference, structlog's defaults: {per['failure-default'] / per['success']:.1f}x")


# -- report ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--successes", type=int, default=20_000, help="no-op events per round")
    parser.add_argument("--failures", type=int, default=5_000, help="failed events per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--retries", type=int, default=5_000, help="retries traced for bytes")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions with valgrind instead"
    )
    parser.add_argument("--workload", choices=sorted(WORKLOADS), help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload is not None:
        run_workload(args.workload, args.events)
        return
    if args.instructions:
        instructions(args.successes // 4, args.failures // 10)
        return

    ratios: dict[str, float] = {}
    for config, what in CONFIGS.items():
        print(f"{config}: {what}")
        configure_logging(config)
        best_ok = best_fail = float("inf")
        for r in range(args.rounds):
            gc.collect()
            ok = asyncio.run(successes(args.successes)) / args.successes
            gc.collect()
            fail = asyncio.run(failures(args.failures)) / args.failures
            best_ok, best_fail = min(best_ok, ok), min(best_fail, fail)
            print(
                f"{config:<8} round {r + 1}: success {ok * 1e6:7.2f} µs CPU/event, "
                f"failed attempt {fail * 1e6:8.2f} µs CPU/event"
            )
        ratios[config] = best_fail / best_ok
        print(
            f"{config:<8} best: success {best_ok * 1e6:.2f} µs, failed attempt "
            f"{best_fail * 1e6:.2f} µs"
        )
    configure_logging("filtered")
    held = {depth: retry_bytes(args.retries, depth) for depth in (3, 30)}
    for depth, size in held.items():
        print(f"bytes per scheduled retry, {depth:>2}-frame handler: {size:,.0f}")
    print()
    checks = [
        ("failed / success CPU, logging filtered      ", ratios["filtered"], SUCCESS_TARGET, "x"),
        ("failed / success CPU, README's WARNING config", ratios["warning"], WARNING_TARGET, "x"),
        ("bytes per retry, 3-frame handler            ", held[3], BYTES_TARGET, " B"),
        ("bytes per retry, 30-frame handler           ", held[30], BYTES_TARGET, " B"),
    ]
    for label, value, target, unit in checks:
        verdict = "PASS" if value <= target else "FAIL"
        print(f"{label}: {value:,.1f}{unit} (target <= {target:g}{unit})  {verdict}")
    for config in ("console", "default"):
        print(f"  for reference, {CONFIGS[config]}: {ratios[config]:,.1f}x")
    same = abs(held[30] - held[3]) <= 0.05 * held[3]
    print(
        f"30-frame vs 3-frame bytes                   : {held[30] / held[3]:.2f}x "
        f"(target: the same)  {'PASS' if same else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
