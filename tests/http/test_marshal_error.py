"""A result JSON cannot encode is answered as Lambda's Runtime.MarshalError, not a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

import eventflow
from eventflow.http import LambdaAPI

Serve = Callable[[Any], AbstractAsyncContextManager[str]]


async def test_request_response_with_a_result_json_cannot_encode(serve: Serve) -> None:
    async def huge(event: Any, context: eventflow.Context) -> Any:
        return {"n": 10**5000}  # past Python's int/str conversion limit

    app = eventflow.App(handlers=[eventflow.Handler(huge, name="huge", max_retries=0)])
    async with app, serve(LambdaAPI(app)) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/2015-03-31/functions/huge/invocations",
            content=b"{}",
            headers={"X-Amz-Invocation-Type": "RequestResponse"},
        )
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    error = json.loads(response.content)
    assert error["errorType"] == "Runtime.MarshalError"
    assert error["errorMessage"].startswith("Unable to marshal response:")
