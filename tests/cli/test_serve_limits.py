"""``eventflow serve``'s uvicorn limits, over a real socket: what a hostile client meets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from cli_support import Cli

import eventflow
from eventflow._cli_serve import server_config
from eventflow.http import LambdaAPI
from http_support import BOUND, connect, serve_config

INVOKE = "/2015-03-31/functions/echo/invocations"


async def echo(event: Any, context: eventflow.Context) -> Any:
    await asyncio.sleep(event.get("sleep", 0))  # the handler's own work, not a test's wait
    return event


def config(app: eventflow.App, **limits: Any) -> Any:
    return server_config(
        LambdaAPI(app), host="127.0.0.1", port=0, log_level="warning", access_log=False, **limits
    )


def make_app() -> eventflow.App:
    return eventflow.App(handlers=[eventflow.Handler(echo, name="echo")], concurrency=2)


async def test_a_stalled_or_trickled_request_head_is_closed() -> None:
    app = make_app()
    loop = asyncio.get_running_loop()
    async with app, serve_config(config(app, head_timeout=0.5)) as url:
        host = url.removeprefix("http://")
        # Given a head that stops half-way
        async with connect(url) as stalled:
            await stalled.send(f"POST {INVOKE} HTTP/1.1\r\nHost: {host}\r\n".encode())
            started = loop.time()
            assert await stalled.closed()
            assert loop.time() - started > 0.4
        # and one that arrives a byte at a time, after a first request was answered
        async with connect(url) as trickled:
            request = f"GET /2015-03-31/functions/ HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
            await trickled.send(request)
            assert (await trickled.answer(close_wait=0)).status == 200

            async def trickle() -> None:
                for byte in f"POST {INVOKE} HTTP/1.1\r\nX-Padding: {'x' * 500}".encode():
                    await trickled.send(bytes([byte]))
                    await asyncio.sleep(0.02)  # the client's pace

            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(trickle())
                closed = await trickled.closed()
                task.cancel()
            assert closed


async def test_a_request_longer_than_the_head_timeout_is_not_cut() -> None:
    app = make_app()
    async with app, serve_config(config(app, head_timeout=0.3)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=BOUND) as http:
            # the handler runs for 0.6 s, twice the head timeout, on a kept-alive connection
            for _ in range(2):
                response = await http.post(INVOKE, json={"sleep": 0.6})
                assert response.status_code == 200
                assert response.json() == {"sleep": 0.6}


async def test_a_head_growing_past_16_kib_is_refused_and_closed() -> None:
    app = make_app()
    async with app, serve_config(config(app)) as url:
        host = url.removeprefix("http://")
        async with connect(url) as raw:
            # a head still incomplete at 20 KB: h11 holds no more of it
            padding = "x" * 20_000
            await raw.send(
                f"POST {INVOKE} HTTP/1.1\r\nHost: {host}\r\nX-Padding: {padding}".encode()
            )
            answer = await raw.answer()
    assert answer.status == 400
    assert answer.closed


async def test_connections_over_the_limit_are_answered_503() -> None:
    app = make_app()
    async with app, serve_config(config(app, limit_concurrency=3)) as url:
        async with connect(url), connect(url):  # two idle connections held open
            async with httpx.AsyncClient(base_url=url) as http:
                busy = await http.post(INVOKE, json={})
        assert busy.status_code == 503
        async with httpx.AsyncClient(base_url=url) as http:
            ok = await http.post(INVOKE, json={"n": 1})
        assert (ok.status_code, json.loads(ok.content)) == (200, {"n": 1})


def test_limits_must_be_positive(cli: Cli) -> None:
    for option, value in (("--limit-concurrency", "0"), ("--graceful-timeout", "-1")):
        result = cli("serve", "examples.demo_lambda:app", option, value)
        assert result.returncode == 2
        assert option in result.stderr and "must be a positive" in result.stderr


async def test_requests_still_open_after_the_graceful_timeout_are_cancelled() -> None:
    started = asyncio.Event()

    async def slow(event: Any, context: eventflow.Context) -> None:
        started.set()
        await asyncio.sleep(60)  # the handler's own work: a minute

    app = eventflow.App(
        handlers=[eventflow.Handler(slow, name="echo")], concurrency=2, shutdown_timeout=0.5
    )
    loop = asyncio.get_running_loop()
    async with app, httpx.AsyncClient(timeout=60) as http:
        async with serve_config(config(app, graceful_timeout=0.5)) as url:
            # Given a RequestResponse call whose handler runs for a minute
            call = asyncio.ensure_future(http.post(url + INVOKE, json={}))
            await asyncio.wait_for(started.wait(), BOUND)
            # When the server is told to stop (leaving the block sets should_exit)
            stopping = loop.time()
        # Then uvicorn stopped waiting for it after the graceful timeout
        assert loop.time() - stopping < BOUND
        (outcome,) = await asyncio.gather(call, return_exceptions=True)
        assert isinstance(outcome, httpx.HTTPError) or outcome.status_code >= 500
