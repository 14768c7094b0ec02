"""The idempotency steps around an attempt: :class:`IdempotentRuns`.

Claim the event's key in its store, then run the attempt (through the
:class:`~eventflow._attempts.AttemptRunner`) and complete or release the claim; or answer
from the store (:class:`Deduplicated`); or park the event until the key's claim settles
(:class:`WaitForKey`). The general path and ``RequestResponse`` call :meth:`run`, which
speaks the store's async protocol; the worker's inline path uses the store's documented
non-blocking calls and the ``*_nowait`` steps here, without an await.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, final

import anyio

from ._attempts import Failed, Succeeded
from ._contracts import ClaimStatus
from ._errors import IdempotencyConflict
from ._idempotency import DEFAULT_LEASE
from ._logging import log_context
from ._payload import to_json
from ._records import error_object, marshal_failure

if TYPE_CHECKING:
    from ._accounting import Accounting
    from ._attempts import AttemptRunner
    from ._clock import Clock
    from ._event import Event
    from ._idempotency import Idempotency
    from ._runtime import HandlerRuntime
    from ._scheduler import RetryScheduler

__all__ = ("Deduplicated", "IdempotentRuns", "WaitForKey")


@final
class Deduplicated:
    """The key was completed before: no attempt ran; ``value`` is the stored result."""

    __slots__ = ("stored",)

    def __init__(self, stored: str | None) -> None:
        self.stored = stored  # JSON text: decoded only when someone reads the value

    @property
    def value(self) -> Any:
        return json.loads(self.stored or "null")


@final
class WaitForKey:
    """Another attempt holds the key's claim until ``lease_until`` (wall-clock seconds)."""

    __slots__ = ("key", "lease_until")

    def __init__(self, key: str, lease_until: float) -> None:
        self.key = key
        self.lease_until = lease_until


