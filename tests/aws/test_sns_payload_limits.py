"""SNSEndpoint refuses, with 400, JSON beyond a payload limit before it reaches a handler."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import eventflow
from eventflow.aws._sns_http import SNSEndpoint
from http_support import serve_asgi as serve

TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"


def notification_text(message: str) -> str:
    """A Notification whose ``Message`` is the JSON text ``message`` (escapes kept)."""
    fields = {
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": TOPIC,
        "Message": "@MESSAGE@",
        "Timestamp": "2026-01-02T03:04:05.678Z",
    }
    return json.dumps(fields).replace('"@MESSAGE@"', message)


BODIES = {
    "a lone surrogate in the message": (notification_text('"order \\ud800"'), "$.Message"),
    "NaN": (notification_text('"ok"')[:-1] + ', "Extra": NaN}', "$.Extra"),
    "nesting beyond the bound": (
        notification_text('"ok"')[:-1] + ', "Extra": ' + "[" * 600 + "]" * 600 + "}",
        "more than 500 levels",
    ),
}


@pytest.mark.parametrize("name", sorted(BODIES))
async def test_json_beyond_a_payload_limit_is_refused_with_400(name: str) -> None:
    ran: list[Any] = []

    async def on_order(event: Any, context: eventflow.Context) -> None:
        ran.append(event)

    app = eventflow.App(handlers=[eventflow.Handler(on_order, name="on_order")])
    endpoint = SNSEndpoint(app, "on_order", topic_arns=[TOPIC], verify_signatures=False)
    body, where = BODIES[name]
    async with app, serve(endpoint) as url, httpx.AsyncClient(base_url=url) as client:
        refused = await client.post("/", content=body)
        accepted = await client.post("/", content=notification_text('"fine"'))
        await app.drain(timeout=10)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_payload"
    assert where in refused.json()["message"]
    assert accepted.status_code == 200
    assert [event["Records"][0]["Sns"]["Message"] for event in ran] == ["fine"]
    assert endpoint.statistics().refused["invalid_payload"] == 1
