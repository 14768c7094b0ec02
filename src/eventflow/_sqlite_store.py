"""SQLiteStore: the embedded, durable idempotency store.

One file, shared safely by every process on the machine (SQLite's locking, WAL mode),
surviving restarts. Blocking I/O runs in a worker thread, never on the event loop, and
writes are group-committed: calls that arrive while a transaction runs are queued and all
go in the next transaction, so thousands of claims per second cost a few commits.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import InvalidPayload
from ._idempotency import fingerprint
from ._sqlite_commit import GroupCommit

if TYPE_CHECKING:
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


def _setup(conn: sqlite3.Connection) -> None:
    conn.execute(_SCHEMA)


class SQLiteStore:
    """Claims and results in a SQLite file; survives restarts, shared across processes.

    Args:
        path: The database file (created if missing, with its folder).
        max_batch: Most operations per transaction.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_batch: int = 1024) -> None:
        self.path = Path(path)
        # WAL + NORMAL: a committed claim survives a process crash, not a power cut
        self._db = GroupCommit(
            self.path,
            setup=_setup,
            apply=self._apply,
            synchronous="NORMAL",
            max_batch=max_batch,
            what="The idempotency store",
            refuse=self._refusal,
        )

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- the protocol ---------------------------------------------------------------

    async def claim(
        self, key: str, payload: Any, *, now: float, lease_until: float, validate: bool
    ) -> Claim:
        from .stores import new_token

        result: Claim = await self._db.submit(
            ("claim", key, payload, now, lease_until, validate, new_token())
        )
        return result

    async def complete(self, key: str, token: str, result: str, *, expires_at: float) -> None:
        await self._db.submit(("complete", key, token, result, expires_at))

    async def release(self, key: str, token: str) -> None:
        await self._db.submit(("release", key, token))

    async def aclose(self) -> None:
        """Close the connection (the app does this when it stops)."""
        await self._db.aclose()

    async def __aenter__(self) -> SQLiteStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- in the worker thread -------------------------------------------------------

    def _refusal(self, op: tuple[Any, ...], exc: Exception) -> InvalidPayload:
        what = {"claim": "a claim", "complete": "the result"}.get(op[0], "a release")
        detail = str(exc) if isinstance(exc, InvalidPayload) else f"{type(exc).__name__}: {exc}"
        return InvalidPayload(
            f"The idempotency store {self.path} cannot write {what} of key {op[1]!r} "
            f"({detail}); only this event's attempt fails. Keys and results must be text "
            "UTF-8 can encode (no lone surrogates)."
        )

    def _apply(self, conn: sqlite3.Connection, ops: Sequence[tuple[Any, ...]]) -> list[Any]:
        out = [getattr(self, "_op_" + op[0])(conn, *op[1:]) for op in ops]
        if (self._db.commits + 1) % _PURGE_EVERY == 0:
            conn.execute(
                "DELETE FROM eventflow_idempotency WHERE status = 'COMPLETED' AND expires_at < ?",
                (ops[0][3] if ops[0][0] == "claim" else 0.0,),
            )
        return out

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
