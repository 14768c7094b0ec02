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

Times are wall-clock seconds (epoch) so several processes agree on leases; eventflow
passes them in, so tests can drive them with a virtual clock. A store that cannot be
reached raises: the attempt fails and is retried like any function error.

:class:`MemoryStore` is the in-process default; :class:`SQLiteStore` the embedded,
durable one; ``eventflow.aws.DynamoDBStore`` the distributed one.
"""

from __future__ import annotations

import enum
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ._sqlite_store import SQLiteStore

__all__ = ("Claim", "ClaimStatus", "IdempotencyStore", "MemoryStore", "SQLiteStore")


class ClaimStatus(enum.Enum):
    CLAIMED = "claimed"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class Claim:
    """A store's answer to ``claim()``.

    Attributes:
        status: What the key's record says.
        token: The new claim's token (``CLAIMED`` only).
        result: The stored JSON result (``COMPLETED`` only).
        lease_until: When the current claim ends (``IN_PROGRESS`` only).
    """

    status: ClaimStatus
    token: str | None = None
    result: str | None = None
    lease_until: float | None = None


@runtime_checkable
class IdempotencyStore(Protocol):
    """See the module docstring for the contract."""

    async def claim(
        self, key: str, payload: Any, *, now: float, lease_until: float, validate: bool
    ) -> Claim: ...

    async def complete(self, key: str, token: str, result: str, *, expires_at: float) -> None: ...

    async def release(self, key: str, token: str) -> None: ...


def new_token() -> str:
    return secrets.token_hex(8)


class _Record:
    __slots__ = ("expires_at", "lease_until", "payload", "result", "token")

    def __init__(self, token: str, payload: Any, lease_until: float) -> None:
        self.token: str | None = token
        self.payload = payload
        self.lease_until = lease_until
        self.result: str | None = None
        self.expires_at = 0.0


class MemoryStore:
    """Claims and results in this process's memory (the default store).

    Payloads are compared by equality, not by hash, so validation costs nothing extra.
    At most ``max_records`` records are kept: beyond it the oldest completed (then the
    oldest expired) records are dropped, and an old duplicate could run again.
    """

    def __init__(self, *, max_records: int = 1_000_000) -> None:
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._max = max_records

    def __len__(self) -> int:
        return len(self._records)

    async def claim(
        self, key: str, payload: Any, *, now: float, lease_until: float, validate: bool
    ) -> Claim:
        rec = self._records.get(key)
        if rec is not None:
            if rec.result is not None:
                if rec.expires_at > now:
                    if validate and rec.payload != payload:
                        return Claim(ClaimStatus.CONFLICT)
                    return Claim(ClaimStatus.COMPLETED, result=rec.result)
            elif rec.token is not None and rec.lease_until > now:
                if validate and rec.payload != payload:
                    return Claim(ClaimStatus.CONFLICT)
                return Claim(ClaimStatus.IN_PROGRESS, lease_until=rec.lease_until)
        token = new_token()
        self._records[key] = _Record(token, payload, lease_until)
        if len(self._records) > self._max:
            self._evict(now)
        return Claim(ClaimStatus.CLAIMED, token=token)

    def _evict(self, now: float) -> None:
        for k, rec in list(self._records.items()):
            if len(self._records) <= self._max:
                return
            if rec.result is not None or rec.lease_until <= now:
                del self._records[k]

    async def complete(self, key: str, token: str, result: str, *, expires_at: float) -> None:
        rec = self._records.get(key)
        if rec is not None and rec.token == token:
            rec.result = result
            rec.expires_at = expires_at
            rec.token = None

    async def release(self, key: str, token: str) -> None:
        rec = self._records.get(key)
        if rec is not None and rec.token == token and rec.result is None:
            del self._records[key]
