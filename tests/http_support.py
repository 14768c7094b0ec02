"""Serving an ASGI app for a test: uvicorn on a free port of 127.0.0.1 (a plain module)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn


@asynccontextmanager
async def serve_asgi(asgi: Any) -> AsyncIterator[str]:
    """Run ``asgi`` under uvicorn on a free port of 127.0.0.1; yield its base URL."""
    config = uvicorn.Config(
        asgi, host="127.0.0.1", port=0, log_level="warning", lifespan="on", log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        # waiting for a condition, bounded: uvicorn sets `started` once it listens
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        assert server.started, "uvicorn did not start within 5 s"
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
