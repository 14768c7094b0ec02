"""The sinks, sources and shared queue an app opens: :class:`Resources`.

Each is entered (``async with``) once, however many handlers use it, before the app's
task group starts and left after it ends. A sink that ``configure_handler`` brings in
later is entered by a task of a group the app owns, so that a sink holding a task group
is left by the task that entered it, not by the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

__all__ = ("Resources",)


class Resources:
    """Enters each resource once; leaves them all, in reverse order, at :meth:`close`."""

    def __init__(self) -> None:
        self._entered: set[int] = set()  # ids of the resources entered so far
        self._stack = AsyncExitStack()
        self._holders: TaskGroup | None = None
        self._release = anyio.Event()

    async def open(self, resources: Iterable[object]) -> None:
        """Enter every resource not entered yet, then the group that holds later ones."""
        try:
            for resource in resources:
                if id(resource) not in self._entered and hasattr(resource, "__aenter__"):
                    self._entered.add(id(resource))
                    await self._stack.enter_async_context(resource)  # type: ignore[arg-type]
            holders = anyio.create_task_group()
            await holders.__aenter__()
        except BaseException:
            await self._stack.aclose()
            raise
        self._holders = holders

    async def open_later(self, resource: object) -> None:
        """Enter ``resource`` (if not yet) in a task of the app's, until :meth:`close`."""
        assert self._holders is not None
        if id(resource) not in self._entered and hasattr(resource, "__aenter__"):
            self._entered.add(id(resource))
            await self._holders.start(self._hold, resource)

    async def _hold(self, resource: Any, *, task_status: TaskStatus[None]) -> None:
        async with resource:
            task_status.started()
            await self._release.wait()

    async def close(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        """Leave the resources opened later, then the others (not shielded: sources may
        hold task groups entered before the app's)."""
        self._release.set()
        assert self._holders is not None
        try:
            await self._holders.__aexit__(exc_type, exc, tb)
        finally:
            await self._stack.aclose()
