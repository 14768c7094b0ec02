"""The examples import, and the FastAPI service works over a real socket."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import AsyncIterator, Iterator
from types import ModuleType

import httpx
import pytest
import uvicorn

import eventflow
from cli_support import ROOT


@pytest.fixture
def examples_path() -> Iterator[None]:
    sys.path.insert(0, str(ROOT))
    try:
        yield
    finally:
        sys.path.remove(str(ROOT))


def _import(name: str) -> ModuleType:
    sys.modules.pop(name, None)  # a fresh App per test: an App starts only once
    return importlib.import_module(name)


@pytest.mark.usefixtures("examples_path")
@pytest.mark.parametrize(
    ("module", "handlers"),
    [
        ("examples.demo_lambda", {"demo-lambda"}),
        ("examples.fastapi_service", {"place-order", "on-order-event"}),
        ("examples.s3_sqs_worker", {"process-upload"}),
    ],
)
def test_each_example_imports_and_defines_its_app(module: str, handlers: set[str]) -> None:
    loaded = _import(module)
    app = loaded.events if module.endswith("fastapi_service") else loaded.app
    assert isinstance(app, eventflow.App)
    assert set(app.handlers) == handlers


@pytest.fixture
async def service(examples_path: None, free_port: int) -> AsyncIterator[tuple[ModuleType, str]]:
    """examples.fastapi_service served by uvicorn on a real socket; yields (module, base URL)."""
    module = _import("examples.fastapi_service")
    server = uvicorn.Server(
        uvicorn.Config(module.api, host="127.0.0.1", port=free_port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(500):  # bounded: wait until uvicorn is listening
            if server.started or serving.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield module, f"http://127.0.0.1:{free_port}"
    finally:
        server.should_exit = True
        await serving


async def test_fastapi_service_accepts_an_async_invoke(service: tuple[ModuleType, str]) -> None:
    module, base = service
    async with httpx.AsyncClient(base_url=base) as client:
        accepted = await client.post(
            "/lambda/2015-03-31/functions/place-order/invocations",
            headers={"X-Amz-Invocation-Type": "Event"},
            json={"orderId": 42},
        )
        assert accepted.status_code == 202
        await module.events.drain(timeout=5)
        assert module.events.stats().succeeded == 1
        health = await client.get("/health")
        assert health.json() == {"received": 1, "succeeded": 1, "failed": 0}


async def test_fastapi_service_refuses_an_unsigned_sns_message(
    service: tuple[ModuleType, str],
) -> None:
    module, base = service
    unsigned = {
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": module.ORDERS_TOPIC_ARN,
        "Message": json.dumps({"orderId": 43}),
        "Timestamp": "2026-01-02T03:04:05.678Z",
    }
    async with httpx.AsyncClient(base_url=base) as client:
        refused = await client.post(
            "/sns/",  # a Mount answers "/sns" with a redirect to "/sns/"
            content=json.dumps(unsigned),
            headers={"x-amz-sns-message-type": "Notification"},
        )
        assert refused.status_code == 403
        assert "signature" in refused.text.lower()
        health = await client.get("/health")
    assert health.json()["received"] == 0  # the refused message reached no handler
