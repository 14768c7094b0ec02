"""One attempt of a handler, and its typed result: :class:`AttemptRunner`.

An attempt counts itself (``Event.attempts``, ``stats().attempts``), binds the log context
with structlog's context variables, enters the middleware's ``attempt`` contexts, calls the
handler (on the loop, or in a thread for a plain ``def``), under the handler's timeout if
it has one, and answers :class:`Succeeded` or :class:`Failed`. What a handler raised is
classified in one place, :meth:`AttemptRunner.classify`, over ``_records.function_error``;
every path (the worker's inline path, the general path, ``RequestResponse``) goes
through it. What follows a result is :mod:`eventflow._outcomes`' business.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, final

from ._context import Context, new_context
from ._logging import attempt_var, handler_var, log_context, request_id_var
from ._records import (
    WaitingError,
    deferred_function_error,
    error_object,
    marshal_error,
    timeout_error,
    waiting_error_of,
)

if TYPE_CHECKING:
    from ._accounting import Accounting
    from ._clock import Clock
    from ._event import Event
    from ._middleware import Hooks
    from ._runtime import HandlerRuntime
    from ._scheduler import RetryScheduler
    from ._threads import HandlerThreads

__all__ = ("FLAT_TYPES", "AttemptRunner", "Failed", "Succeeded")

# results of these types need no check that JSON can carry them
FLAT_TYPES = frozenset((str, int, bool, type(None)))


@final
class Succeeded:
    """The attempt returned ``value`` (which JSON can carry)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Succeeded({self.value!r})"


@final
class Failed:
    """The attempt failed with Lambda's error object ``error``; ``exc`` is what the handler
    raised (``None`` for a timeout, a result JSON cannot carry, or a failed claim).

    Made with ``error=None`` (and ``exc``, ``request_id``), the error object is
    ``error_object(exc, request_id)``, built on first use: its stack trace costs more than
    the rest of a failure, and a failure whose retry waits may never need it.
    """

    __slots__ = ("_error", "exc", "request_id")

    def __init__(
        self,
        error: dict[str, Any] | None,
        exc: BaseException | None = None,
        request_id: str | None = None,
    ) -> None:
        if error is None and (exc is None or request_id is None):
            raise TypeError("Failed(None, ...) needs the exception and the request ID.")
        self._error = error
        self.exc = exc
        self.request_id = request_id

    @property
    def error(self) -> dict[str, Any]:
        """Lambda's error object of the attempt."""
        error = self._error
        if error is None:
            assert self.exc is not None and self.request_id is not None
            error = self._error = error_object(self.exc, self.request_id)
        return error

    @property
    def error_type(self) -> str:
        """The error object's ``errorType``, without building it."""
        if self._error is None:
            return type(self.exc).__name__
        return str(self._error.get("errorType"))

    @property
    def error_message(self) -> str:
        """The error object's ``errorMessage``, without building it."""
        if self._error is None:
            return str(self.exc)
        return str(self._error.get("errorMessage", ""))

    def waiting(self) -> dict[str, Any] | WaitingError:
        """What ``Event.wait_for_retry`` keeps of this failure: (errorType, errorMessage),
        as ``waiting_error`` keeps, if the error object was not made; else the object,
        which it then makes compact."""
        if self._error is None:
            assert self.exc is not None
            return waiting_error_of(self.exc)
        return self._error

    def __repr__(self) -> str:
        return f"Failed({self.error_type!r})"


