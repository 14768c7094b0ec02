"""The ``eventflow`` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import (
    __version__,
    _cli_bench,
    _cli_completion,
    _cli_generate,
    _cli_invoke,
    _cli_pattern,
    _cli_redrive,
    _cli_serve,
    _cli_worker,
)
from ._cli_common import USAGE_ERROR, CommandError, configure_logging, retry_delays

__all__ = ("main",)


def _configure_logging(level: str, fmt: str) -> None:
    # the demo's log goes to stderr: its stdout is the summary
    configure_logging(level, fmt, stream=sys.stderr)


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
    from ._demo import all_accounted_for, check_writable, format_report, run_demo

    if args.transient_failures + args.permanent_failures > 1:
        raise CommandError(
            "--transient-failures and --permanent-failures are shares of the events and add "
            f"up to {args.transient_failures + args.permanent_failures:g}; keep their sum at "
            "most 1."
        )
    unwritable = check_writable(args.dead_letters)
    if unwritable is not None:
        raise CommandError(f"{unwritable}; pass --dead-letters with a writable path.")
    _configure_logging(args.log_level, args.log_format)
    if args.durable:
        return _durable_demo(args)
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
    return 0 if all_accounted_for(report) else 1


def _durable_demo(args: argparse.Namespace) -> int:
    import tempfile

    from ._demo_durable import (
        DurableSetup,
        durable_all_accounted_for,
        format_durable_report,
        run_durable_demo,
    )

    with tempfile.TemporaryDirectory(prefix="eventflow-demo-") as tmp:
        queue_file = args.queue_file if args.queue_file is not None else Path(tmp) / "queue.db"
        setup = DurableSetup(
            queue_file=str(queue_file),
            dead_letters=str(args.dead_letters),
            effects=str(Path(tmp) / "effects.jsonl"),
            events=args.events,
            concurrency=args.concurrency,
            transient_failure_rate=args.transient_failures,
            permanent_failure_rate=args.permanent_failures,
            retry_delays=args.retry_delays,
            seed=args.seed,
        )
        report = asyncio.run(run_durable_demo(setup))
    print(format_durable_report(report))
    return 0 if durable_all_accounted_for(report) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventflow",
        description="Run Lambda-style asynchronous handlers in any asyncio service.",
    )
    parser.add_argument("--version", action="version", version=f"eventflow {__version__}")
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
        type=retry_delays,
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
        "--durable",
        action="store_true",
        help=(
            "run on a durable SQLiteQueue file instead: a child process invokes, is killed "
            "with SIGKILL midway, and this process drains the file, showing that every event "
            "accepted (202) before the kill reaches its outcome"
        ),
    )
    demo.add_argument(
        "--queue-file",
        type=Path,
        default=None,
        help="with --durable: the queue file, replaced on each run (a temporary file)",
    )
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
    _cli_redrive.add_parser(sub)
    _cli_completion.add_parser(sub, parser)  # last: its script lists every other command
    return parser


INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
FAILED = 1


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, reporting an unknown option with the usage of the subcommand it was given to."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        command = _subcommand(parser, args)
        (command or parser).error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _subcommand(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser | None:
    """The innermost subparser that ``args`` went through (``generate-event s3 put``)."""
    found: argparse.ArgumentParser | None = None
    current = parser
    while True:
        actions = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions:
            return found
        chosen = getattr(args, actions[0].dest or "", None)
        if chosen is None or chosen not in actions[0].choices:
            return found
        found = current = actions[0].choices[chosen]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0 success, 1 a failure (one line on stderr; ``--log-level debug`` adds the traceback),
    2 a usage error, 130 interrupted with Ctrl-C.
    """
    parser = build_parser()
    try:
        args = _parse(parser, argv)
    except KeyboardInterrupt:
        return INTERRUPTED
    try:
        result: int = args.func(args)
    except CommandError as error:
        print(f"eventflow {args.command}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return INTERRUPTED  # Ctrl-C before the command installed its own signal handling
    except Exception as error:  # a start-up failure: one clear line, the traceback on request
        if getattr(args, "log_level", None) == "debug":
            traceback.print_exc()
        print(f"eventflow {args.command}: error: {_describe(error)}", file=sys.stderr)
        if getattr(args, "log_level", None) != "debug":
            print("(run again with --log-level debug for the traceback)", file=sys.stderr)
        return FAILED
    return result


def _describe(error: BaseException) -> str:
    """``ExcType: message`` for an error, following an exception group to its first leaf."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error).strip() or "(no message)"
    return f"{type(error).__name__}: {text}"


if __name__ == "__main__":
    raise SystemExit(main())
