"""The ``eventflow`` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from . import _cli_bench, _cli_generate, _cli_invoke, _cli_pattern, _cli_serve, _cli_worker
from ._cli_common import USAGE_ERROR, CommandError, configure_logging

__all__ = ("main",)


def _configure_logging(level: str, fmt: str) -> None:
    # the demo's log goes to stderr: its stdout is the summary
    configure_logging(level, fmt, stream=sys.stderr)


def _delays(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--retry-delays takes comma-separated seconds such as 1,2; got {text!r}"
        ) from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"--retry-delays must be positive seconds; got {text!r}")
    return values


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1; got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import format_report, run_demo

    _configure_logging(args.log_level, args.log_format)
    report = asyncio.run(
        run_demo(
            events=args.events,
            concurrency=args.concurrency,
            transient_failure_rate=args.transient_failures,
            permanent_failure_rate=args.permanent_failures,
            retry_delays=args.retry_delays,
            dead_letters=args.dead_letters,
            seed=args.seed,
        )
    )
    print(format_report(report))
    return 0 if report.stats.finished == report.stats.received else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventflow",
        description="Run Lambda-style asynchronous handlers in any asyncio service.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="run the S3 fan-out scenario end to end on embedded defaults",
        description=(
            "Fan out S3-style upload events to a handler; some fail once and are retried, "
            "some keep failing and are dead-lettered to a local JSONL file after three "
            "attempts under one request ID. Needs no AWS account."
        ),
    )
    demo.add_argument("--events", type=_positive_int, default=1000, help="events (1000)")
    demo.add_argument("--concurrency", type=_positive_int, default=200, help="workers (200)")
    demo.add_argument(
        "--transient-failures", type=_rate, default=0.10, help="share failing once (0.10)"
    )
    demo.add_argument(
        "--permanent-failures", type=_rate, default=0.03, help="share always failing (0.03)"
    )
    demo.add_argument(
        "--retry-delays",
        type=_delays,
        default=(1.0, 2.0),
        help="seconds before retry 1, 2 (Lambda: 60,120; shortened here to 1,2)",
    )
    demo.add_argument(
        "--dead-letters",
        type=Path,
        default=Path("eventflow-demo-dead-letters.jsonl"),
        help="dead-letter file, replaced on each run (eventflow-demo-dead-letters.jsonl)",
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed (7)")
    demo.add_argument(
        "--log-level",
        default="critical",
        choices=["debug", "info", "warning", "error", "critical"],
        help="log level (critical: the progress bar and summary only)",
    )
    demo.add_argument("--log-format", default="console", choices=["console", "json"])
    demo.set_defaults(func=_cmd_demo)
    _cli_serve.add_parser(sub)
    _cli_invoke.add_parser(sub)
    _cli_generate.add_parser(sub)
    _cli_bench.add_parser(sub)
    _cli_worker.add_parser(sub)
    _cli_pattern.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except CommandError as error:
        print(f"eventflow {args.command}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    return result


if __name__ == "__main__":
    raise SystemExit(main())
