"""LambdaAPI against hostile clients: a raw socket sends headers, then stalls or trickles.

Each test asserts that the server answers (with Lambda's error shape) and closes the
connection within a bound, and that the bodies it holds in memory stay bounded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import eventflow
from eventflow.http import MAX_SYNC_PAYLOAD_BYTES, LambdaAPI
from http_support import BOUND, connect

REGION = "us-east-1"
KEY, SECRET = "AKIDEXAMPLE", "secret"
INVOKE = "/2015-03-31/functions/echo/invocations"


def head(url: str, length: int | None, **headers: str) -> bytes:
    """A request head for Invoke; ``length`` None sends the body chunked."""
    lines = [f"POST {INVOKE} HTTP/1.1", f"Host: {urlsplit(url).netloc}"]
    if length is None:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {length}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def signed_headers(url: str, body: bytes, key: str = KEY) -> dict[str, str]:
    """The headers botocore signs ``body`` with, for Invoke at ``url``."""
    request = AWSRequest(method="POST", url=url + INVOKE, data=body)
    SigV4Auth(Credentials(key, SECRET), "lambda", REGION).add_auth(request)
    return {name: value for name, value in request.headers.items() if name.lower() != "host"}


def padded(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes."""
    return b'{"pad": "' + b"x" * (size - 11) + b'"}'


async def wait_for(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(BOUND):
        while not condition():  # noqa: ASYNC110 - one condition, bounded
            await anyio.sleep(0.01)


async def echo(event: Any, context: eventflow.Context) -> Any:
    return {"size": len(json.dumps(event))}


def make_app() -> eventflow.App:
    return eventflow.App(handlers=[eventflow.Handler(echo, name="echo")], concurrency=2)


# --------------------------------------------------------------------------- before the body


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        pytest.param({}, "MissingAuthenticationTokenException", id="no-authorization"),
        pytest.param(
            {"Authorization": "Bearer abc"}, "IncompleteSignatureException", id="not-sigv4"
        ),
        pytest.param(
            {
                "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDOTHER/20261207/us-east-1/"
                "lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
                "X-Amz-Date": "20261207T000000Z",
            },
            "UnrecognizedClientException",
            id="unknown-key",
        ),
        pytest.param(
            {
                "Authorization": f"AWS4-HMAC-SHA256 Credential={KEY}/20200101/us-east-1/lambda/"
                "aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
                "X-Amz-Date": "20200101T000000Z",
            },
            "InvalidSignatureException",
            id="stale-date",
        ),
    ],
)
async def test_an_unauthenticated_client_is_refused_before_its_body(
    running: Any, headers: dict[str, str], code: str
) -> None:
    app = make_app()
    api = LambdaAPI(app, credentials=(KEY, SECRET))
    url = await running(app, api)
    async with connect(url) as raw:
        # Given headers announcing a 6 MB body that never comes
        await raw.send(head(url, MAX_SYNC_PAYLOAD_BYTES, **headers))
        # Then the server answers 403 at once, and closes the connection
        answer = await raw.answer()
    assert answer.status == 403
    assert answer.headers["x-amzn-errortype"] == code
    assert json.loads(answer.body)["Type"] == "User"
    assert answer.closed
    stats = api.statistics()
    assert (stats.unauthenticated, stats.body_bytes) == (1, 0)
    assert app.stats().received == 0


# --------------------------------------------------------------------------- body timeout


@pytest.mark.parametrize("signed", [False, True], ids=["open", "signed"])
async def test_a_stalled_body_is_answered_408_and_closed(running: Any, signed: bool) -> None:
    app = make_app()
    credentials = (KEY, SECRET) if signed else None
    api = LambdaAPI(app, credentials=credentials, body_timeout=0.5)
    url = await running(app, api)
    body = padded(1000)
    extra = signed_headers(url, body) if signed else {}
    async with connect(url) as raw:
        # Given a request whose body stops after 10 bytes (signed correctly, when signed)
        await raw.send(head(url, len(body), **extra) + body[:10])
        await wait_for(lambda: api.statistics().body_bytes == len(body))
        answer = await raw.answer()
    assert answer.status == 408
    assert answer.headers["x-amzn-errortype"] == "RequestTimeoutException"
    assert "0.5 seconds" in json.loads(answer.body)["message"]
    assert answer.closed
    stats = api.statistics()
    assert (stats.body_timeouts, stats.unauthenticated, stats.body_bytes) == (1, 0, 0)


