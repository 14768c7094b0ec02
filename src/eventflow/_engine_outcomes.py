"""What follows an attempt: success records, retries, dead letters, failure records."""

from __future__ import annotations

from typing import Any

import anyio

from ._engine_base import EngineBase
from ._errors import (
    SchedulerFull,
)
from ._event import Event
from ._records import (
    EVENT_AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    SUCCESS,
    dead_letter_message,
    destination_record,
)
from .sources import Outcome

__all__ = ("Outcomes",)


class Outcomes(EngineBase):
    """Terminal outcomes and retry scheduling."""

    def _log_success(self, ev: Event) -> None:
        if self._info:
            self._log.info(
                "attempt.succeeded",
                request_id=ev.request_id,
                handler=ev.rt.name,
                attempt=ev.attempts,
            )

    def _log_failure(self, ev: Event, error: dict[str, Any], exc: BaseException | None) -> None:
        self._log.error(
            "attempt.failed",
            request_id=ev.request_id,
            handler=ev.rt.name,
            attempt=ev.attempts,
            error_type=error.get("errorType"),
            error_message=error.get("errorMessage"),
            exc_info=exc if exc is not None else False,
        )

    async def _succeed_with_destination(self, ev: Event, result: Any) -> None:
        sink = ev.cfg.on_success
        assert sink is not None and self._deliverer is not None
        record = destination_record(ev, SUCCESS, response=result)
        sent = await self._deliverer.deliver(
            sink, record, role="on_success", **self._log_context(ev)
        )
        if not sent:
            self._destination_errors += 1
        self._in_flight -= 1
        self._succeeded += 1
        if ev.settle is not None:
            self._settle(ev, Outcome.SUCCEEDED)
        self._wake_idle()

    async def _after_failure(
        self, ev: Event, error: dict[str, Any], exc: BaseException | None
    ) -> None:
        self._errors += 1
        ev.error = error
        self._log_failure(ev, error, exc)
        h = ev.cfg
        if ev.attempts > h.max_retries:
            await self._fail(ev, RETRIES_EXHAUSTED, str(error.get("errorMessage", "")))
            return
        delay = h.retry_delay(ev.attempts)
        due = self._now() + delay
        if due - ev.enqueued_at > h.max_event_age:
            reason = self._age_reason(ev, h.max_event_age, next_retry_in=delay)
            await self._fail(ev, EVENT_AGE_EXCEEDED, reason)
            return
        if ev.defer is not None:
            self._defer(ev, delay)
            return
        try:
            self._scheduler.schedule(due, ev)
        except SchedulerFull as full:
            self._log.error("retry.not_scheduled", reason=str(full), **self._log_context(ev))
            await self._fail(ev, RETRIES_EXHAUSTED, f"{error.get('errorMessage')} ({full})")
            return
        self._in_flight -= 1
        self._retries += 1
        if self._info:
            self._log.info(
                "retry.scheduled", delay_s=delay, retry=ev.attempts, **self._log_context(ev)
            )

    def _defer(self, ev: Event, delay: float) -> None:
        """Hand a retry back to the shared queue the event came from: it keeps the delay."""
        defer, ev.defer, ev.settle = ev.defer, None, None
        assert defer is not None
        try:
            defer(ev.request_id, delay)
        except Exception as exc:  # a queue's bug: it redelivers after its own timeout
            self._log.error("queue.defer_failed", exc_info=exc, **self._log_context(ev))
        self._in_flight -= 1
        self._retries += 1
        self._requeued += 1
        if self._info:
            self._log.info(
                "retry.scheduled",
                delay_s=delay,
                retry=ev.attempts,
                queue="shared",
                **self._log_context(ev),
            )
        if self._idle_waiters:
            self._wake_idle()

    def _age_reason(self, ev: Event, max_age: float, next_retry_in: float | None = None) -> str:
        age = self._now() - ev.enqueued_at
        last = f" Last error: {ev.error['errorMessage']}" if ev.error else ""
        if next_retry_in is None:
            return (
                f"Event age exceeded: the event is {age:.3f} s old, older than its "
                f"max_event_age of {max_age:g} s.{last}"
            )
        return (
            f"Event age exceeded: the event is {age:.3f} s old and its next retry, in "
            f"{next_retry_in:g} s, would be past its max_event_age of {max_age:g} s.{last}"
        )

    async def _fail(self, ev: Event, condition: str, reason: str) -> None:
        """The event failed for good: dead letter and/or on-failure record, then count it."""
        h = ev.cfg
        ctx = self._log_context(ev)
        expired = condition == EVENT_AGE_EXCEEDED
        if expired:
            self._log.warning("event.expired", reason=reason, **ctx)
        # Lambda fires both at once when both are set (spec §3.3); so do we
        if h.dead_letter is not None and h.on_failure is not None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._send_dead_letter, ev, reason, condition)
                tg.start_soon(self._send_failure_record, ev, condition)
        elif h.dead_letter is not None:
            await self._send_dead_letter(ev, reason, condition)
        elif h.on_failure is not None:
            await self._send_failure_record(ev, condition)
        if h.dead_letter is None and h.on_failure is None:
            # no DLQ and no destination: Lambda drops the event; eventflow at least logs it all
            self._log.error(
                "event.failed", condition=condition, reason=reason, payload=ev.payload, **ctx
            )
        self._in_flight -= 1
        self._failed += 1
        if expired:
            self._expired += 1
        if ev.settle is not None:
            self._settle(ev, Outcome.FAILED)
        self._wake_idle()

    def _settle(self, ev: Event, outcome: Outcome) -> None:
        settle, ev.settle = ev.settle, None
        assert settle is not None
        try:
            settle(ev.request_id, outcome)
        except Exception as exc:  # a source's bug must not take the worker down
            self._log.error(
                "source.settle_failed", outcome=outcome.value, exc_info=exc, **self._log_context(ev)
            )

    async def _send_dead_letter(self, ev: Event, reason: str, condition: str) -> None:
        sink = ev.cfg.dead_letter
        assert sink is not None and self._deliverer is not None
        ctx = self._log_context(ev)
        message = dead_letter_message(ev, reason)
        if await self._deliverer.deliver(sink, message, role="dead_letter", **ctx):
            self._dead_lettered += 1
            self._log.warning("event.dead_lettered", condition=condition, **ctx)
        else:
            self._dead_letter_errors += 1

    async def _send_failure_record(self, ev: Event, condition: str) -> None:
        sink = ev.cfg.on_failure
        assert sink is not None and self._deliverer is not None
        record = destination_record(
            ev, condition, response=ev.error, function_error=ev.error is not None
        )
        ctx = self._log_context(ev)
        if not await self._deliverer.deliver(sink, record, role="on_failure", **ctx):
            self._destination_errors += 1
