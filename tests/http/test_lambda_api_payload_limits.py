"""LambdaAPI refuses, with 400 InvalidRequestContentException, JSON beyond a payload limit.

Each of these bodies is JSON that ``json.loads`` takes, and used to be answered 202 and
then fail every attempt, or not be dead-lettered, once accepted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

import eventflow
from eventflow.http import LambdaAPI

Running = Callable[[eventflow.App, Any], Awaitable[str]]
PATH = "/2015-03-31/functions/echo/invocations"
MAX_DEPTH = 500  # the documented bound (README, "Payload limits")


def deep(levels: int) -> bytes:
    return b"[" * levels + b"1" + b"]" * levels


BODIES = {
    "NaN": (b'{"x": NaN}', "nan", "$.x"),
    "Infinity": (b'{"a": [1, -Infinity]}', "-inf", "$.a[1]"),
    "a number too large for a float": (b'{"x": 1e400}', "inf", "$.x"),
    "a lone surrogate": (b'{"name": "caf\\ud800"}', "lone surrogate", "$.name"),
    "a lone surrogate in a key": (b'{"\\udfff": 1}', "lone surrogate", '$["\\udfff"]'),
    "nesting beyond the bound": (deep(MAX_DEPTH + 1), f"more than {MAX_DEPTH} levels", "$[0]"),
}


@pytest.mark.parametrize("kind", ["Event", "RequestResponse", "DryRun"])
@pytest.mark.parametrize("name", sorted(BODIES))
async def test_json_beyond_a_payload_limit_is_400_invalid_request_content(
    running: Running, kind: str, name: str
) -> None:
    ran: list[Any] = []

    async def echo(event: Any, context: eventflow.Context) -> Any:
        ran.append(event)
        return event

    app = eventflow.App(handlers=[eventflow.Handler(echo, name="echo")])
    url = await running(app, LambdaAPI(app))
    body, says, where = BODIES[name]
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.post(PATH, content=body, headers={"X-Amz-Invocation-Type": kind})
        # the API goes on: a good body right after is accepted
        good = await client.post(
            PATH, content=b'{"ok": 1}', headers={"X-Amz-Invocation-Type": "RequestResponse"}
        )
    assert response.status_code == 400, response.text
    assert response.headers["x-amzn-errortype"] == "InvalidRequestContentException"
    error = response.json()
    assert error["Type"] == "User"
    assert says in error["message"] and where in error["message"]
    assert good.status_code == 200 and good.json() == {"ok": 1}
    assert ran == [{"ok": 1}] and app.stats().received == 0


async def test_nesting_at_the_bound_is_accepted(running: Running) -> None:
    got: list[Any] = []

    async def echo(event: Any, context: eventflow.Context) -> None:
        got.append(event)

    app = eventflow.App(handlers=[eventflow.Handler(echo, name="echo")])
    url = await running(app, LambdaAPI(app))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.post(
            PATH, content=deep(MAX_DEPTH), headers={"X-Amz-Invocation-Type": "Event"}
        )
        assert response.status_code == 202
        await app.drain(timeout=10)
    assert len(got) == 1 and app.stats().succeeded == 1
