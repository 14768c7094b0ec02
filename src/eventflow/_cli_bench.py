"""``eventflow bench fanout``: the parallel fan-out benchmark, with a progress bar.

N events whose handler awaits ``latency`` seconds of simulated I/O run at the given
concurrency. The ideal makespan is ``events / concurrency x latency``; the summary shows
the measured makespan against it, events per second, and the p50 / p99 latency from an
event's acceptance (202) to the end of its handler.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

import anyio

from ._app import App
from ._cli_common import configure_logging, describe
from ._context import Context
from ._handler import Handler
from ._progress import ProgressBar

__all__ = ("FanoutResult", "add_parser", "format_fanout", "run_fanout")


@dataclass(frozen=True)
class FanoutResult:
    """What one fan-out run measured."""

    events: int
    concurrency: int
    latency: float
    makespan: float
    succeeded: int
    latencies: list[float]

    @property
    def ideal(self) -> float:
        return -(-self.events // self.concurrency) * self.latency


async def run_fanout(events: int, latency: float, concurrency: int) -> FanoutResult:
    """Fan ``events`` out to an I/O-bound handler and measure it."""
    accepted_at: dict[str, float] = {}
    done_at: dict[str, float] = {}

    async def io_bound(event: Any, context: Context) -> None:
        await asyncio.sleep(latency)
        done_at[context.aws_request_id] = time.perf_counter()

    handler = Handler(io_bound, name="fanout")
    app = App(name="bench", concurrency=concurrency, queue_size=max(events, 1), handlers=[handler])

    def status() -> str:
        s = app.stats()
        return f"running {s.in_flight}  queued {s.queued}"

    bar = ProgressBar(events, lambda: app.stats().succeeded, status, stream=sys.stderr)
    async with app, anyio.create_task_group() as tg:
        tg.start_soon(bar.run)
        t0 = time.perf_counter()
        for i in range(events):
            accepted = await app.invoke(handler, {"i": i})
            accepted_at[accepted.request_id] = time.perf_counter()
        await app.drain()
        makespan = time.perf_counter() - t0
        tg.cancel_scope.cancel()
    latencies = sorted(done_at[r] - accepted_at[r] for r in accepted_at if r in done_at)
    return FanoutResult(events, concurrency, latency, makespan, app.stats().succeeded, latencies)


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def format_fanout(r: FanoutResult) -> str:
    """The summary printed after a run."""
    return "\n".join(
        [
            f"eventflow bench fanout: {r.events} events x {r.latency * 1000:g} ms I/O "
            f"at concurrency {r.concurrency}",
            f"  succeeded       {r.succeeded} of {r.events}",
            f"  throughput      {r.events / r.makespan:,.0f} events/s",
            f"  makespan        {r.makespan:.3f} s (ideal {r.ideal:.3f} s, "
            f"{r.makespan / r.ideal:.2f} of ideal)",
            f"  latency, accepted -> completed: p50 {_pct(r.latencies, 0.5) * 1000:.1f} ms, "
            f"p99 {_pct(r.latencies, 0.99) * 1000:.1f} ms",
        ]
    )


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}")
        return value

    return parse


def _cmd(args: argparse.Namespace) -> int:
    # per-event info logs would measure the log renderer, not the app
    configure_logging(args.log_level, args.log_format, stream=sys.stderr)
    result = asyncio.run(run_fanout(args.events, args.latency, args.concurrency))
    print(format_fanout(result))
    return 0 if result.succeeded == result.events else 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``bench`` and its benchmarks."""
    bench = sub.add_parser(
        "bench", help="run a benchmark", description="Benchmarks of eventflow on this machine."
    )
    kinds = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    fan = kinds.add_parser(
        "fanout",
        help="parallel fan-out of I/O-bound events",
        description=describe(__doc__),
    )
    fan.add_argument("--events", type=_positive(int), default=10_000, help="events (10000)")
    fan.add_argument(
        "--latency", type=_positive(float), default=0.05, help="seconds of I/O per event (0.05)"
    )
    fan.add_argument("--concurrency", type=_positive(int), default=1000, help="workers (1000)")
    fan.add_argument(
        "--log-level",
        default="warning",
        choices=("debug", "info", "warning", "error", "critical"),
        help="(warning: per-event logs would slow the benchmark down)",
    )
    fan.add_argument("--log-format", default="console", choices=("console", "json"))
    fan.set_defaults(func=_cmd)
