"""The app the multi-process tests run with ``eventflow worker scale_app:app``.

Configured by environment variables (each worker process reads them at import):

- ``EF_ENDPOINT``, ``EF_QUEUE_URL``, ``EF_DLQ_URL``: the moto server, the event queue and
  the dead-letter queue. On-success records go to ``success-<pid>.jsonl`` (a JsonlSink:
  reading 2,000 records back from moto would take minutes, its receive slows with depth).
- ``EF_TABLE``: a DynamoDB table for the idempotency store (none: no idempotency).
- ``EF_LOG_DIR``: where each process appends ``attempts-<pid>.log`` (one line per attempt
  started: request ID, attempt, time) and ``effects-<pid>.log`` (one line per side effect).
- ``EF_FREEZE_AFTER``: after this many attempts started here, every attempt blocks
  before its side effect, and ``frozen-<pid>`` is written once all workers are blocked:
  the test then kills the process with SIGKILL, mid-attempt but before any effect.
- ``EF_RETRY_DELAY``, ``EF_CONCURRENCY``, ``EF_HANDLER_SECONDS``: timing knobs.

Payloads are ``{"n": i, "kind": "ok" | "fail" | "fail_once"}``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import anyio

import eventflow
from eventflow.aws import DynamoDBStore, SQSEventQueue, SQSSink
from eventflow.sinks import JsonlSink

ENDPOINT = os.environ["EF_ENDPOINT"]
LOG_DIR = Path(os.environ["EF_LOG_DIR"])
FREEZE_AFTER = int(os.environ.get("EF_FREEZE_AFTER", "0"))
CONCURRENCY = int(os.environ.get("EF_CONCURRENCY", "8"))
HANDLER_SECONDS = float(os.environ.get("EF_HANDLER_SECONDS", "0.02"))
PID = os.getpid()

_attempts_log = (LOG_DIR / f"attempts-{PID}.log").open("a", buffering=1)
_effects_log = (LOG_DIR / f"effects-{PID}.log").open("a", buffering=1)
_started = 0
_blocked = 0

table = os.environ.get("EF_TABLE")
idempotency = eventflow.Idempotency(DynamoDBStore(table, endpoint_url=ENDPOINT)) if table else None

app = eventflow.App(
    name=f"scale-{PID}",
    concurrency=CONCURRENCY,
    queue=SQSEventQueue(
        os.environ["EF_QUEUE_URL"],
        endpoint_url=ENDPOINT,
        wait_time_seconds=1,
        delete_linger=float(os.environ.get("EF_DELETE_LINGER", "0.1")),
    ),
    shutdown_timeout=10,
)


@app.handler(
    retry_delays=(float(os.environ.get("EF_RETRY_DELAY", "1")),) * 2,
    timeout=float(os.environ.get("EF_TIMEOUT", "5")),
    dead_letter=SQSSink(os.environ["EF_DLQ_URL"], endpoint_url=ENDPOINT),
    on_success=JsonlSink(LOG_DIR / f"success-{PID}.jsonl", fsync=False),
    idempotency=idempotency,
)
async def work(event: dict[str, Any], context: eventflow.Context) -> dict[str, int]:
    global _started, _blocked
    _started += 1
    _attempts_log.write(f"{context.aws_request_id} {context.attempt} {time.time():.3f}\n")
    await anyio.sleep(HANDLER_SECONDS)  # the handler's I/O
    if FREEZE_AFTER and _started > FREEZE_AFTER:
        _blocked += 1
        if _blocked == CONCURRENCY:
            (LOG_DIR / f"frozen-{PID}").write_text("frozen")
        await anyio.sleep_forever()  # until SIGKILL: no effect, no outcome
    if event["kind"] == "fail" or (event["kind"] == "fail_once" and context.attempt == 1):
        raise RuntimeError(f"event {event['n']} failed on attempt {context.attempt}")
    _effects_log.write(f"{context.aws_request_id}\n")
    return {"n": event["n"]}
