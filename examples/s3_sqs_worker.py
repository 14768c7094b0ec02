"""An S3 → SQS → eventflow worker: resize uploads, dead-letter what keeps failing to SQS.

S3 notifies the ``QUEUE_URL`` queue of every upload; :class:`eventflow.aws.SQSSource`
long-polls it and hands each notification to ``process_upload`` as Lambda would (the S3
event, keys form-encoded). A failing event is retried after 1 s and 2 s under one
request ID, then sent to ``DLQ_URL`` with Lambda's ``RequestID`` / ``ErrorCode`` /
``ErrorMessage`` attributes; its SQS message is deleted only then.

Run it with either of::

    eventflow serve examples.s3_sqs_worker:app      # also serves the Lambda Invoke API
    python examples/s3_sqs_worker.py                 # the worker alone; Ctrl-C drains and stops

Environment: ``QUEUE_URL``, ``DLQ_URL`` and the standard AWS settings
(``AWS_ENDPOINT_URL`` for moto or LocalStack); see examples/README.md.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import anyio
import structlog

import eventflow
import eventflow.logs
from eventflow.aws import SQSSink, SQSSource
from eventflow.events import S3Event

QUEUE_URL = os.environ.get("QUEUE_URL", "http://127.0.0.1:5000/123456789012/uploads")
DLQ_URL = os.environ.get("DLQ_URL", "http://127.0.0.1:5000/123456789012/uploads-dlq")


@eventflow.handler(name="process-upload", retry_delays=(1.0, 2.0), dead_letter=SQSSink(DLQ_URL))
async def process_upload(event: dict[str, Any], context: eventflow.Context) -> dict[str, Any]:
    done = []
    for record in S3Event.from_dict(event).records:
        if record.key.endswith(".corrupt"):
            raise ValueError(f"cannot decode {record.key}: corrupt image data")
        context.log.info("upload.processed", bucket=record.bucket, key=record.key)
        done.append(record.key)
    return {"processed": done}


app = eventflow.App(
    name="s3-sqs-worker",
    handlers=[process_upload],
    sources=[SQSSource(QUEUE_URL, process_upload, wait_time_seconds=5)],
)


async def main() -> None:
    """Run the worker until SIGINT or SIGTERM, then drain and stop."""
    async with app:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break  # leaving `async with app` drains the events in flight


if __name__ == "__main__":
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        processors=[
            structlog.contextvars.merge_contextvars,  # request_id, handler, attempt
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            eventflow.logs.format_exc_info,  # a failure's traceback, as text
            structlog.processors.JSONRenderer(),
        ],
    )
    anyio.run(main)
