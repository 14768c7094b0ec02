"""The app of the SQLiteQueue kill tests (tests/queues/test_sqlite_kill.py).

``python -m eventflow worker durable_app:app`` runs it as a worker;
``python durable_app.py invoke N`` runs it and invokes N events itself (10% failing for
good, 10% failing once), writing each request ID that was answered 202 to the file
``DURABLE_ACCEPTED`` names;
``python durable_app.py flood`` only invokes, from 100 concurrent callers, until killed.

Every outcome is a line in a file that is flushed and fsynced before the handler or the
dead-letter send returns: ``effects-PID.jsonl`` (successes) and ``dead-PID.jsonl``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import structlog

import eventflow
from eventflow.queues import SQLiteQueue
from eventflow.sinks import JsonlSink

OUT = Path(os.environ["DURABLE_OUT"])
DELAY = float(os.environ.get("DURABLE_RETRY_DELAY", "1"))
CONSUME = os.environ.get("DURABLE_CONSUME", "1") == "1"

app = eventflow.App(
    name="durable",
    concurrency=20,
    shutdown_timeout=10,
    queue=SQLiteQueue(
        os.environ["DURABLE_DB"],
        consume=CONSUME,
        synchronous=os.environ.get("DURABLE_SYNCHRONOUS", "FULL"),  # type: ignore[arg-type]
        lease=float(os.environ.get("DURABLE_LEASE", "2")),
        poll_interval=0.05,
    ),
)


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


@app.handler(
    retry_delays=(DELAY, DELAY),
    dead_letter=JsonlSink(OUT / f"dead-{os.getpid()}.jsonl"),
)
def work(event: dict[str, int], context: eventflow.Context) -> None:
    n = event["n"]
    if n % 10 == 0:
        raise RuntimeError(f"event {n} always fails")
    if n % 10 == 1 and context.attempt == 1:
        raise RuntimeError(f"event {n} fails once")
    record = {"rid": context.aws_request_id, "n": n, "attempt": context.attempt}
    _append(OUT / f"effects-{os.getpid()}.jsonl", {**record, "pid": os.getpid()})


_ACCEPTED: list[int] = []


def _accepted(request_id: str, n: int) -> None:
    # one write to a file: the kernel keeps it when this process is killed
    if not _ACCEPTED:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        _ACCEPTED.append(os.open(os.environ["DURABLE_ACCEPTED"], flags, 0o644))
    os.write(_ACCEPTED[0], f"{request_id} {n}\n".encode())


async def _invoke(total: int) -> None:
    callers = 20
    async with app:

        async def caller(first: int) -> None:
            for n in range(first, total, callers):
                accepted = await app.invoke(work, {"n": n})
                _accepted(accepted.request_id, n)
                await anyio.sleep(0.01)  # paced, so that a kill lands midway

        async with anyio.create_task_group() as tg:
            for first in range(callers):
                tg.start_soon(caller, first)
        await app.drain()


async def _flood() -> None:
    async with app:

        async def caller(first: int) -> None:
            n = first
            while True:
                accepted = await app.invoke(work, {"n": n})
                _accepted(accepted.request_id, n)
                n += 100

        async with anyio.create_task_group() as tg:
            for first in range(100):
                tg.start_soon(caller, first)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if sys.argv[1] == "invoke":
        anyio.run(_invoke, int(sys.argv[2]))
    else:
        anyio.run(_flood)
