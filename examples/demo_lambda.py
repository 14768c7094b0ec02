"""The seed lecture's ``demo-lambda``: returns ``event["key1"]``, or fails when told to.

It fails with ``Exception("Simulating error")`` when the event has ``"fail": true`` or the
environment has ``DEMO_LAMBDA_FAIL=1``, so the retries (1 s, then 2 s here instead of
Lambda's 60 s / 120 s) and the dead letter can be watched. ``"sleep": seconds`` makes an
attempt take that long, to watch a graceful shutdown drain it.

    eventflow invoke examples.demo_lambda:app demo-lambda --payload '{"key1": "value1"}'
    eventflow serve examples.demo_lambda:app
"""

from __future__ import annotations

import os
import time
from typing import Any

import eventflow
from eventflow.sinks import JsonlSink


@eventflow.handler(
    name="demo-lambda",
    retry_delays=(1.0, 2.0),
    dead_letter=JsonlSink(os.environ.get("DEMO_LAMBDA_DLQ", "demo-lambda-dead-letters.jsonl")),
)
def demo_lambda(event: dict[str, Any], context: eventflow.Context) -> Any:
    # a plain def, like the console's Python handler: it runs in a worker thread
    context.log.info(
        "demo_lambda.values", key1=event.get("key1"), key2=event.get("key2"), key3=event.get("key3")
    )
    time.sleep(float(event.get("sleep", 0)))
    if event.get("fail") or os.environ.get("DEMO_LAMBDA_FAIL") == "1":
        raise Exception("Simulating error")
    return event["key1"]


app = eventflow.App(name="demo-lambda", handlers=[demo_lambda])
