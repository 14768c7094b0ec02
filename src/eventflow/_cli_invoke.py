"""``eventflow invoke``: run one invocation of a handler in-process, as ``aws lambda invoke`` would.

The handlers of the App at ``MODULE:APP`` run in a private, in-memory copy of it: its
sources and its shared event queue do not run, so the command takes no one else's events
and follows only its own. ``RequestResponse`` prints the result as JSON on stdout and exits 1 on a
function error; ``Event`` prints the request ID at once, then waits for the event's final
outcome (retries included) with a progress line on stderr; ``DryRun`` only validates.
Logs go to stderr so that stdout carries only the result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import anyio

from ._app import App
from ._cli_common import (
    CommandError,
    add_log_options,
    configure_logging,
    describe,
    load_app,
    private_copy,
)
from ._errors import InvalidPayload
from ._progress import ProgressBar
from ._results import InvocationResult
from .sources import Outcome

__all__ = ("add_parser",)


def _payload(text: str) -> Any:
    source = "--payload"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(
                f"Cannot read the payload file {str(path)!r}: {exc.strerror}."
            ) from None
        source = f"the payload file {str(path)!r}"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None


async def _invoke(app: App, args: argparse.Namespace, payload: Any) -> int:
    async with private_copy(app) as private:
        try:
            if args.invocation_type == "Event":
                return await _follow_event(private, args.handler, payload)
            result = await private.invoke(
                args.handler, payload, invocation_type=args.invocation_type
            )
        except InvalidPayload as exc:
            raise CommandError(str(exc)) from None
        return _report(result, args.log_type)


async def _follow_event(app: App, handler: str, payload: Any) -> int:
    """Accept one event, then wait for its own terminal outcome, retries included."""
    outcomes: list[Outcome] = []
    settled = anyio.Event()

    def settle(request_id: str, outcome: Outcome) -> None:
        outcomes.append(outcome)
        settled.set()

    accepted = await app.submit(handler, payload, settle=settle)
    print(json.dumps({"StatusCode": 202, "RequestId": accepted.request_id}), flush=True)

    def status() -> str:
        s = app.stats()
        return (
            f"attempts {s.attempts}  errors {s.errors}  waiting for a retry {s.scheduled}  "
            f"running {s.in_flight}"
        )

    bar = ProgressBar(1, lambda: len(outcomes), status, stream=sys.stderr)
    async with anyio.create_task_group() as tg:
        tg.start_soon(bar.run)
        await settled.wait()
        tg.cancel_scope.cancel()
    s = app.stats()  # the private app ran this one event only
    if outcomes[0] is Outcome.SUCCEEDED:
        outcome = "succeeded"
    elif outcomes[0] is Outcome.FAILED:
        outcome = "expired" if s.expired else "failed"
    else:
        outcome = outcomes[0].value
    print(
        json.dumps({"RequestId": accepted.request_id, "Outcome": outcome, "Attempts": s.attempts})
    )
    return 0 if outcome == "succeeded" else 1


def _report(result: InvocationResult, log_type: str) -> int:
    if log_type == "Tail" and result.log:
        print(result.log.rstrip("\n"), file=sys.stderr)
    if result.status_code == 204:
        print(json.dumps({"StatusCode": 204, "RequestId": result.request_id}))
        return 0
    print(json.dumps(result.payload, indent=2))
    if result.function_error is not None:
        print(
            f"eventflow invoke: the function failed ({result.function_error}), "
            f"request ID {result.request_id}.",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd(args: argparse.Namespace) -> int:
    payload = _payload(args.payload)
    configure_logging(args.log_level, args.log_format, stream=sys.stderr)
    app, _ = load_app(args.app)
    app.log_success = True  # a person reads these lines
    if args.handler not in app.handlers:  # checked before the app (and its sources) start
        names = ", ".join(sorted(app.handlers)) or "none"
        raise CommandError(f"The app has no handler named {args.handler!r}; it serves: {names}.")
    return asyncio.run(_invoke(app, args, payload))


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``invoke``."""
    p = sub.add_parser(
        "invoke",
        help="invoke one handler of an App in-process",
        description=describe(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "app", metavar="MODULE:APP", help="the eventflow.App, e.g. examples.demo_lambda:app"
    )
    p.add_argument("handler", metavar="HANDLER", help="the handler's (function's) name")
    p.add_argument(
        "--payload", default="{}", metavar="JSON|@FILE", help="the event, JSON text or @file ({})"
    )
    p.add_argument(
        "--invocation-type",
        default="RequestResponse",
        choices=("Event", "RequestResponse", "DryRun"),
        help="(RequestResponse)",
    )
    p.add_argument(
        "--log-type",
        default="None",
        choices=("None", "Tail"),
        help="Tail prints the attempt's log in Lambda's format on stderr (RequestResponse)",
    )
    # a one-off command: stdout carries the result, stderr only what needs attention
    add_log_options(p, default_level="warning")
    p.set_defaults(func=_cmd)
