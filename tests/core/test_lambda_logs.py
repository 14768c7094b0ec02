"""eventflow.logs: START / END / REPORT per attempt, and the runtime's line for log entries."""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Any

import pytest
import structlog

import eventflow
from eventflow.logs import LambdaLogs, LambdaRenderer
from eventflow.testing import VirtualClock

REPORT = re.compile(
    r"REPORT RequestId: (?P<rid>[0-9a-f-]+)\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\t(?P<status>.*)"
)


async def test_a_timeout_and_an_exit_report_their_status_and_an_exception_does_not() -> None:
    clock = VirtualClock()
    lines: list[str] = []

    @eventflow.handler(timeout=1.0, max_retries=0)
    async def slow(event: Any, context: eventflow.Context) -> None:
        await asyncio.Event().wait()

    @eventflow.handler(max_retries=0)
    async def exits(event: Any, context: eventflow.Context) -> None:
        sys.exit(3)

    @eventflow.handler(max_retries=0)
    async def raises(event: Any, context: eventflow.Context) -> None:
        raise ValueError("bad input")

    app = eventflow.App(clock=clock, handlers=[slow, exits, raises])
    app.add_middleware(LambdaLogs(lines.append))
    async with app:
        ids = {name: (await app.invoke(name, {})).request_id for name in app.handlers}
        async with clock.autojump():
            await app.drain()
    reports = {m["rid"]: m["status"] for line in lines if (m := REPORT.fullmatch(line))}
    assert reports == {
        ids["slow"]: "Status: timeout",
        ids["exits"]: "Status: error\tError Type: Runtime.ExitError",
        ids["raises"]: "",
    }
    for rid in ids.values():
        start = lines.index(f"START RequestId: {rid} Version: $LATEST")
        end = lines.index(f"END RequestId: {rid}")
        assert start < end and REPORT.fullmatch(lines[end + 1])
    # the runtime's line for the unhandled error, with the handler's own frames
    unhandled = [line for line in lines if line.startswith("[ERROR] ValueError: bad input\n")]
    assert len(unhandled) == 1 and 'raise ValueError("bad input")' in unhandled[0]


async def test_added_middleware_runs_after_the_constructors_and_not_once_started() -> None:
    order: list[str] = []

    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        def accepted(self, event: eventflow.EventInfo) -> None:
            order.append(self.name)

    @eventflow.handler
    async def h(event: Any, context: eventflow.Context) -> None:
        pass

    app = eventflow.App(handlers=[h], middleware=[Named("given")])
    app.add_middleware(Named("added"))
    async with app:
        await app.invoke(h, {})
        await app.drain()
        with pytest.raises(RuntimeError, match="before the app starts"):
            app.add_middleware(Named("late"))
    assert order == ["given", "added"]


def test_the_renderer_writes_the_runtimes_line() -> None:
    render = LambdaRenderer()
    # outside an attempt: no request ID, and handler/attempt stay as key=value
    line = render(None, "info", {"event": "retry.scheduled", "handler": "h", "attempt": 1})
    assert re.fullmatch(
        r"\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t\tretry\.scheduled handler='h' "
        r"attempt=1",
        line,
    )
    with structlog.contextvars.bound_contextvars(request_id="r-1", handler="h", attempt=2):
        entry: dict[str, Any] = {"event": "boom", "level": "error", "request_id": "r-1"}
        entry |= {"handler": "h"}
        entry |= {"attempt": 2, "exception": "Traceback ...", "n": 3}
        line = render(None, "error", entry)
    first, rest = line.split("\n", 1)
    assert first.split("\t")[0] == "[ERROR]" and first.split("\t")[2:] == ["r-1", "boom n=3"]
    assert rest == "Traceback ..."
