"""Fixtures for the Lambda API tests: uvicorn on 127.0.0.1, a moto server, a clean AWS env.

Every test here runs with the AWS_* environment stripped and empty config files, so no
client reaches a real account; the dead-letter and destination tests also point the
standard ``AWS_ENDPOINT_URL`` at this directory's own moto server, which is how the
LambdaAPI resolves the ARNs it is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import pytest

from aws_support import isolate_aws_environment
from http_support import serve_asgi as _serve

REGION = "us-east-1"
T = TypeVar("T")


async def host(context: AbstractAsyncContextManager[T]) -> tuple[T, Callable[[], Awaitable[None]]]:
    """Enter ``context`` in a task of its own; return its value and a coroutine to leave it.

    An async fixture's setup and teardown may run in different tasks, and anyio's task
    groups (an App's, uvicorn's) must be left by the task that entered them.
    """
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[T] = loop.create_future()
    leave = asyncio.Event()

    async def run() -> None:
        try:
            async with context as value:
                ready.set_result(value)
                await leave.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    task = asyncio.create_task(run())
    try:
        value = await ready
    except BaseException:
        await asyncio.gather(task, return_exceptions=True)
        raise

    async def stop() -> None:
        leave.set()
        await task

    return value, stop


@pytest.fixture
def serve() -> Callable[[Any], AbstractAsyncContextManager[str]]:
    """``async with serve(asgi) as url``: the app served by uvicorn for the block."""
    return _serve


@asynccontextmanager
async def _running(app: Any, asgi: Any) -> AsyncIterator[str]:
    async with app, _serve(asgi) as url:
        yield url


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Any, Any], Awaitable[str]]]:
    """``url = await running(app, asgi)``: the App started and ``asgi`` served until the
    test ends (for fixtures; a test can use ``async with app, serve(asgi)`` directly)."""
    stops: list[Callable[[], Awaitable[None]]] = []

    async def start(app: Any, asgi: Any) -> str:
        url, stop = await host(_running(app, asgi))
        stops.append(stop)
        return url

    yield start
    for stop in reversed(stops):
        await stop()


@pytest.fixture
def moto_url(moto_endpoint: str) -> str:
    return moto_endpoint


@pytest.fixture(autouse=True)
def _isolate_aws_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    isolate_aws_environment(monkeypatch, tmp_path_factory)


@pytest.fixture
def aws_on_moto(monkeypatch: pytest.MonkeyPatch, moto_url: str) -> str:
    """Dummy credentials, us-east-1 and AWS_ENDPOINT_URL = the moto server; its URL."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    return moto_url
