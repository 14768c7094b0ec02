"""``eventflow test-event-pattern``: does an event match an EventBridge event pattern?

As ``aws events test-event-pattern`` does, it prints {"Result": true} or {"Result": false}
on stdout and exits 0 either way. Each option takes JSON text, file://PATH or @PATH. An
invalid pattern is reported with the field and the problem, and exits with 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._cli_common import CommandError, describe
from ._errors import InvalidPattern
from .routing import EventPattern

__all__ = ("add_parser",)


def _json(text: str, option: str) -> Any:
    source = option
    for marker in ("file://", "@"):
        if text.startswith(marker):
            path = Path(text[len(marker) :])
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(
                    f"Cannot read {option} file {str(path)!r}: {exc.strerror}."
                ) from None
            source = f"{option} file {str(path)!r}"
            break
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None


def _cmd(args: argparse.Namespace) -> int:
    pattern = _json(args.event_pattern, "--event-pattern")
    event = _json(args.event, "--event")
    try:
        matcher = EventPattern(pattern)
    except InvalidPattern as exc:
        raise CommandError(str(exc)) from None
    if not isinstance(event, dict):
        raise CommandError(f"--event must be a JSON object (an EventBridge event), got {event!r}.")
    print(json.dumps({"Result": matcher.matches(event)}))
    return 0


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "test-event-pattern",
        help="test whether an event matches an EventBridge event pattern",
        description=describe(__doc__),
    )
    parser.add_argument(
        "--event-pattern", required=True, metavar="JSON", help="the pattern (JSON, file://PATH)"
    )
    parser.add_argument(
        "--event", required=True, metavar="JSON", help="the event (JSON, file://PATH)"
    )
    parser.set_defaults(func=_cmd)
