"""Group commit on one SQLite file: what the SQLite store and the SQLite queue share.

A :class:`GroupCommit` owns one connection (WAL mode) and its own thread, which runs every
transaction, one at a time, never on the event loop. Operations that arrive while a
transaction runs are queued and all go in the next one: a lone caller waits for one commit,
a burst of thousands costs a few. The thread hands each transaction's results back to the
loop in one call. An operation that cannot be written (its input cannot be encoded, say a
lone surrogate) fails alone: the transaction is rolled back and the others commit without
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

__all__ = ("Done", "GroupCommit", "Synchronous")

Synchronous = Literal["FULL", "NORMAL"]
"""SQLite's ``synchronous`` setting: ``FULL`` syncs the WAL at every commit (a commit
survives a power cut); ``NORMAL`` syncs it at checkpoints (a commit survives a process
crash; the last commits before a power cut may be lost)."""

Done = Callable[[tuple[Any, ...], BaseException | None], None]
"""Called with a posted operation once it committed (with ``None``) or failed (with the
error)."""

Apply = Callable[[sqlite3.Connection, Sequence[tuple[Any, ...]]], list[Any]]
"""Runs a batch of operations inside an open transaction; one result per operation."""

Single = Callable[[Sequence[tuple[Any, ...]]], tuple[str, list[Any]] | None]
"""For a batch that one statement writes whole: that statement and its parameters (each
operation's result is then ``None``); else ``None``."""

Refuse = Callable[[tuple[Any, ...], Exception], Exception]
"""The error an operation that cannot be written fails with, from what it raised."""

_T = TypeVar("_T")
_STOP = None  # what tells the thread to close the connection and end


def _resolve(fut: asyncio.Future[Any], result: tuple[bool, Any]) -> None:
    if fut.done():  # its caller was cancelled
        return
    ok, value = result
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


def _store_failed(exc: Exception) -> bool:
    """Whether ``exc`` is the database's failure rather than one operation's bad input."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, sqlite3.DataError | sqlite3.ProgrammingError
    )


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite ends some failed transactions itself; one left open would hold the write lock
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class _StoreFailed(Exception):
    """The database failed while operations were applied one by one."""


class GroupCommit:
    """One SQLite connection whose writes are group-committed in a worker thread.

    Args:
        path: The database file (created, with its folder, if missing).
        setup: Runs once on the new connection, outside any transaction (schema).
        apply: Runs each batch of operations inside ``BEGIN IMMEDIATE`` ... ``COMMIT``.
        synchronous: ``"FULL"`` or ``"NORMAL"`` (see :data:`Synchronous`).
        durable: With ``"FULL"``: which operations need it. A transaction without one
            runs at ``NORMAL`` (it survives a process crash; a power cut may undo it, and
            the next synced commit syncs it too). ``None``: every transaction.
        max_batch: Most operations per transaction.
        single: Which batches one statement writes whole (see :data:`Single`): it runs
            without ``BEGIN``, so SQLite commits it in the same step and the thread lets go
            of the GIL once for the whole transaction.
        what: What the file is, for error messages ("The event queue ...").
        refuse: The error an operation that cannot be written fails with (by default an
            ``OSError`` naming the file and the problem).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        setup: Callable[[sqlite3.Connection], None],
        apply: Apply,
        synchronous: Synchronous = "NORMAL",
        durable: Callable[[tuple[Any, ...]], bool] | None = None,
        max_batch: int = 1024,
        single: Single | None = None,
        what: str,
        refuse: Refuse | None = None,
    ) -> None:
        self.path = Path(path)
        self._setup = setup
        self._apply = apply
        self._synchronous = synchronous
        # with FULL: the operations whose transaction is synced; the others' are not
        self._durable = durable if synchronous == "FULL" else None
        self._level = synchronous
        self._max_batch = max_batch
        self._single = single
        self._what = what
        self._refuse = refuse if refuse is not None else self._default_refusal
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any] | Done]] = []
        self._flushing = False
        self._in_flight = 0
        self._conn: sqlite3.Connection | None = None
        # the thread's work: (function, argument, future, loop), or _STOP
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.commits = 0
        """Transactions committed that wrote something."""
        self.rows = 0
        """Rows inserted, updated or deleted by committed transactions."""

    @property
    def pending(self) -> int:
        """Operations not committed yet: in the transaction under way or waiting."""
        return len(self._pending) + self._in_flight

    async def submit(self, op: tuple[Any, ...]) -> Any:
        """Run ``op`` in a transaction (this one or the next) and return its result.

        Raises:
            OSError: the file could not be opened or the transaction failed (it was rolled
                back: nothing of it was stored).
        """
        fut = self.push(op)
        if not self._flushing:  # else the flush under way takes it
            await self.flush()
        return await fut

    def push(self, op: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue ``op`` for the next transaction: :meth:`submit` in two steps, for a caller
        that saves a coroutine level. Unless :attr:`flushing`, await :meth:`flush`; then
        await the future, which gets the result or the error ``submit`` would raise."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((op, fut))
        return fut

    @property
    def flushing(self) -> bool:
        """Whether a flush is under way (it takes what is pushed meanwhile)."""
        return self._flushing

    def post(self, op: tuple[Any, ...], done: Done) -> None:
        """Queue ``op`` for the next transaction without waiting (someone must ``flush``);
        ``done(op, error)`` is called on the event loop once it committed (``error`` is
        ``None``) or failed."""
        self._pending.append((op, done))

    async def flush(self) -> None:
        """Commit everything pending; if a flush is under way, it commits it instead."""
        if self._flushing:
            return
        # this caller commits for everyone queued; others just wait for their result
        self._flushing = True
        try:
            while self._pending:
                # one turn of the loop first: callers woken with this one (or by the last
                # commit) join its transaction
                with anyio.CancelScope(shield=True):
                    await anyio.lowlevel.checkpoint()
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._in_flight = len(batch)
                # shielded: a transaction cut off would leave its callers without an answer
                with anyio.CancelScope(shield=True):
                    try:
                        outcomes = await self._in_thread(self._execute, [o for o, _ in batch])
                    except Exception as exc:  # every caller waiting gets an answer
                        outcomes = [(False, exc)] * len(batch)
                    finally:
                        self._in_flight = 0
                for (op, fut), (ok, value) in zip(batch, outcomes, strict=True):
                    if not isinstance(fut, asyncio.Future):
                        fut(op, None if ok else value)
                    elif not fut.done():
                        if ok:
                            fut.set_result(value)
                        else:
                            fut.set_exception(value)
        finally:
            self._flushing = False

    async def aclose(self) -> None:
        """Commit what is pending, then close the connection and end the thread."""
        await self.flush()
        thread, self._thread = self._thread, None
        if thread is not None:
            self._requests.put(_STOP)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(thread.join)

    async def open(self) -> None:
        """Open the file now (else the first transaction does).

        Raises:
            OSError: the file cannot be opened as this kind of database.
        """
        await self._in_thread(self._connect_or_raise, None)

    async def _in_thread(self, function: Callable[[Any], _T], argument: Any) -> _T:
        """Run ``function(argument)`` in this file's thread (started on first use)."""
        if self._thread is None:
            # one thread owns the connection, so its transactions never wait for a worker
            thread = threading.Thread(
                target=self._serve, name=f"eventflow-sqlite {self.path.name}", daemon=True
            )
            thread.start()
            self._thread = thread
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[_T] = loop.create_future()
        self._requests.put((function, argument, fut, loop))
        return await fut

    # -- in the thread --------------------------------------------------------------

    def _serve(self) -> None:
        while (request := self._requests.get()) is not _STOP:
            function, argument, fut, loop = request
            try:
                result = (True, function(argument))
            except BaseException as exc:  # handed to the caller, which raises it
                result = (False, exc)
            try:
                loop.call_soon_threadsafe(_resolve, fut, result)
            except RuntimeError:  # the loop has closed: nobody waits for the answer
                pass
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connect_or_raise(self, _: None) -> sqlite3.Connection:
        try:
            return self._connect()
        except (sqlite3.Error, OSError) as exc:
            raise OSError(f"{self._what} {self.path} cannot be opened: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self._synchronous}")
                self._setup(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _execute(self, ops: list[tuple[Any, ...]]) -> list[tuple[bool, Any]]:
        """Commit ``ops``; per operation, ``(True, result)`` or ``(False, error)``."""
        try:
            conn = self._connect()
            if self._durable is not None:
                # only what must survive a power cut pays for the sync
                level: Synchronous = "FULL" if any(self._durable(op) for op in ops) else "NORMAL"
                if level != self._level:
                    conn.execute(f"PRAGMA synchronous={level}")
                    self._level = level
            single = self._single(ops) if self._single is not None else None
            if single is None:
                conn.execute("BEGIN IMMEDIATE")
        except (sqlite3.Error, OSError) as exc:
            error = OSError(f"{self._what} {self.path} cannot be opened: {exc}")
            return [(False, error)] * len(ops)
        before = conn.total_changes
        try:
            if single is not None:
                # outside a transaction SQLite commits a lone statement in the same step
                conn.execute(*single)
                self._committed(conn.total_changes - before)
                return [(True, None)] * len(ops)
            outcomes: list[tuple[bool, Any]] = [(True, r) for r in self._apply(conn, ops)]
        except Exception as exc:
            _rollback(conn)
            if _store_failed(exc):
                return [(False, OSError(f"{self._what} {self.path} failed: {exc}"))] * len(ops)
            # one operation's bad input: apply them one by one so that it fails alone
            try:
                before = conn.total_changes
                conn.execute("BEGIN IMMEDIATE")
                outcomes = [self._one(conn, op) for op in ops]
            except (_StoreFailed, sqlite3.Error) as failed:
                _rollback(conn)
                cause = failed.__cause__ or failed
                return [(False, OSError(f"{self._what} {self.path} failed: {cause}"))] * len(ops)
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            return [(False, OSError(f"{self._what} {self.path} failed: {exc}"))] * len(ops)
        self._committed(conn.total_changes - before)
        return outcomes

    def _committed(self, changes: int) -> None:
        if changes:  # a transaction that only read is no commit to count
            self.commits += 1
            self.rows += changes

    def _one(self, conn: sqlite3.Connection, op: tuple[Any, ...]) -> tuple[bool, Any]:
        """Apply one operation inside a savepoint; undo just it if it cannot be written."""
        conn.execute("SAVEPOINT one_operation")
        try:
            result = self._apply(conn, [op])[0]
        except Exception as exc:
            conn.execute("ROLLBACK TO one_operation")
            conn.execute("RELEASE one_operation")
            if _store_failed(exc):
                raise _StoreFailed() from exc
            return False, self._refuse(op, exc)
        conn.execute("RELEASE one_operation")
        return True, result

    def _default_refusal(self, op: tuple[Any, ...], exc: Exception) -> Exception:
        return OSError(
            f"{self._what} {self.path} cannot write a {op[0]!r} operation "
            f"({type(exc).__name__}: {exc}); only this operation fails."
        )
