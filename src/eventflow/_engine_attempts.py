"""Running one attempt of a handler: async or in a thread, with or without a timeout."""

from __future__ import annotations

import asyncio
from typing import Any

from ._context import Context
from ._engine_base import FLAT_TYPES
from ._engine_outcomes import Outcomes
from ._event import Event
from ._records import (
    error_object,
    exit_error,
    marshal_error,
    timeout_error,
)
from ._runtime import HandlerRuntime

__all__ = ("Attempts",)


class Attempts(Outcomes):
    """Attempts and what an attempt that failed inline leads to."""

    async def _inline_failed(
        self,
        ev: Event,
        exc: BaseException | None,
        result: Any = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """The inline attempt in _worker raised (or returned what JSON cannot carry)."""
        try:
            if error is not None:
                pass  # the idempotency claim failed the attempt before the handler ran
            elif exc is None:
                error = marshal_error(result, ev.request_id)
                assert error is not None
            elif isinstance(exc, asyncio.CancelledError):
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    ev.attempts -= 1  # a cancelled attempt is not a failed attempt
                    self._attempts -= 1
                    raise exc
                error = error_object(exc, ev.request_id)  # the handler's own CancelledError
            elif isinstance(exc, Exception):
                error = error_object(exc, ev.request_id)
            elif isinstance(exc, SystemExit):
                error = exit_error(exc, ev.request_id)
            else:
                raise exc  # KeyboardInterrupt: asyncio stops the loop at once, as it should
            await self._after_failure(ev, error, exc)
        except asyncio.CancelledError:
            self._cancelled(ev)
            raise
        except Exception as bug:  # a bug in eventflow itself: keep the worker, settle the event
            self._internal_error(ev, bug)

    def _cancelled(self, ev: Event) -> None:
        """``ev``'s worker is cancelled (shutdown): spill it, unless it has its outcome."""
        if ev in self._given_up:
            self._given_up.discard(ev)
        else:
            self._interrupted.append(ev)  # still in flight; spilled at shutdown

    async def _attempt(
        self, ev: Event, rt: HandlerRuntime, log: Any = None
    ) -> tuple[bool, Any, BaseException | None]:
        """One attempt: (True, result, None) or (False, error object, exception or None)."""
        ev.attempts += 1
        self._attempts += 1
        try:
            return await self._attempt_once(ev, rt, log)
        except asyncio.CancelledError:
            ev.attempts -= 1  # a cancelled attempt is not a failed attempt
            self._attempts -= 1
            raise

    async def _attempt_once(
        self, ev: Event, rt: HandlerRuntime, log: Any
    ) -> tuple[bool, Any, BaseException | None]:
        if self._info:
            self._log.info(
                "attempt.started", request_id=ev.request_id, handler=rt.name, attempt=ev.attempts
            )
        timeout = ev.cfg.timeout
        if timeout is None:
            ctx = Context(ev, None, log)
            try:
                if rt.is_async:
                    result = await rt.fn(ev.private_payload(), ctx)
                else:
                    assert self._threads is not None
                    result = await self._threads.run(rt.fn, ev.private_payload(), ctx)
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                # the handler itself raised CancelledError: that is its error, not ours
                return False, error_object(exc, ev.request_id), exc
            except Exception as exc:
                return False, error_object(exc, ev.request_id), exc
            except SystemExit as exc:
                return False, exit_error(exc, ev.request_id), exc
        else:
            ok, result, error = await self._attempt_with_timeout(ev, rt, timeout, log)
            if not ok:
                return False, result, error
        if type(result) not in FLAT_TYPES:
            err = marshal_error(result, ev.request_id)
            if err is not None:
                return False, err, None
        return True, result, None

    async def _attempt_with_timeout(
        self, ev: Event, rt: HandlerRuntime, timeout: float, log: Any = None
    ) -> tuple[bool, Any, BaseException | None]:
        task = asyncio.current_task()
        assert task is not None
        deadline = self._now() + timeout
        ctx = Context(ev, deadline, log)
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            task.cancel()

        handle = self._clock.call_at(deadline, expire)
        try:
            if rt.is_async:
                result = await rt.fn(ev.private_payload(), ctx)
            else:
                assert self._threads is not None
                result = await self._threads.run(
                    rt.fn,
                    ev.private_payload(),
                    ctx,
                    on_abandon=lambda ended: self._thread_abandoned(ev, ended),
                )
        except asyncio.CancelledError as exc:
            if timed_out and task.uncancel() == 0:
                return False, timeout_error(ev.request_id, timeout), None
            if timed_out or task.cancelling():
                raise
            return False, error_object(exc, ev.request_id), exc
        except (Exception, SystemExit) as exc:
            if timed_out:
                task.uncancel()
                return False, timeout_error(ev.request_id, timeout), None
            if isinstance(exc, SystemExit):
                return False, exit_error(exc, ev.request_id), exc
            return False, error_object(exc, ev.request_id), exc
        finally:
            handle.cancel()
        if timed_out:
            # the handler swallowed the cancellation and returned late: still a timeout
            task.uncancel()
            return False, timeout_error(ev.request_id, timeout), None
        return True, result, None

    def _thread_abandoned(self, ev: Event, ended: asyncio.Future[None]) -> None:
        """A timed-out plain ``def`` attempt of ``ev`` still runs: its retry waits for it."""
        rid = ev.request_id
        self._running_threads[rid] = ended

        def forget(_: asyncio.Future[None]) -> None:
            if self._running_threads.get(rid) is ended:
                del self._running_threads[rid]

        ended.add_done_callback(forget)

    def _hold_retry(self, ev: Event) -> bool:
        """Hold ``ev`` back while its last attempt's thread still runs, up to a bound.

        Lambda freezes a timed-out sandbox; here the thread cannot be stopped, so the retry
        waits until it has returned, or at most one more ``timeout`` after the retry was
        due, and then starts anyway (logged). True if the event is held (scheduled again).
        """
        rid = ev.request_id
        ended = self._running_threads.get(rid)
        if ended is None or ended.done():
            self._held_retries.pop(rid, None)
            return False
        now = self._now()
        until = self._held_retries.get(rid)
        if until is None:
            until = self._held_retries[rid] = now + (ev.cfg.timeout or 0.0)
        if now >= until:
            del self._held_retries[rid]
            self._log.warning(
                "attempt.overlapping",
                reason="the previous attempt timed out and its thread still runs",
                **self._log_context(ev),
            )
            return False
        self._in_flight -= 1
        self._scheduler.schedule(until, ev)
        hold = until

        def release(_: asyncio.Future[None]) -> None:
            # only this hold: the event may be waiting for a later retry by then
            if self._held_retries.get(rid) == hold:
                self._scheduler.release_now(ev)

        ended.add_done_callback(release)
        return True