class AttemptRunner:
    """Runs attempts; holds back the retry of an attempt whose timed-out thread still runs."""

    def __init__(
        self,
        *,
        accounting: Accounting,
        clock: Clock,
        now: Callable[[], float],
        scheduler: RetryScheduler,
        threads: HandlerThreads,
        hooks: Hooks | None,
        log: Any,
        log_attempts: bool,
    ) -> None:
        self._acct = accounting
        self._clock = clock
        self._now = now
        self._scheduler = scheduler
        self._threads = threads
        self._hooks = hooks
        self._log = log
        self._log_attempts = log_attempts
        # request ID -> the end of a timed-out plain def attempt whose thread still runs
        self._running_threads: dict[str, asyncio.Future[None]] = {}
        # request ID -> the time a retry held back for such a thread starts anyway
        self._held_retries: dict[str, float] = {}

    # -- the classifier ---------------------------------------------------------------

    @staticmethod
    def classify(ev: Event, exc: BaseException) -> Failed:
        """What the handler raised, as the attempt's failure; a cancellation of the
        attempt's own task (shutdown) is raised again (see ``_records.function_error``)."""
        return Failed(deferred_function_error(exc, ev.request_id), exc, ev.request_id)

    @staticmethod
    def check_result(ev: Event, value: Any) -> Failed | None:
        """``Runtime.MarshalError`` when JSON cannot carry the handler's result, else None."""
        error = marshal_error(value, ev.request_id)
        return None if error is None else Failed(error)

    def take_back(self, ev: Event) -> None:
        """The attempt was cancelled (shutdown): a cancelled attempt is not an attempt."""
        ev.attempts -= 1
        self._acct.attempts -= 1

    # -- one attempt ------------------------------------------------------------------

    async def run(self, ev: Event, rt: HandlerRuntime, log: Any = None) -> Succeeded | Failed:
        """One attempt of ``ev``; ``log`` is the logger ``context.log`` gets (a tail log)."""
        ev.attempts += 1
        self._acct.attempts += 1
        try:
            return await self._once(ev, rt, log)
        except asyncio.CancelledError:
            self.take_back(ev)
            raise

    async def _once(self, ev: Event, rt: HandlerRuntime, log: Any) -> Succeeded | Failed:
        if self._log_attempts:
            self._log.info("attempt.started", **log_context(ev))
        timeout = ev.cfg.timeout
        if timeout is None:
            try:
                value = await self._call(ev, rt, new_context(ev, None, log))
            except BaseException as exc:
                return self.classify(ev, exc)
        else:
            result = await self._with_timeout(ev, rt, timeout, log)
            if type(result) is Failed:
                return result
            value = result.value
        if type(value) not in FLAT_TYPES:
            failed = self.check_result(ev, value)
            if failed is not None:
                return failed
        return Succeeded(value)

    async def _with_timeout(
        self, ev: Event, rt: HandlerRuntime, timeout: float, log: Any
    ) -> Succeeded | Failed:
        task = asyncio.current_task()
        assert task is not None
        deadline = self._now() + timeout
        ctx = new_context(ev, deadline, log)
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            task.cancel()

        handle = self._clock.call_at(deadline, expire)
        try:
            value = await self._call(ev, rt, ctx, abandonable=True)
        except BaseException as exc:
            if timed_out and isinstance(exc, asyncio.CancelledError):
                if task.uncancel() == 0:
                    return Failed(timeout_error(ev.request_id, timeout))
                raise  # cancelled from outside as well: shutdown
            if timed_out and isinstance(exc, Exception | SystemExit):
                # the timer's cancellation surfaced as another exception (or was swallowed)
                task.uncancel()
                return Failed(timeout_error(ev.request_id, timeout))
            return self.classify(ev, exc)
        finally:
            handle.cancel()
        if timed_out:
            # the handler swallowed the cancellation and returned late: still a timeout
            task.uncancel()
            return Failed(timeout_error(ev.request_id, timeout))
        return Succeeded(value)

    async def _call(
        self, ev: Event, rt: HandlerRuntime, ctx: Context, *, abandonable: bool = False
    ) -> Any:
        """Call the handler once, on the loop or in a thread, inside the middleware's
        attempt contexts; a timed-out thread (``abandonable``) holds back the retry."""
        if rt.is_async:

            def call() -> Awaitable[Any]:
                awaitable: Awaitable[Any] = rt.fn(ev.private_payload(), ctx)
                return awaitable

        else:
            threads = self._threads
            on_abandon = (lambda ended: self._thread_abandoned(ev, ended)) if abandonable else None

            def call() -> Awaitable[Any]:
                return threads.run(rt.fn, ev.private_payload(), ctx, on_abandon=on_abandon)

        # bound while the handler runs, so its own structlog lines carry them too
        t1 = request_id_var.set(ev.request_id)
        t2 = handler_var.set(rt.name)
        t3 = attempt_var.set(ev.attempts)
        try:
            if self._hooks is None:
                return await call()
            return await self._hooks.around(ev, call)
        finally:
            attempt_var.reset(t3)
            handler_var.reset(t2)
            request_id_var.reset(t1)

    # -- timed-out threads ------------------------------------------------------------

    def _thread_abandoned(self, ev: Event, ended: asyncio.Future[None]) -> None:
        """A timed-out plain ``def`` attempt of ``ev`` still runs: its retry waits for it."""
        rid = ev.request_id
        self._running_threads[rid] = ended

        def forget(_: asyncio.Future[None]) -> None:
            if self._running_threads.get(rid) is ended:
                del self._running_threads[rid]

        ended.add_done_callback(forget)

    def threads_running(self) -> bool:
        """Whether any timed-out attempt's thread still runs (cheap: checked per event)."""
        return bool(self._running_threads)

    def hold_retry(self, ev: Event) -> bool:
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
                **log_context(ev),
            )
            return False
        self._acct.in_flight -= 1
        self._scheduler.schedule(until, ev)
        hold = until

        def release(_: asyncio.Future[None]) -> None:
            # only this hold: the event may be waiting for a later retry by then
            if self._held_retries.get(rid) == hold:
                self._scheduler.release_now(ev)

        ended.add_done_callback(release)
        return True