async def test_a_trickled_body_is_answered_408_within_the_bound(running: Any) -> None:
    app = make_app()
    api = LambdaAPI(app, body_timeout=0.5)
    url = await running(app, api)
    body = padded(100_000)
    loop = asyncio.get_running_loop()
    async with connect(url) as raw:
        await raw.send(head(url, len(body)))
        started = loop.time()

        async def trickle() -> None:  # a byte every 20 ms: never idle, never done
            for i in range(len(body)):
                await raw.send(body[i : i + 1])
                await asyncio.sleep(0.02)

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(trickle())
            answer = await raw.answer()
            elapsed = loop.time() - started
            task.cancel()
    assert answer.status == 408
    assert answer.closed
    assert 0.4 < elapsed < BOUND
    assert api.statistics().body_bytes == 0


# --------------------------------------------------------------------------- memory bound


async def test_bodies_in_memory_are_bounded_across_connections(running: Any) -> None:
    app = make_app()
    api = LambdaAPI(app, max_body_memory=MAX_SYNC_PAYLOAD_BYTES)
    url = await running(app, api)
    big = padded(4_000_000)
    async with connect(url) as first, connect(url) as second, connect(url) as third:
        # Given a request holding 4 MB of the 6 MB while its body arrives
        await first.send(head(url, len(big)) + big[:1000])
        await wait_for(lambda: api.statistics().body_bytes == len(big))
        # When another announces 4 MB: refused at once, 429 and closed
        await second.send(head(url, len(big)))
        refused = await second.answer()
        assert refused.status == 429
        assert refused.headers["x-amzn-errortype"] == "TooManyRequestsException"
        assert refused.headers["retry-after"] == "1"
        assert refused.closed
        # and a chunked body that grows past what is left: refused once it does
        free = MAX_SYNC_PAYLOAD_BYTES - len(big)
        await third.send(head(url, None) + f"{free + 1:x}\r\n".encode() + b" " * (free + 1))
        chunked = await third.answer()
        assert (chunked.status, chunked.closed) == (429, True)
        # Then the first request completes, and gives its memory back
        await first.send(big[1000:])
        done = await first.answer()
        assert done.status == 200
        assert json.loads(done.body) == {"size": len(big)}
    assert api.statistics().body_bytes == 0
    assert api.statistics().over_memory == 2
    async with httpx.AsyncClient(base_url=url) as http:
        again = await http.post(INVOKE, content=big)
    assert again.status_code == 200


def test_body_limits_are_checked_when_given() -> None:
    app = make_app()
    for wrong in (0, -1.0, float("inf"), True):
        with pytest.raises(eventflow.ConfigurationError, match="body_timeout"):
            LambdaAPI(app, body_timeout=wrong)
    with pytest.raises(eventflow.ConfigurationError, match="max_body_memory"):
        LambdaAPI(app, max_body_memory=MAX_SYNC_PAYLOAD_BYTES - 1)


# --------------------------------------------------------------------------- header values


@pytest.mark.parametrize("value", ["", "event", "Later"])
async def test_an_empty_or_unknown_invocation_type_is_refused(running: Any, value: str) -> None:
    app = make_app()
    url = await running(app, LambdaAPI(app))
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post(INVOKE, content=b"{}", headers={"X-Amz-Invocation-Type": value})
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"] == "InvalidParameterValueException"
    assert "X-Amz-Invocation-Type" in response.json()["message"]
    assert app.stats().received == 0
