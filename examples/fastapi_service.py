"""A FastAPI service that embeds an eventflow App: Lambda's Invoke API and an SNS endpoint.

The App starts and stops with the service (FastAPI's ``lifespan``), so leaving it drains
the events in flight. Two ASGI apps are mounted:

* ``/lambda``: :class:`eventflow.http.LambdaAPI`, so ``aws lambda invoke
  --endpoint-url http://127.0.0.1:8000/lambda --invocation-type Event ...`` queues an event;
* ``/sns``: :class:`eventflow.aws.SNSEndpoint` for an SNS HTTP(S) subscription of the
  ``ORDERS_TOPIC_ARN`` topic; it verifies every message's signature.

    uvicorn examples.fastapi_service:api --port 8000
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

import eventflow
from eventflow.aws import SNSEndpoint
from eventflow.events import SNSEvent
from eventflow.http import LambdaAPI

ORDERS_TOPIC_ARN = os.environ.get("ORDERS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:orders")

# handlers=[] serves only the @events.handler functions below, not every @eventflow.handler
events = eventflow.App(name="orders-service", handlers=[])


@events.handler(name="place-order")
async def place_order(event: dict[str, Any], context: eventflow.Context) -> dict[str, Any]:
    context.log.info("order.placed", order_id=event.get("orderId"))
    return {"ok": True, "orderId": event.get("orderId")}


@events.handler(name="on-order-event")
async def on_order_event(event: dict[str, Any], context: eventflow.Context) -> None:
    for record in SNSEvent.from_dict(event).records:
        context.log.info("order.notified", message_id=record.message_id, body=record.message)


sns = SNSEndpoint(events, on_order_event, topic_arns=[ORDERS_TOPIC_ARN])


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    # mounted ASGI apps get no lifespan of their own: the App's lifetime is the service's,
    # and so is the SNS endpoint's (its certificate fetches run in its own task group)
    async with events, sns:
        yield


api = FastAPI(title="orders", lifespan=lifespan)
api.mount("/lambda", LambdaAPI(events))
api.mount("/sns", sns)


@api.get("/health")
async def health() -> dict[str, Any]:
    s = events.stats()
    return {"received": s.received, "succeeded": s.succeeded, "failed": s.failed}
