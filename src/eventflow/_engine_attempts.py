"""Running one attempt of a handler: async or in a thread, with or without a timeout."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio

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
            self._interrupted.append(ev)  # still in flight; spilled at shutdown
            raise

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
                    result = await anyio.to_thread.run_sync(
                        rt.fn, ev.private_payload(), ctx, limiter=self._limiter
                    )
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
                result = await anyio.to_thread.run_sync(
                    rt.fn, ev.private_payload(), ctx, limiter=self._limiter, abandon_on_cancel=True
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
