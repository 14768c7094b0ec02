"""Threads for plain ``def`` handlers: at most ``thread_limit`` alive, abandoned ones included.

Python cannot stop a thread. An attempt that times out, or is cancelled at shutdown, stops
being waited for at once, but its function goes on running in its thread until it returns;
that thread keeps its place under the limit until then, so ``thread_limit`` bounds the
threads alive, not only the attempts being waited for. The threads are daemon threads: one
that never returns does not keep the process from exiting once the app has stopped.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ("HandlerThreads", "ThreadStatistics")

_names = itertools.count(1)


@dataclass(frozen=True, slots=True)
class ThreadStatistics:
    """A snapshot of an app's handler threads.

    Attributes:
        limit: Threads that may be alive at once (``thread_limit``).
        alive: Threads started and not ended.
        busy: Threads running a handler, abandoned ones included.
        abandoned: Threads still running an attempt nobody waits for any more (it timed
            out, or the app stopped); each ends when its function returns.
        waiting: Attempts waiting for a thread.
    """

    limit: int
    alive: int
    busy: int
    abandoned: int
    waiting: int


_Item = tuple[contextvars.Context, Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]


class _Thread:
    __slots__ = ("abandoned", "ended", "inbox", "thread")

    def __init__(self, pool: HandlerThreads) -> None:
        self.inbox: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self.abandoned = False
        self.ended: asyncio.Future[None] | None = None  # set once the attempt is abandoned
        self.thread = threading.Thread(
            target=pool._serve, args=(self,), name=f"{pool.name}-{next(_names)}", daemon=True
        )


class HandlerThreads:
    """A bounded set of daemon threads that run plain ``def`` handlers for one app.

    Args:
        limit: Threads alive at most.
        name: Prefix of the threads' names.
    """

    def __init__(self, limit: int, name: str) -> None:
        self.name = name
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        self._alive = 0
        self._busy = 0
        self._abandoned = 0
        self._idle: list[_Thread] = []
        self._waiters: deque[asyncio.Future[_Thread]] = deque()
        self._closed = False

    async def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_abandon: Callable[[asyncio.Future[None]], None] | None = None,
    ) -> Any:
        """Run ``fn(*args)`` in a thread and return its result (or raise its exception).

        If the caller is cancelled once ``fn`` started, the thread is abandoned: it keeps
        running, counted, and ``on_abandon`` gets a future that completes when it returns.
        """
        worker = await self._acquire()
        fut: asyncio.Future[Any] = self._loop.create_future()
        worker.inbox.put((contextvars.copy_context(), fn, args, fut))
        self._busy += 1
        try:
            return await fut
        except asyncio.CancelledError:
            if not fut.cancelled():
                raise  # fn had already returned: nothing is left running
            worker.abandoned = True
            self._abandoned += 1
            worker.ended = self._loop.create_future()
            if on_abandon is not None:
                on_abandon(worker.ended)
            raise

    async def _acquire(self) -> _Thread:
        if self._idle:
            return self._idle.pop()
        if self._alive < self._limit:
            worker = _Thread(self)
            self._alive += 1
            worker.thread.start()
            return worker
        waiter: asyncio.Future[_Thread] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._recycle(waiter.result())  # handed over as we were cancelled: pass it on
            raise

    def _serve(self, worker: _Thread) -> None:
        # in the thread: run items until told to stop, or until the loop is gone
        while True:
            item = worker.inbox.get()
            if item is None:
                return
            context, fn, args, fut = item
            result: Any = None
            error: BaseException | None = None
            try:
                result = context.run(fn, *args)
            except BaseException as exc:  # reported to the awaiting task, like anyio does
                error = exc
            try:
                self._loop.call_soon_threadsafe(self._finished, worker, fut, result, error)
            except RuntimeError:
                return  # the loop is closed: the app and its process are done with us
            if self._closed:
                return  # the app has stopped: nothing more will come

    def _finished(
        self,
        worker: _Thread,
        fut: asyncio.Future[Any],
        result: Any,
        error: BaseException | None,
    ) -> None:
        self._busy -= 1
        if not fut.done():
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)
        if worker.abandoned:
            worker.abandoned = False
            self._abandoned -= 1
        if worker.ended is not None:
            ended, worker.ended = worker.ended, None
            if not ended.done():
                ended.set_result(None)
        self._recycle(worker)

    def _recycle(self, worker: _Thread) -> None:
        if self._closed:
            self._stop(worker)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    def _stop(self, worker: _Thread) -> None:
        worker.inbox.put(None)
        self._alive -= 1

    def close(self) -> None:
        """Stop idle threads now, and busy ones once their function returns."""
        self._closed = True
        while self._idle:
            self._stop(self._idle.pop())

    def statistics(self) -> ThreadStatistics:
        """A snapshot of the threads."""
        return ThreadStatistics(
            limit=self._limit,
            alive=self._alive,
            busy=self._busy,
            abandoned=self._abandoned,
            waiting=sum(1 for w in self._waiters if not w.done()),
        )