class IdempotentRuns:
    """Claims, completions and releases of idempotency keys; duplicates that wait."""

    def __init__(
        self,
        *,
        accounting: Accounting,
        runner: AttemptRunner,
        scheduler: RetryScheduler,
        clock: Clock,
        now: Callable[[], float],
        wall: Callable[[], float],
        log: Any,
    ) -> None:
        self._acct = accounting
        self._runner = runner
        self._scheduler = scheduler
        self._clock = clock
        self._now = now
        self._wall = wall
        self._log = log
        # key -> duplicates parked until its claim settles here (or a re-check is due)
        self._key_waiters: dict[str, list[Event]] = {}
        # key -> RequestResponse callers waiting for the same
        self._key_futures: dict[str, list[asyncio.Future[None]]] = {}

    async def run(
        self, ev: Event, rt: HandlerRuntime, log: Any = None
    ) -> Succeeded | Failed | Deduplicated | WaitForKey:
        """Claim the event's key, then run the attempt, answer from the store, or wait."""
        idem = ev.cfg.idempotency
        assert idem is not None and idem.store is not None
        try:
            key = idem.key_for(ev.payload)
        except Exception as exc:
            return self.failed_before_attempt(ev, exc)
        now = self._wall()
        lease = idem.lease or ev.cfg.timeout or DEFAULT_LEASE
        store = idem.store
        try:
            claim = await store.claim(
                key,
                ev.payload,
                now=now,
                lease_until=now + lease,
                validate=idem.validate_payload,
            )
        except Exception as exc:
            # an unreachable store fails the attempt; it is retried like a function error
            return self.failed_before_attempt(ev, exc)
        status = claim.status
        if status is not ClaimStatus.CLAIMED:
            detail = claim.result if status is ClaimStatus.COMPLETED else claim.lease_until
            return self.not_claimed(ev, key, status, detail, now)
        token = claim.token
        assert token is not None
        try:
            result = await self._runner.run(ev, rt, log)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._release(idem, key, token, ev)
            raise
        if type(result) is Failed:
            await self._release(idem, key, token, ev)
            return result
        try:
            encoded = to_json(result.value)
        except (TypeError, ValueError, RecursionError) as exc:
            # the runtime cannot encode the result: the attempt failed after all
            await self._release(idem, key, token, ev)
            return Failed(marshal_failure(exc, ev.request_id))
        try:
            await store.complete(key, token, encoded, expires_at=self._wall() + idem.expires_after)
        except Exception as store_error:
            # the effect happened: report success, but a later duplicate may run again
            self._store_error("idempotency.complete_failed", ev, key, store_error)
        if self._key_waiters or self._key_futures:
            self.key_settled(key)
        return result

    def not_claimed(
        self, ev: Event, key: str, status: ClaimStatus, detail: Any, now: float
    ) -> Failed | Deduplicated | WaitForKey:
        """A store's answer other than ``CLAIMED``: ``detail`` is the stored result (JSON
        text) of a ``COMPLETED`` key, the lease's end of one ``IN_PROGRESS`` (as in
        ``Claim`` and ``claim_nowait``); ``now`` the wall time of the claim."""
        if status is ClaimStatus.COMPLETED:
            self._acct.deduplicated += 1
            self._log.info("idempotency.duplicate", key=key, **log_context(ev))
            return Deduplicated(detail)
        if status is ClaimStatus.IN_PROGRESS:
            return WaitForKey(key, detail or now)
        return self.failed_before_attempt(ev, self._conflict(key))

    def failed_before_attempt(self, ev: Event, exc: BaseException) -> Failed:
        """The key, the store or a conflict failed the attempt before the handler ran:
        still an attempt, so retries stay bounded by ``max_retries``."""
        ev.attempts += 1
        self._acct.attempts += 1
        return Failed(error_object(exc, ev.request_id), exc)

    @staticmethod
    def _conflict(key: str) -> IdempotencyConflict:
        return IdempotencyConflict(
            f"Idempotency key {key!r} was first used with a different payload; the same key "
            "must always come with the same event. Fix the key, or set "
            "Idempotency(validate_payload=False) to answer such duplicates anyway."
        )

    # -- the non-blocking steps of the worker's inline path ---------------------------

    def complete_nowait(self, ev: Event, key: str, token: Any, value: Any) -> float | Failed:
        """Complete an inline claim with the handler's ``value``; returns the wall time it
        read (the worker's next claim may reuse it), or the failure when JSON cannot carry
        the result (the claim is released then)."""
        idem = ev.cfg.idempotency
        assert idem is not None
        try:
            # most handlers return None: no call to the JSON encoder
            encoded = "null" if value is None else to_json(value)
        except (TypeError, ValueError, RecursionError) as exc:
            self.release_nowait(ev, key, token)
            return Failed(marshal_failure(exc, ev.request_id))
        at = self._wall()
        try:
            idem.nowait_store.complete_nowait(key, token, encoded, at + idem.expires_after)
        except Exception as store_error:
            self._store_error("idempotency.store_failed", ev, key, store_error)
        if self._key_waiters or self._key_futures:
            self.key_settled(key)
        return at

    def release_nowait(self, ev: Event, key: str, token: Any) -> None:
        """Release an inline claim whose attempt failed, without awaiting."""
        idem = ev.cfg.idempotency
        assert idem is not None
        try:
            idem.nowait_store.release_nowait(key, token)
        except Exception as store_error:
            # a custom non-blocking store that failed: the claim's lease ends by itself
            self._store_error("idempotency.store_failed", ev, key, store_error)
        if self._key_waiters or self._key_futures:
            self.key_settled(key)

    # -- releasing and waiting ----------------------------------------------------------

    async def _release(self, idem: Idempotency, key: str, token: str, ev: Event) -> None:
        assert idem.store is not None
        try:
            await idem.store.release(key, token)
        except Exception as store_error:
            # the claim's lease ends by itself; until then duplicates wait
            self._store_error("idempotency.release_failed", ev, key, store_error)
        self.key_settled(key)

    def _store_error(self, what: str, ev: Event, key: str, store_error: Exception) -> None:
        self._log.error(
            what,
            key=key,
            error=f"{type(store_error).__name__}: {store_error}",
            **log_context(ev),
        )

    def park(self, ev: Event, wait: WaitForKey) -> None:
        """Park a duplicate until the key's claim settles here, or re-check it later."""
        self._key_waiters.setdefault(wait.key, []).append(ev)
        # another process may hold the claim: look again within a second, or at its end
        recheck = min(1.0, max(0.0, wait.lease_until - self._wall()) + 0.001)
        self._acct.in_flight -= 1
        self._scheduler.schedule(self._now() + recheck, ev)

    async def wait(self, wait: WaitForKey) -> None:
        """Wait (a ``RequestResponse`` caller) until the key's claim settles or a re-check."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._key_futures.setdefault(wait.key, []).append(fut)
        recheck = min(1.0, max(0.0, wait.lease_until - self._wall()) + 0.001)

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        handle = self._clock.call_at(self._now() + recheck, wake)
        try:
            await fut
        finally:
            handle.cancel()

    def key_settled(self, key: str) -> None:
        """The key's claim was completed or released here: wake whoever waits for it."""
        for fut in self._key_futures.pop(key, ()):
            if not fut.done():
                fut.set_result(None)
        waiters = self._key_waiters.pop(key, None)
        if waiters:
            for waiter in waiters:
                self._scheduler.release_now(waiter)
