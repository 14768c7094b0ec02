"""Idempotent attempts: claim a key, run or answer from the store, or wait for it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio

from ._engine_attempts import Attempts
from ._errors import (
    IdempotencyConflict,
)
from ._event import Event
from ._idempotency import DEFAULT_LEASE, Idempotency
from ._payload import to_json
from ._records import (
    error_object,
    marshal_failure,
)
from ._runtime import HandlerRuntime
from .sources import Outcome
from .stores import ClaimStatus

__all__ = ("IdempotentRuns",)


class IdempotentRuns(Attempts):
    """The idempotency option, on top of attempts."""

    def _not_claimed(
        self, ev: Event, key: str, status: ClaimStatus, detail: Any, now: float
    ) -> dict[str, Any] | None:
        """A non-blocking store's answer other than ``CLAIMED``, for the worker's inline path.

        Returns the error object when the attempt failed (a conflict), or ``None`` when the
        event needs nothing more here: answered from the store (a duplicate) or parked
        until the key settles.
        """
        if status is ClaimStatus.COMPLETED:
            self._deduplicated += 1
            self._log.info("idempotency.duplicate", key=key, **self._log_context(ev))
            self._in_flight -= 1
            self._succeeded += 1
            if ev.settle is not None:
                self._settle(ev, Outcome.SUCCEEDED)
            if self._idle_waiters:
                self._wake_idle()
            return None
        if status is ClaimStatus.IN_PROGRESS:
            self._wait_for_key(ev, key, detail or now)
            return None
        error: dict[str, Any] = self._idempotency_error(ev, self._conflict(key))[1]
        return error

    def _release_inline(self, ev: Event, key: str, token: Any) -> None:
        """Release an inline claim whose attempt failed, without awaiting."""
        idem = ev.cfg.idempotency
        assert idem is not None
        try:
            idem._sync_store.release_nowait(key, token)
        except Exception as store_error:
            self._store_failed(ev, key, store_error)
        if self._key_waiters or self._key_futures:
            self._key_settled(key)

    def _store_failed(self, ev: Event, key: str, store_error: Exception) -> None:
        # a custom non-blocking store that failed: the claim's lease ends by itself
        self._log.error(
            "idempotency.store_failed",
            key=key,
            error=f"{type(store_error).__name__}: {store_error}",
            **self._log_context(ev),
        )

    @staticmethod
    def _conflict(key: str) -> IdempotencyConflict:
        return IdempotencyConflict(
            f"Idempotency key {key!r} was first used with a different payload; the same key "
            "must always come with the same event. Fix the key, or set "
            "Idempotency(validate_payload=False) to answer such duplicates anyway."
        )

    async def _idempotent(
        self, ev: Event, rt: HandlerRuntime, log: Any = None
    ) -> tuple[str, Any, BaseException | None]:
        """Claim the event's key, then run, answer from the store, or wait.

        Returns ``("ok", result, None)``, ``("error", error object, exc)``,
        ``("dedup", stored result, None)`` or ``("wait", (key, lease_until), None)``.
        """
        idem = ev.cfg.idempotency
        assert idem is not None and idem.store is not None
        try:
            key = idem._key(ev.payload)
        except Exception as exc:
            return self._idempotency_error(ev, exc)
        now = self._wall()
        lease = idem.lease or ev.cfg.timeout or DEFAULT_LEASE
        store = idem.store
        try:
            # the general path speaks the async protocol; the worker handles non-blocking
            # stores inline (in App._worker), without these awaits
            claim = await store.claim(
                key,
                ev.payload,
                now=now,
                lease_until=now + lease,
                validate=idem.validate_payload,
            )
        except Exception as exc:
            # an unreachable store fails the attempt; it is retried like a function error
            return self._idempotency_error(ev, exc)
        status = claim.status
        if status is not ClaimStatus.CLAIMED:
            if status is ClaimStatus.COMPLETED:
                self._log.info("idempotency.duplicate", key=key, **self._log_context(ev))
                return "dedup", json.loads(claim.result or "null"), None
            if status is ClaimStatus.IN_PROGRESS:
                return "wait", (key, claim.lease_until or now), None
            return self._idempotency_error(ev, self._conflict(key))
        token = claim.token
        assert token is not None
        try:
            ok, value, error = await self._attempt(ev, rt, log)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._release_claim(idem, key, token, ev)
            raise
        if ok:
            try:
                result = to_json(value)
            except (TypeError, ValueError, RecursionError) as exc:
                # the runtime cannot encode the result: the attempt failed after all
                await self._release_claim(idem, key, token, ev)
                return "error", marshal_failure(exc, ev.request_id), None
            try:
                await store.complete(
                    key, token, result, expires_at=self._wall() + idem.expires_after
                )
            except Exception as store_error:
                # the effect happened: report success, but a later duplicate may run again
                self._log.error(
                    "idempotency.complete_failed",
                    key=key,
                    error=f"{type(store_error).__name__}: {store_error}",
                    **self._log_context(ev),
                )
            if self._key_waiters or self._key_futures:
                self._key_settled(key)
            return "ok", value, None
        await self._release_claim(idem, key, token, ev)
        return "error", value, error

    def _idempotency_error(
        self, ev: Event, exc: BaseException
    ) -> tuple[str, Any, BaseException | None]:
        # the key, the store or a conflict failed the attempt before the handler ran:
        # still an attempt, so retries stay bounded by max_retries
        ev.attempts += 1
        self._attempts += 1
        return "error", error_object(exc, ev.request_id), exc

    async def _release_claim(self, idem: Idempotency, key: str, token: str, ev: Event) -> None:
        assert idem.store is not None
        try:
            await idem.store.release(key, token)
        except Exception as store_error:
            # the claim's lease ends by itself; until then duplicates wait
            self._log.error(
                "idempotency.release_failed",
                key=key,
                error=f"{type(store_error).__name__}: {store_error}",
                **self._log_context(ev),
            )
        self._key_settled(key)

    def _wait_for_key(self, ev: Event, key: str, lease_until: float) -> None:
        """Park a duplicate until the key's claim settles here, or re-check it later."""
        self._key_waiters.setdefault(key, []).append(ev)
        # another process may hold the claim: look again within a second, or at its end
        recheck = min(1.0, max(0.0, lease_until - self._wall()) + 0.001)
        self._in_flight -= 1
        self._scheduler.schedule(self._now() + recheck, ev)

    async def _wait_key_settled(self, key: str, lease_until: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._key_futures.setdefault(key, []).append(fut)
        recheck = min(1.0, max(0.0, lease_until - self._wall()) + 0.001)

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        handle = self._clock.call_at(self._now() + recheck, wake)
        try:
            await fut
        finally:
            handle.cancel()

    def _key_settled(self, key: str) -> None:
        for fut in self._key_futures.pop(key, ()):
            if not fut.done():
                fut.set_result(None)
        waiters = self._key_waiters.pop(key, None)
        if waiters:
            for waiter in waiters:
                self._scheduler.release_now(waiter)
