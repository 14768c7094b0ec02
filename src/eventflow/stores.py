"""Idempotency stores: where claims and results of idempotent handlers live.

A store is a small protocol with three coroutines, so Redis or Postgres take a page:

- ``claim(key, payload, *, now, lease_until, validate)`` atomically takes the key when it
  is free (no record, an expired result, or a claim whose lease has ended) and answers
  :class:`Claim` ``CLAIMED`` with a fresh token; otherwise it answers ``COMPLETED`` (with
  the stored result), ``IN_PROGRESS`` (with the lease's end) or, when ``validate`` is set
  and the payload differs from the one the key was first claimed with, ``CONFLICT``.
- ``complete(key, token, result, *, expires_at)`` records the JSON result, if ``token``
  still holds the claim.
- ``release(key, token)`` drops the claim, if ``token`` still holds it, so a retry runs.

A store that never blocks may also offer ``claim_nowait(key, payload, now, lease_until,
validate) -> (status, detail)`` (detail: the token, the stored result or the lease's end,
as in :class:`Claim`), ``complete_nowait(key, token, result, expires_at)`` and
``release_nowait(key, token)``; the app then calls those without an ``await``.

Times are wall-clock seconds (epoch) so several processes agree on leases; eventflow
passes them in, so tests can drive them with a virtual clock. A store that cannot be
reached raises: the attempt fails and is retried like any function error.

:class:`MemoryStore` is the in-process default; :class:`SQLiteStore` the embedded,
durable one; ``eventflow.aws.DynamoDBStore`` the distributed one.
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING, Any, Final

from ._contracts import Claim, ClaimStatus, IdempotencyStore
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._sqlite_store import SQLiteStore

__all__ = ("Claim", "ClaimStatus", "IdempotencyStore", "MemoryStore", "SQLiteStore")


_token_prefix = os.urandom(6).hex()
_token_counter = itertools.count()


def new_token() -> str:
    """A claim token unique across processes: a random per-process prefix and a counter."""
    return f"{_token_prefix}-{next(_token_counter):x}"


def _reseed_tokens() -> None:
    global _token_prefix
    _token_prefix = os.urandom(6).hex()


os.register_at_fork(after_in_child=_reseed_tokens)


# a record: [lease end, None, payload] or [expiry, result, payload]; the claim's token is
# its record itself, compared by identity, so completing a claim needs no lookup
_UNTIL: Final = 0
_RESULT: Final = 1
_PAYLOAD: Final = 2
_CLAIMED = ClaimStatus.CLAIMED


class MemoryStore:
    """Claims and results in this process's memory (the default store).

    Payloads are compared by equality, not by hash, so validation costs nothing extra.
    At most ``max_records`` records are kept: beyond it the oldest completed or lapsed
    records are dropped (a tenth at a time), and so an old duplicate could run again.
    A claim's token is its own record, compared by identity.
    """

    def __init__(self, *, max_records: int = 1_000_000) -> None:
        if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1:
            raise ConfigurationError(
                f"MemoryStore(max_records=...) must be a positive whole number, "
                f"got {max_records!r}."
            )
        self._records: dict[str, list[Any]] = {}
        self._max = max_records

    def __len__(self) -> int:
        return len(self._records)

    async def claim(
        self, key: str, payload: Any, *, now: float, lease_until: float, validate: bool
    ) -> Claim:
        status, detail = self.claim_nowait(key, payload, now, lease_until, validate)
        if status is ClaimStatus.CLAIMED:
            return Claim(status, token=detail)
        if status is ClaimStatus.COMPLETED:
            return Claim(status, result=detail)
        if status is ClaimStatus.IN_PROGRESS:
            return Claim(status, lease_until=detail)
        return Claim(status)

    async def complete(self, key: str, token: Any, result: str, *, expires_at: float) -> None:
        self.complete_nowait(key, token, result, expires_at)

    async def release(self, key: str, token: Any) -> None:
        self.release_nowait(key, token)

    # Never blocking, MemoryStore offers these too: the documented non-blocking seam that
    # the app's inline path calls without an await (see the module docstring).
    def claim_nowait(
        self, key: str, payload: Any, now: float, lease_until: float, validate: bool
    ) -> tuple[ClaimStatus, Any]:
        records = self._records
        new = [lease_until, None, payload]
        rec = records.setdefault(key, new)
        if rec is not new:
            if rec[_UNTIL] > now:
                if validate and rec[_PAYLOAD] != payload:
                    return (ClaimStatus.CONFLICT, None)
                if rec[_RESULT] is None:
                    return (ClaimStatus.IN_PROGRESS, rec[_UNTIL])
                return (ClaimStatus.COMPLETED, rec[_RESULT])
            del records[key]  # re-inserted, so it moves to the young end
            records[key] = new
        if len(records) > self._max:
            self._evict(now)
        return (_CLAIMED, new)

    def _evict(self, now: float) -> None:
        target = self._max - max(1, self._max // 10)
        records = self._records
        for k in [k for k, r in records.items() if r[_RESULT] is not None or r[_UNTIL] <= now]:
            if len(records) <= target:
                return
            del records[k]

    def complete_nowait(self, key: str, token: Any, result: str, expires_at: float) -> None:
        rec = self._records.get(key)
        if rec is token and rec is not None and rec[_RESULT] is None:  # still the claim
            rec[_UNTIL] = expires_at
            rec[_RESULT] = result

    def release_nowait(self, key: str, token: Any) -> None:
        records = self._records
        rec = records.get(key)
        if rec is token and rec is not None and rec[_RESULT] is None:  # still the claim
            del records[key]


def __getattr__(name: str) -> Any:
    # the SQLite store is imported on first use, so that importing eventflow loads no sqlite3
    if name == "SQLiteStore":
        from ._sqlite_store import SQLiteStore

        return SQLiteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
