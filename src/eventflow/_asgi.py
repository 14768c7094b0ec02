"""The ASGI plumbing that eventflow's web endpoints share: one copy for every endpoint.

:class:`eventflow.http.LambdaAPI` and :class:`eventflow.aws.SNSEndpoint` are plain ASGI 3
applications; this module holds what both need and neither owns: the ASGI callable types,
the scope dispatch (``http``, ``lifespan``, a refused ``websocket``), the ``lifespan``
loop, reading a request body within a size bound, a time bound and (optionally) a memory
budget shared across connections, JSON replies and the client's address. It imports no
other eventflow module, so both ``eventflow.http`` and ``eventflow.aws`` can use it.

Body reading raises, rather than answers: each endpoint turns :class:`BodyTooLarge`,
:class:`BodyTimedOut`, :class:`BodyOverMemory` and :class:`Disconnected` into its own
status codes and error formats.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import Any, Final

__all__ = (
    "CLOSE",
    "ASGIApp",
    "BodyMemory",
    "BodyOverMemory",
    "BodyTimedOut",
    "BodyTooLarge",
    "Disconnected",
    "Headers",
    "Held",
    "Receive",
    "Reply",
    "Scope",
    "Send",
    "client_address",
    "json_reply",
    "read_body",
    "run_lifespan",
    "send_reply",
    "serve_scope",
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = tuple[tuple[bytes, bytes], ...]

#: On an answer sent before the whole body was read: the rest is not worth receiving.
CLOSE: Final = (b"connection", b"close")
_JSON: Final = (b"content-type", b"application/json")


class Disconnected(Exception):
    """The client went away before its request was read."""


class BodyTooLarge(Exception):
    """The body (declared or received so far) is larger than the bound; ``size`` says how large."""

    def __init__(self, size: int) -> None:
        super().__init__(f"The request body of {size} bytes or more is over the limit.")
        self.size = size


class BodyTimedOut(Exception):
    """The whole body did not arrive in time; ``received`` bytes had arrived."""

    def __init__(self, received: int) -> None:
        super().__init__(f"The request body did not arrive in time ({received} bytes had).")
        self.received = received


class BodyOverMemory(Exception):
    """The body does not fit in the shared memory budget; ``size`` is what it needed."""

    def __init__(self, size: int) -> None:
        super().__init__(f"A request body of {size} bytes does not fit in memory now.")
        self.size = size


class BodyMemory:
    """The bytes of request bodies held at once, across connections, and their bound."""

    __slots__ = ("held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0


class Held:
    """The bytes one request holds in a :class:`BodyMemory`; given back by :meth:`release`."""

    __slots__ = ("_memory", "bytes")

    def __init__(self, memory: BodyMemory) -> None:
        self._memory = memory
        self.bytes = 0

    def grow_to(self, size: int) -> bool:
        """Hold ``size`` bytes in all; False (holding no more) when they do not fit."""
        more = size - self.bytes
        if more <= 0:
            return True
        if self._memory.held + more > self._memory.limit:
            return False
        self._memory.held += more
        self.bytes = size
        return True

    def release(self) -> None:
        """Give the held bytes back to the budget."""
        self._memory.held -= self.bytes
        self.bytes = 0


async def read_body(
    receive: Receive,
    *,
    limit: int,
    timeout: float,
    declared: int = -1,
    held: Held | None = None,
) -> bytes:
    """The whole request body, received within ``limit`` bytes and ``timeout`` seconds.

    Args:
        receive: The ASGI receive callable of the request.
        limit: The largest body accepted, in bytes.
        timeout: Seconds the whole body has to arrive, from the first read.
        declared: The ``Content-Length`` (-1 when absent): a body declared over ``limit``
            is refused before anything is read, and ``held`` holds it at once.
        held: The request's share of a memory budget across connections, or None.

    Raises:
        BodyTooLarge: Declared or received over ``limit``.
        BodyOverMemory: ``held`` cannot grow to the declared or received size.
        BodyTimedOut: Not all of it arrived within ``timeout``.
        Disconnected: The client went away.
    """
    if declared > limit:
        raise BodyTooLarge(declared)
    if held is not None and not held.grow_to(max(declared, 0)):
        raise BodyOverMemory(declared)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Disconnected
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(size)
                if held is not None and not held.grow_to(size):
                    raise BodyOverMemory(size)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except TimeoutError:
        raise BodyTimedOut(size) from None


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer to send: status, body bytes and headers."""

    status: int
    body: bytes = b""
    headers: Headers = ()


def json_reply(status: int, body: Any, *headers: tuple[bytes, bytes]) -> Reply:
    """A JSON answer: ``body`` serialised, with its content type and length, then ``headers``."""
    data = json.dumps(body).encode()
    return Reply(status, data, (_JSON, (b"content-length", str(len(data)).encode()), *headers))


async def send_reply(send: Send, reply: Reply) -> None:
    """Send ``reply`` as the response to the request."""
    await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
    await send({"type": "http.response.body", "body": reply.body})


def client_address(scope: Scope) -> str | None:
    """``host:port`` of the client, for logs, or None when the server does not say."""
    client = scope.get("client")
    if client:
        return f"{client[0]}:{client[1]}"
    return None


async def run_lifespan(
    receive: Receive,
    send: Send,
    *,
    startup_problem: Callable[[], str | None] | None = None,
    context: AbstractAsyncContextManager[Any] | None = None,
) -> None:
    """Answer the ASGI ``lifespan`` protocol until shutdown.

    At startup ``startup_problem()`` (if given) may name a reason to fail it; otherwise
    ``context`` (if given) is entered, and it is left at shutdown, or if the server stops
    the lifespan task first.
    """
    async with AsyncExitStack() as stack:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                problem = startup_problem() if startup_problem is not None else None
                if problem is not None:
                    await send({"type": "lifespan.startup.failed", "message": problem})
                    continue
                if context is not None:
                    await stack.enter_async_context(context)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await stack.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def serve_scope(
    name: str,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    http: Callable[[Scope, Receive, Send], Awaitable[None]],
    lifespan: Callable[[Receive, Send], Awaitable[None]],
) -> None:
    """Hand an ASGI connection to ``http`` or ``lifespan``; refuse a websocket (1008).

    Raises:
        ValueError: Another scope type, which no eventflow endpoint serves.
    """
    kind = scope.get("type")
    if kind == "http":
        await http(scope, receive, send)
    elif kind == "lifespan":
        await lifespan(receive, send)
    elif kind == "websocket":
        await send({"type": "websocket.close", "code": 1008})
    else:
        raise ValueError(f"{name} serves http and lifespan scopes, not {kind!r}.")
