"""aiobotocore clients shared per (session, service, region, endpoint), reference-counted.

Every AWS adapter enters :func:`shared_client` when the app starts and leaves it when the
app stops, so one app with ten sinks on one queue's region opens one SQS client, and the
last adapter to stop closes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session

__all__ = ("client_config", "default_session", "resolve_region", "shared_client")

_entries: dict[tuple[int, str, str, str | None, bool], _Entry] = {}
_default_session: AioSession | None = None


class _Entry:
    __slots__ = ("client", "count", "stack")

    def __init__(self, client: Any, stack: AsyncExitStack) -> None:
        self.client = client
        self.stack = stack
        self.count = 0


def default_session() -> AioSession:
    global _default_session
    if _default_session is None:
        _default_session = get_session()
    return _default_session


def resolve_region(session: AioSession | None, region_name: str | None) -> str:
    """The region to use: the argument, else the standard AWS configuration, else us-east-1."""
    if region_name:
        return region_name
    configured = (session or default_session()).get_config_variable("region")
    return str(configured) if configured else "us-east-1"


def client_config(max_pool_connections: int = 50, *, batching: bool = False) -> AioConfig:
    # botocore's standard retry mode backs off on throttling; adapters retry the rest. A
    # batcher's client makes one attempt: the batcher retries, with backoff on the app's clock
    return AioConfig(
        retries={"max_attempts": 0 if batching else 3, "mode": "standard"},
        max_pool_connections=max_pool_connections,
        connect_timeout=10,
        read_timeout=30,
    )


@asynccontextmanager
async def shared_client(
    service: str,
    *,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    session: AioSession | None = None,
    batching: bool = False,
) -> AsyncIterator[Any]:
    """Yield the shared client for ``service`` in that region at that endpoint.

    ``batching=True`` gives the client of a :class:`~eventflow.aws._batcher.Batcher`, which
    makes no retries of its own (the batcher retries on the app's clock).
    """
    session = session or default_session()
    region = resolve_region(session, region_name)
    key = (id(session), service, region, endpoint_url, batching)
    entry = _entries.get(key)
    if entry is None:
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            session.create_client(
                service,
                region_name=region,
                endpoint_url=endpoint_url,
                config=client_config(batching=batching),
            )
        )
        entry = _entries.get(key)
        if entry is None:
            entry = _entries[key] = _Entry(client, stack)
        else:  # another adapter created it while we were connecting: use theirs
            await stack.aclose()
    entry.count += 1
    try:
        yield entry.client
    finally:
        entry.count -= 1
        if entry.count == 0 and _entries.get(key) is entry:
            del _entries[key]
            await entry.stack.aclose()
