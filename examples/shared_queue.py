"""The event queue on SQS: invoke in one process, run in any number of worker processes.

``EVENTS_URL`` is the shared event queue, ``DLQ_URL`` the handlers' dead-letter queue and
``IDEMPOTENCY_TABLE`` (optional) a DynamoDB table for exactly-once effects. The same
module serves both roles:

    eventflow worker examples.shared_queue:app --processes 2     # the workers
    python examples/shared_queue.py 100                            # invoke 100 events

A charge whose amount is negative fails, is retried after 1 s and 2 s through SQS (in
whichever worker receives it), then goes to ``DLQ_URL``. Kill a worker with ``kill -9``
while it runs: its events run again in the other after the queue's visibility timeout.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import anyio
import structlog

import eventflow
from eventflow.aws import DynamoDBStore, SQSEventQueue, SQSSink

_table = os.environ.get("IDEMPOTENCY_TABLE")

app = eventflow.App(
    name="payments",
    concurrency=50,
    # run as a script it only invokes; under `eventflow worker` it consumes
    queue=SQSEventQueue(os.environ["EVENTS_URL"], consume=__name__ != "__main__"),
)


@app.handler(
    name="charge",
    retry_delays=(1.0, 2.0),
    timeout=30,
    dead_letter=SQSSink(os.environ["DLQ_URL"]),
    idempotency=eventflow.Idempotency(DynamoDBStore(_table), key="payment_id") if _table else None,
)
async def charge(event: dict[str, Any], context: eventflow.Context) -> dict[str, Any]:
    if event["amount"] < 0:
        raise ValueError(f"payment {event['payment_id']} has a negative amount")
    await anyio.sleep(0.05)  # the payment provider's API
    context.log.info("charged", payment_id=event["payment_id"])
    return {"charged": event["amount"]}


async def invoke_many(count: int) -> None:
    async with app, anyio.create_task_group() as tg:
        for i in range(count):
            # concurrent invokes share SendMessageBatch calls, ten events each
            payment = {"payment_id": f"p-{i}", "amount": -1 if i % 10 == 9 else 10 + i}
            tg.start_soon(app.invoke, "charge", payment)
    print(f"{count} events on the queue; {app.stats().enqueued} accepted (202)")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    anyio.run(invoke_many, int(sys.argv[1]) if len(sys.argv) > 1 else 100)
