"""Serving an ASGI app for a test: uvicorn on a free port of 127.0.0.1, and a raw socket
client that sends what it likes (a plain module)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import uvicorn

BOUND = 5.0  # seconds within which a server must answer: generous for a loaded machine


@asynccontextmanager
async def serve_asgi(asgi: Any) -> AsyncIterator[str]:
    """Run ``asgi`` under uvicorn on a free port of 127.0.0.1; yield its base URL."""
    config = uvicorn.Config(
        asgi, host="127.0.0.1", port=0, log_level="warning", lifespan="on", log_config=None
    )
    async with serve_config(config) as url:
        yield url


@asynccontextmanager
async def serve_config(config: uvicorn.Config) -> AsyncIterator[str]:
    """Run uvicorn with ``config`` (on 127.0.0.1, port 0); yield its base URL."""
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


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after answering


@dataclass
class Raw:
    """One raw connection to the server."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, within: float = BOUND, close_wait: float | None = None) -> Answer:
        """The next response; ``closed`` says whether the server then closed the connection
        within ``close_wait`` seconds (default ``within``; 0 does not wait)."""
        async with asyncio.timeout(within):
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        closed = close_wait != 0 and await self.closed(within if close_wait is None else close_wait)
        return Answer(int(status_line.split()[1]), headers, body, closed)

    async def closed(self, within: float = BOUND) -> bool:
        """Whether the server closes the connection within ``within`` seconds (reading
        what it sends until then, such as a body delimited by the close)."""
        try:
            async with asyncio.timeout(within):
                await self.reader.read()  # returns at end of stream
                return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[Raw]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        yield Raw(reader, writer)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass
