"""The worker loop: :class:`WorkerPool`, from the queue to an attempt to its outcome.

``App`` starts ``concurrency`` tasks of :meth:`WorkerPool.work` in its task group. A worker
takes an event only when free. The common case, an ``async def`` handler without a cap,
timeout or on-success record, with at most a non-blocking idempotency store and no
middleware, runs **inline** in the loop: no coroutine per event. Everything else runs
:meth:`WorkerPool.run`, the general path. Both are built from the same parts, called
through their public methods: the :class:`~eventflow._attempts.AttemptRunner` (the
classifier and the result check), :class:`~eventflow._idempotent_runs.IdempotentRuns`
(the idempotency steps) and :class:`~eventflow._outcomes.Outcomes` (everything after a
result); the inline path only does in place what those would do for a plain success.
Capped handlers (``concurrency=``) park events beyond their cap here, too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._attempts import FLAT_TYPES, Failed, Succeeded
from ._context import new_context
from ._contracts import ClaimStatus, Outcome
from ._idempotent_runs import Deduplicated, WaitForKey
from ._logging import attempt_var, handler_var, log_context, request_id_var
from ._payload import private_copy

if TYPE_CHECKING:
    from ._accounting import Accounting
    from ._attempts import AttemptRunner
    from ._event import Event
    from ._idempotent_runs import IdempotentRuns
    from ._middleware import Hooks
    from ._outcomes import Outcomes
    from ._queue import EventQueue
    from ._runtime import HandlerRuntime

__all__ = ("WorkerPool",)


class WorkerPool:
    """The worker loop and the general path of one event; capped handlers' slots."""

    def __init__(
        self,
        *,
        queue: EventQueue,
        accounting: Accounting,
        runner: AttemptRunner,
        idempotent: IdempotentRuns,
        outcomes: Outcomes,
        hooks: Hooks | None,
        now: Callable[[], float],
        wall: Callable[[], float],
        log: Any,
        log_attempts: bool,
    ) -> None:
        self._queue = queue
        self._acct = accounting
        self._runner = runner
        self._idem = idempotent
        self._outcomes = outcomes
        self._hooks = hooks
        self._now = now
        self._wall = wall
        self._log = log
        self._log_attempts = log_attempts

    async def work(self) -> None:
        """One worker: take an event when free, run it, forever (until cancelled)."""
        # the hot path reads everything through locals
        queue = self._queue
        get_nowait = queue.get_nowait
        fresh_lane, retry_lane, putters = queue.lanes()
        run = self.run
        now = self._now
        wall = self._wall
        flat = FLAT_TYPES
        claimed = ClaimStatus.CLAIMED
        # the wall time this worker read as its last inline event completed a claim: the
        # next claim, microseconds later with no await between, reuses it (0.0: read anew)
        fresh = 0.0
        # middleware wraps every handler call: the general path has the seams for it
        inline = self._hooks is None
        acct = self._acct
        succeeded = Outcome.SUCCEEDED
        log_attempts = self._log_attempts
        outcomes = self._outcomes
        settle = outcomes.settle
        check_result = self._runner.check_result
        idem_runs = self._idem
        after_inline = self._after_inline
        rid_var, h_var, a_var = request_id_var, handler_var, attempt_var
        h_get = h_var.get
        bound_attempt = 0  # the attempt number this worker last bound in the log context
        while True:
            last, fresh = fresh, 0.0
            ev: Event | None
            if fresh_lane and not retry_lane and not putters:
                ev = fresh_lane.popleft()  # get_nowait's own step when no retry is due
            else:
                ev = get_nowait()
            if ev is None:
                last = 0.0
                ev = await queue.get()
            rt = ev.rt
            cfg = ev.cfg
            # the general path first, so that these tests jump a short way: a long jump
            # would keep the interpreter from specialising the age comparison
            if not (
                inline and rt.simple and cfg.inline and now() - ev.enqueued_at <= cfg.max_event_age
            ):
                if rt.limit is None:
                    await run(ev)
                else:
                    await self._run_capped(ev)
                continue
            # The hot path, inline (no coroutine per event): an async, uncapped handler
            # with no timeout, no on-success record and at most a non-blocking
            # idempotency store. Anything but a plain success goes to after_inline.
            acct.in_flight += 1
            payload = ev.payload
            idem = cfg.idempotency
            if idem is not None:
                # the store's documented non-blocking claim: no await, no coroutine
                try:
                    key = idem.key_for(payload)
                    at = last or wall()
                    status, token = idem.nowait_store.claim_nowait(
                        key, payload, at, at + idem.lease_seconds, idem.validate_payload
                    )
                except Exception as claim_error:
                    await after_inline(ev, idem_runs.failed_before_attempt(ev, claim_error))
                    continue
                if status is not claimed:
                    await after_inline(ev, idem_runs.not_claimed(ev, key, status, token, at))
                    continue
            # AttemptRunner.run's steps, in place: count, log, bind the log context
            ev.attempts = attempt = ev.attempts + 1
            acct.attempts += 1
            if log_attempts:
                self._log.info("attempt.started", **log_context(ev))
            # not reset after: this task runs nothing else between attempts, and the
            # next attempt overwrites them. Handler and attempt change rarely: set them
            # when they differ from this worker's last, or when a handler cleared (or
            # rebound) the handler key, as structlog's clear_contextvars() does
            rid_var.set(ev.request_id)
            if attempt != bound_attempt or h_get(None) is not rt.name:
                h_var.set(rt.name)
                bound_attempt = attempt
                a_var.set(attempt)
            try:
                # a private copy of the event, as Lambda deserialises one per attempt
                fn = rt.fn  # an attribute, not a method: a method call would not specialise
                value = await fn(
                    payload.copy() if ev.flat else private_copy(payload),
                    new_context(ev, None, None),
                )
            except BaseException as exc:
                if idem is not None:
                    idem_runs.release_nowait(ev, key, token)
                await after_inline(ev, None, exc)
                continue
            if value is not None and type(value) not in flat:
                failed = check_result(ev, value)
                if failed is not None:
                    if idem is not None:
                        idem_runs.release_nowait(ev, key, token)
                    await after_inline(ev, failed)
                    continue
            if idem is not None:
                done = idem_runs.complete_nowait(ev, key, token, value)
                if type(done) is Failed:
                    await after_inline(ev, done)
                    continue
                fresh = done
            # Outcomes.succeeded and Accounting.finish(SUCCEEDED), in place (the inline
            # path runs without middleware)
            if log_attempts:
                outcomes.log_success(ev)
            acct.in_flight -= 1
            acct.succeeded += 1
            if acct.waiters:
                acct.wake_idle()
            if ev.settle is not None:
                settle(ev, succeeded)

    async def _run_capped(self, ev: Event) -> None:
        """An event of a handler with a cap: park it at the cap, else run it and then the
        handler's oldest parked events while it has room."""
        rt = ev.rt
        limit = rt.limit
        assert limit is not None
        if rt.running >= limit:
            rt.parked.append(ev)
            self._queue.park()
            return
        await self.run(ev)
        # this worker is free and the handler has room: take its oldest parked event
        while rt.parked and rt.running < limit and not rt.slot_waiters:
            ev = rt.parked.popleft()
            self._queue.unpark()
            await self.run(ev)
        if rt.slot_waiters and rt.running < limit:
            self.release_parked(rt)

    async def _after_inline(
        self,
        ev: Event,
        result: Failed | Deduplicated | WaitForKey | None,
        exc: BaseException | None = None,
    ) -> None:
        """An inline attempt that did not simply succeed: what the handler raised
        (``exc``), or the result of a step, goes the general path's way from here."""
        try:
            if result is None:
                assert exc is not None
                try:
                    result = self._runner.classify(ev, exc)
                except asyncio.CancelledError:
                    self._runner.take_back(ev)
                    raise
            await self._conclude(ev, result)
        except asyncio.CancelledError:
            self._outcomes.cancelled(ev)
            raise
        except Exception as bug:  # a bug in eventflow itself: keep the worker, settle the event
            self._outcomes.internal_error(ev, bug)

    async def run(self, ev: Event) -> None:
        """The general path: one attempt of ``ev`` and everything that follows from it."""
        self._acct.in_flight += 1
        rt = ev.rt
        outcomes = self._outcomes
        try:
            cfg = ev.cfg
            if self._now() - ev.enqueued_at > cfg.max_event_age:
                await outcomes.too_old(ev)
                return
            runner = self._runner
            if runner.threads_running() and runner.hold_retry(ev):
                return  # its timed-out attempt's thread still runs: the retry waits for it
            limited = rt.limit is not None
            if limited:
                rt.running += 1
            try:
                if cfg.idempotency is None:
                    result: Succeeded | Failed | Deduplicated | WaitForKey = await runner.run(
                        ev, rt
                    )
                else:
                    result = await self._idem.run(ev, rt)
            finally:
                if limited:
                    rt.running -= 1
            await self._conclude(ev, result)
        except asyncio.CancelledError:
            outcomes.cancelled(ev)
            raise
        except Exception as bug:  # a bug in eventflow itself: keep the worker, settle the event
            outcomes.internal_error(ev, bug)

    async def _conclude(
        self, ev: Event, result: Succeeded | Failed | Deduplicated | WaitForKey
    ) -> None:
        """From an attempt's (or a claim's) result to what follows: the one place."""
        outcomes = self._outcomes
        if type(result) is Failed:
            await outcomes.after_failure(ev, result)
        elif type(result) is WaitForKey:
            self._idem.park(ev, result)  # a duplicate in progress elsewhere
        elif ev.cfg.on_success is None:
            outcomes.succeeded(ev)
        else:
            assert type(result) is Succeeded or type(result) is Deduplicated
            error = await outcomes.succeed_with_destination(ev, result.value)
            if error is not None:
                await outcomes.after_failure(ev, Failed(error))

    # -- capped handlers ----------------------------------------------------------------

    async def wait_slot(self, rt: HandlerRuntime) -> None:
        """Wait (a ``RequestResponse`` caller) for a slot under ``rt``'s cap."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        rt.slot_waiters.append(fut)
        try:
            await fut
        finally:
            if fut in rt.slot_waiters:
                rt.slot_waiters.remove(fut)

    def release_parked(self, rt: HandlerRuntime) -> None:
        """A capped handler's slot freed outside a worker: let a waiter or a worker use it."""
        while rt.slot_waiters:
            fut = rt.slot_waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        if rt.parked and rt.limit is not None and rt.running < rt.limit:
            self._queue.unpark()
            self._queue.put_retry(rt.parked.popleft())
