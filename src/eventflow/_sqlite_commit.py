"""Group commit on one SQLite file: what the SQLite store and the SQLite queue share.

A :class:`GroupCommit` owns one connection (WAL mode) and runs every write in a worker
thread, one transaction at a time, never on the event loop. Operations that arrive while a
transaction runs are queued and all go in the next one: a lone caller waits for one commit,
a burst of thousands costs a few.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.lowlevel

__all__ = ("Done", "GroupCommit", "Synchronous")

Synchronous = Literal["FULL", "NORMAL"]
"""SQLite's ``synchronous`` setting: ``FULL`` syncs the WAL at every commit (a commit
survives a power cut); ``NORMAL`` syncs it at checkpoints (a commit survives a process
crash; the last commits before a power cut may be lost)."""

Done = Callable[[BaseException | None], None]
"""Called once a posted operation committed (with ``None``) or failed (with the error)."""

Apply = Callable[[sqlite3.Connection, Sequence[tuple[Any, ...]]], list[Any]]
"""Runs a batch of operations inside an open transaction; one result per operation."""


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
        what: What the file is, for error messages ("The event queue ...").
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
        what: str,
    ) -> None:
        self.path = Path(path)
        self._setup = setup
        self._apply = apply
        self._synchronous = synchronous
        # with FULL: the operations whose transaction is synced; the others' are not
        self._durable = durable if synchronous == "FULL" else None
        self._level = synchronous
        self._max_batch = max_batch
        self._what = what
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any] | Done]] = []
        self._flushing = False
        self._in_flight = 0
        self._conn: sqlite3.Connection | None = None
        self._conn_lock = threading.Lock()
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
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((op, fut))
        await self.flush()
        return await fut

    def post(self, op: tuple[Any, ...], done: Done) -> None:
        """Queue ``op`` for the next transaction without waiting (someone must ``flush``);
        ``done(error)`` is called on the event loop once it committed (``None``) or failed."""
        self._pending.append((op, done))

    async def flush(self) -> None:
        """Commit everything pending; if a flush is under way, it commits it instead."""
        if self._flushing:
            return
        # this caller commits for everyone queued; others just wait for their result
        self._flushing = True
        try:
            # one turn of the loop first: callers woken with this one join its transaction
            with anyio.CancelScope(shield=True):
                await anyio.lowlevel.checkpoint()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._in_flight = len(batch)
                # shielded: a transaction cut off would leave its callers without an answer
                with anyio.CancelScope(shield=True):
                    try:
                        ok, outcome = await anyio.to_thread.run_sync(
                            self._execute, [o for o, _ in batch]
                        )
                    finally:
                        self._in_flight = 0
                for i, (_, fut) in enumerate(batch):
                    if not isinstance(fut, asyncio.Future):
                        fut(None if ok else outcome)
                    elif not fut.done():
                        if ok:
                            fut.set_result(outcome[i])
                        else:
                            fut.set_exception(outcome)
        finally:
            self._flushing = False

    async def aclose(self) -> None:
        """Commit what is pending, then close the connection."""
        await self.flush()
        conn, self._conn = self._conn, None
        if conn is not None:
            await anyio.to_thread.run_sync(conn.close)

    async def open(self) -> None:
        """Open the file now (else the first transaction does).

        Raises:
            OSError: the file cannot be opened as this kind of database.
        """
        await anyio.to_thread.run_sync(self._connect_or_raise)

    # -- in the worker thread -------------------------------------------------------

    def _connect_or_raise(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except (sqlite3.Error, OSError) as exc:
            raise OSError(f"{self._what} {self.path} cannot be opened: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        with self._conn_lock:
            if self._conn is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    self.path, timeout=30.0, isolation_level=None, check_same_thread=False
                )
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute(f"PRAGMA synchronous={self._synchronous}")
                    self._setup(conn)
                except BaseException:
                    conn.close()
                    raise
                self._conn = conn
            return self._conn

    def _execute(self, ops: list[tuple[Any, ...]]) -> tuple[bool, Any]:
        try:
            conn = self._connect()
            if self._durable is not None:
                # only what must survive a power cut pays for the sync
                level: Synchronous = "FULL" if any(self._durable(op) for op in ops) else "NORMAL"
                if level != self._level:
                    conn.execute(f"PRAGMA synchronous={level}")
                    self._level = level
            conn.execute("BEGIN IMMEDIATE")
        except (sqlite3.Error, OSError) as exc:
            return False, OSError(f"{self._what} {self.path} cannot be opened: {exc}")
        before = conn.total_changes
        try:
            results = self._apply(conn, ops)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return False, OSError(f"{self._what} {self.path} failed: {exc}")
        changes = conn.total_changes - before
        if changes:  # a transaction that only read is no commit to count
            self.commits += 1
            self.rows += changes
        return True, results
