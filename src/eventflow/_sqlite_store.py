"""SQLiteStore: the embedded, durable idempotency store.

One file, shared safely by every process on the machine (SQLite's locking, WAL mode),
surviving restarts. Blocking I/O runs in a worker thread, never on the event loop, and
writes are group-committed: calls that arrive while a transaction runs are queued and all
go in the next transaction, so thousands of claims per second cost a few commits.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ._errors import InvalidPayload
from ._idempotency import fingerprint

if TYPE_CHECKING:
    import asyncio

    from .stores import Claim

__all__ = ("SQLiteStore",)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS eventflow_idempotency (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    token TEXT,
    fingerprint TEXT,
    result TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    expires_at REAL NOT NULL DEFAULT 0
)
"""
# purge expired results once per this many transactions
_PURGE_EVERY = 256


def _store_failed(exc: Exception) -> bool:
    """Whether ``exc`` is the database's failure rather than one operation's bad input."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, sqlite3.DataError | sqlite3.ProgrammingError
    )


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite ends some failed transactions itself; a transaction left open would hold the
    # file's write lock and fail every later BEGIN
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class SQLiteStore:
    """Claims and results in a SQLite file; survives restarts, shared across processes.

    Args:
        path: The database file (created if missing, with its folder).
        max_batch: Most operations per transaction.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_batch: int = 1024) -> None:
        self.path = Path(path)
        self._max_batch = max_batch
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._flushing = False
        self._conn: sqlite3.Connection | None = None
        self._conn_lock = threading.Lock()
        self._transactions = 0

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- the protocol ---------------------------------------------------------------

    async def claim(
        self, key: str, payload: Any, *, now: float, lease_until: float, validate: bool
    ) -> Claim:
        from .stores import new_token

        result: Claim = await self._submit(
            ("claim", key, payload, now, lease_until, validate, new_token())
        )
        return result

    async def complete(self, key: str, token: str, result: str, *, expires_at: float) -> None:
        await self._submit(("complete", key, token, result, expires_at))

    async def release(self, key: str, token: str) -> None:
        await self._submit(("release", key, token))

    async def aclose(self) -> None:
        """Close the connection (the app does this when it stops)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await anyio.to_thread.run_sync(conn.close)

    async def __aenter__(self) -> SQLiteStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- group commit ---------------------------------------------------------------

    async def _submit(self, op: tuple[Any, ...]) -> Any:
        import asyncio

        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((op, fut))
        if not self._flushing:
            # this caller commits for everyone queued; others just wait for their result
            self._flushing = True
            try:
                while self._pending:
                    batch = self._pending[: self._max_batch]
                    del self._pending[: self._max_batch]
                    with anyio.CancelScope(shield=True):
                        try:
                            outcomes = await anyio.to_thread.run_sync(
                                self._execute, [o for o, _ in batch]
                            )
                        except Exception as exc:  # every caller waiting gets an answer
                            outcomes = [(False, exc)] * len(batch)
                    for (_, f), (ok, value) in zip(batch, outcomes, strict=True):
                        if f.done():
                            continue
                        if ok:
                            f.set_result(value)
                        else:
                            f.set_exception(value)
            finally:
                self._flushing = False
        return await fut

    # -- in the worker thread -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        with self._conn_lock:
            if self._conn is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    self.path, timeout=30.0, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: a committed claim survives a process crash, not a power cut
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
                self._conn = conn
            return self._conn

    def _execute(self, ops: list[tuple[Any, ...]]) -> list[tuple[bool, Any]]:
        try:
            conn = self._connect()
        except (sqlite3.Error, OSError) as exc:
            err = OSError(f"The idempotency store {self.path} cannot be opened: {exc}")
            return [(False, err)] * len(ops)
        out: list[tuple[bool, Any]] = [(False, None)] * len(ops)
        pending = list(range(len(ops)))
        # an operation that cannot be written fails alone: the transaction is rolled back
        # and the others go again without it (each pass takes one out, so this ends)
        while pending:
            refused = self._transaction(conn, ops, pending, out)
            if refused is None:
                break
            pending.remove(refused)
        return out

    def _transaction(
        self,
        conn: sqlite3.Connection,
        ops: list[tuple[Any, ...]],
        pending: list[int],
        out: list[tuple[bool, Any]],
    ) -> int | None:
        """Run ``ops[pending]`` in one transaction; the index of one that cannot be written."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            for i in pending:
                op = ops[i]
                try:
                    out[i] = (True, getattr(self, "_op_" + op[0])(conn, *op[1:]))
                except Exception as exc:
                    if _store_failed(exc):
                        raise
                    out[i] = (False, self._refusal(op, exc))
                    _rollback(conn)
                    return i
            self._transactions += 1
            if self._transactions % _PURGE_EVERY == 0:
                conn.execute(
                    "DELETE FROM eventflow_idempotency WHERE status = 'COMPLETED' "
                    "AND expires_at < ?",
                    (ops[pending[0]][3] if ops[pending[0]][0] == "claim" else 0.0,),
                )
            conn.execute("COMMIT")
        except Exception as exc:
            # the store itself failed (locked, full, corrupt...): every operation fails
            _rollback(conn)
            err = OSError(f"The idempotency store {self.path} failed: {exc}")
            for i in pending:
                out[i] = (False, err)
        return None

    def _refusal(self, op: tuple[Any, ...], exc: Exception) -> InvalidPayload:
        what = {"claim": "a claim", "complete": "the result"}.get(op[0], "a release")
        detail = str(exc) if isinstance(exc, InvalidPayload) else f"{type(exc).__name__}: {exc}"
        return InvalidPayload(
            f"The idempotency store {self.path} cannot write {what} of key {op[1]!r} "
            f"({detail}); only this event's attempt fails. Keys and results must be text "
            "UTF-8 can encode (no lone surrogates)."
        )

    def _op_claim(
        self,
        conn: sqlite3.Connection,
        key: str,
        payload: Any,
        now: float,
        lease_until: float,
        validate: bool,
        token: str,
    ) -> Claim:
        from .stores import Claim, ClaimStatus

        fp = fingerprint(payload) if validate else None
        row = conn.execute(
            "SELECT status, fingerprint, result, lease_until, expires_at "
            "FROM eventflow_idempotency WHERE key = ?",
            (key,),
        ).fetchone()
        if row is not None:
            status, stored_fp, result, row_lease, expires_at = row
            live = (status == "COMPLETED" and expires_at > now) or (
                status == "IN_PROGRESS" and row_lease > now
            )
            if live:
                if validate and stored_fp is not None and stored_fp != fp:
                    return Claim(ClaimStatus.CONFLICT)
                if status == "COMPLETED":
                    return Claim(ClaimStatus.COMPLETED, result=result)
                return Claim(ClaimStatus.IN_PROGRESS, lease_until=row_lease)
        conn.execute(
            "INSERT OR REPLACE INTO eventflow_idempotency "
            "(key, status, token, fingerprint, result, lease_until, expires_at) "
            "VALUES (?, 'IN_PROGRESS', ?, ?, NULL, ?, 0)",
            (key, token, fp, lease_until),
        )
        return Claim(ClaimStatus.CLAIMED, token=token)

    def _op_complete(
        self, conn: sqlite3.Connection, key: str, token: str, result: str, expires_at: float
    ) -> None:
        conn.execute(
            "UPDATE eventflow_idempotency SET status = 'COMPLETED', result = ?, "
            "expires_at = ?, token = NULL WHERE key = ? AND token = ?",
            (result, expires_at, key, token),
        )

    def _op_release(self, conn: sqlite3.Connection, key: str, token: str) -> None:
        conn.execute(
            "DELETE FROM eventflow_idempotency WHERE key = ? AND token = ? "
            "AND status = 'IN_PROGRESS'",
            (key, token),
        )
