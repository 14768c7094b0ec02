"""What follows an attempt: :class:`Outcomes`, the failure router and the one way out.

A success is counted, or its on-success record sent first. A failure is routed: a retry
on the timer wheel (or handed back to the shared queue the event came from), or, out of
retries or too old, the dead letter and on-failure record sent through the
:class:`~eventflow._delivery.Deliverer`, or the event given back to the source that holds
it when none could be sent. Every terminal outcome leaves through :meth:`Outcomes.finish`:
the accounting, then the middleware's ``finished``, then the source's ``settle``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from ._contracts import Message, Outcome, Sink
from ._errors import SchedulerFull
from ._logging import log_context
from ._records import (
    EVENT_AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    SUCCESS,
    dead_letter_message,
    destination_record,
    marshal_failure,
    spill_message,
)

if TYPE_CHECKING:
    from ._accounting import Accounting
    from ._attempts import Failed
    from ._delivery import Deliverer
    from ._event import Event
    from ._middleware import Hooks
    from ._scheduler import RetryScheduler

__all__ = ("Outcomes",)

_STOPPED = "the app stopped before it was sent, and the event has its outcome already"


class Outcomes:
    """Successes, retries, failures for good, and the terminal outcome of every event."""

    def __init__(
        self,
        *,
        accounting: Accounting,
        scheduler: RetryScheduler,
        deliverer: Deliverer,
        hooks: Hooks | None,
        log: Any,
        now: Callable[[], float],
        info: bool,
        log_attempts: bool,
    ) -> None:
        self._acct = accounting
        self._scheduler = scheduler
        self._deliverer = deliverer
        self._hooks = hooks
        self._log = log
        self._now = now
        self._info = info
        self._log_attempts = log_attempts
        # events that reached their terminal outcome while being cancelled at shutdown
        self._given_up: set[Event] = set()
        # events whose worker was cancelled before their outcome: spilled at shutdown
        self._interrupted: list[Event] = []

    # -- logging ----------------------------------------------------------------------

    def log_success(self, ev: Event) -> None:
        """``attempt.succeeded``, when success lines are on (``App(log_success=True)``)."""
        if self._log_attempts:
            self._log.info("attempt.succeeded", **log_context(ev))

    def log_failure(self, ev: Event, failed: Failed) -> None:
        """``attempt.failed``: always logged, with the handler's traceback if it raised."""
        self._log.error(
            "attempt.failed",
            **log_context(ev),
            error_type=failed.error_type,
            error_message=failed.error_message,
            exc_info=failed.exc if failed.exc is not None else False,
        )

    # -- the way out --------------------------------------------------------------------

    def finish(self, ev: Event, outcome: Outcome) -> None:
        """``ev`` leaves the engine with its terminal ``outcome``: count it (keeping
        ``received == succeeded + failed + undelivered + ...``), tell the middleware, settle
        it with its source, and wake ``drain()`` if the app is idle now."""
        self._acct.finish(outcome)
        if self._hooks is not None:
            self._hooks.finished(ev, outcome)
        if ev.settle is not None:
            self.settle(ev, outcome)

    def settle(self, ev: Event, outcome: Outcome) -> None:
        """Tell the source that submitted ``ev`` its outcome (once)."""
        settle, ev.settle = ev.settle, None
        assert settle is not None
        try:
            settle(ev.request_id, outcome)
        except Exception as exc:  # a source's bug must not take the worker down
            self._log.error(
                "source.settle_failed", outcome=outcome.value, exc_info=exc, **log_context(ev)
            )

    def succeeded(self, ev: Event) -> None:
        """An attempt of ``ev`` succeeded and it has no on-success record to send."""
        if self._log_attempts:
            self.log_success(ev)
        self.finish(ev, Outcome.SUCCEEDED)

    async def succeed_with_destination(self, ev: Event, result: Any) -> dict[str, Any] | None:
        """Send the on-success record and count the success.

        Returns Lambda's ``Runtime.MarshalError`` instead, having done nothing, when the
        result cannot be encoded: the attempt failed after all.
        """
        sink = ev.cfg.on_success
        assert sink is not None
        try:
            record = destination_record(ev, SUCCESS, response=result)
        except (TypeError, ValueError, RecursionError) as exc:
            return marshal_failure(exc, ev.request_id)
        self.log_success(ev)
        ctx = log_context(ev)
        try:
            sent = await self._deliverer.deliver(sink, record, role="on_success", **ctx)
        except asyncio.CancelledError:
            # the app stopped: the event succeeded all the same and must not run again
            self._deliverer.give_up(sink, record, role="on_success", error=_STOPPED, **ctx)
            self._count_gave_up(ev, "on_success")
            self._given_up.add(ev)
            self.finish(ev, Outcome.SUCCEEDED)
            raise
        if not sent:
            self._count_gave_up(ev, "on_success")
        self.finish(ev, Outcome.SUCCEEDED)
        return None

    # -- failures ---------------------------------------------------------------------

    async def after_failure(self, ev: Event, failed: Failed) -> None:
        """Route a failed attempt: a retry, or (out of retries, too old) failure for good."""
        self._acct.errors += 1
        if self._hooks is not None:
            self._hooks.attempt_failed(ev, failed.error)
        self.log_failure(ev, failed)
        # the error object is made only if a path reads it: a retry that waits keeps the
        # compact form (the scheduler's wait_for_retry), its stack trace was logged
        ev.keep_failure(failed)
        h = ev.cfg
        if ev.attempts > h.max_retries:
            await self.fail(ev, RETRIES_EXHAUSTED, failed.error_message)
            return
        delay = h.retry_delay(ev.attempts)
        due = self._now() + delay
        if due - ev.enqueued_at > h.max_event_age:
            reason = self._age_reason(ev, h.max_event_age, next_retry_in=delay)
            await self.fail(ev, EVENT_AGE_EXCEEDED, reason)
            return
        if ev.defer is not None:
            self._defer(ev, delay)
            return
        try:
            self._scheduler.schedule(due, ev)
        except SchedulerFull as full:
            self._log.error("retry.not_scheduled", reason=str(full), **log_context(ev))
            await self.fail(ev, RETRIES_EXHAUSTED, f"{failed.error_message} ({full})")
            return
        self._acct.in_flight -= 1
        self._acct.retries += 1
        if self._hooks is not None:
            self._hooks.retry_scheduled(ev, delay)
        if self._info:
            self._log.info("retry.scheduled", delay_s=delay, retry=ev.attempts, **log_context(ev))

    async def too_old(self, ev: Event) -> None:
        """``ev`` is past its ``max_event_age`` before an attempt (or was rejected)."""
        if ev.enqueued_at == -math.inf and ev.error is not None:  # from App.reject()
            await self.fail(ev, RETRIES_EXHAUSTED, ev.error["errorMessage"])
        else:
            await self.fail(ev, EVENT_AGE_EXCEEDED, self._age_reason(ev, ev.cfg.max_event_age))

    def _defer(self, ev: Event, delay: float) -> None:
        """Hand a retry back to the shared queue the event came from: it keeps the delay."""
        defer, ev.defer, ev.settle = ev.defer, None, None
        assert defer is not None
        try:
            defer(ev.request_id, delay)
        except Exception as exc:  # a queue's bug: it redelivers after its own timeout
            self._log.error("queue.defer_failed", exc_info=exc, **log_context(ev))
        self._acct.in_flight -= 1
        self._acct.retries += 1
        self._acct.requeued += 1
        if self._hooks is not None:
            self._hooks.retry_scheduled(ev, delay)
        if self._info:
            self._log.info(
                "retry.scheduled",
                delay_s=delay,
                retry=ev.attempts,
                queue="shared",
                **log_context(ev),
            )
        if self._acct.waiters:
            self._acct.wake_idle()

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

    async def fail(self, ev: Event, condition: str, reason: str) -> None:
        """The event failed for good: dead letter and/or on-failure record, then count it.

        When none of its failure records could be sent and a source holds the event, it is
        given back to the source (``Outcome.UNDELIVERED``) to be tried again later. Once one
        of them was sent, the event has failed for good, even if the app stops meanwhile:
        a send still owed then is given up, counted and logged with its body.
        """
        h = ev.cfg
        ctx = log_context(ev)
        expired = condition == EVENT_AGE_EXCEEDED
        if expired:
            self._log.warning("event.expired", reason=reason, **ctx)
        sends: list[tuple[str, Sink, Message]] = []
        if h.dead_letter is not None:
            sends.append(("dead_letter", h.dead_letter, dead_letter_message(ev, reason)))
        if h.on_failure is not None:
            record = destination_record(
                ev, condition, response=ev.error, function_error=ev.error is not None
            )
            sends.append(("on_failure", h.on_failure, record))
        if not sends:
            # no DLQ and no destination: Lambda drops the event; eventflow at least logs it all
            self._log.error(
                "event.failed", condition=condition, reason=reason, payload=ev.payload, **ctx
            )
            self._finish_failed(ev, expired)
            return
        sent: dict[str, bool] = {}  # role -> sent (True) or given up (False)
        try:
            if len(sends) == 1:
                await self._send_failure(ev, *sends[0], sent, condition)
            else:
                # Lambda fires both at once when both are set (spec §3.3); so do we
                async with anyio.create_task_group() as tg:
                    for role, sink, message in sends:
                        tg.start_soon(self._send_failure, ev, role, sink, message, sent, condition)
        except asyncio.CancelledError:
            if not any(sent.values()):
                raise  # nothing reached anyone: the caller spills or releases the event
            for role, sink, message in sends:
                if role not in sent:
                    self._deliverer.give_up(sink, message, role=role, error=_STOPPED, **ctx)
                    self._count_gave_up(ev, role)
            self._given_up.add(ev)
            self._finish_failed(ev, expired)
            raise
        if ev.settle is not None and not any(sent.values()):
            self._give_back(ev, "none of its failure records could be sent")
            return
        self._finish_failed(ev, expired)

    async def _send_failure(
        self,
        ev: Event,
        role: str,
        sink: Sink,
        message: Message,
        sent: dict[str, bool],
        condition: str,
    ) -> None:
        ctx = log_context(ev)
        ok = await self._deliverer.deliver(sink, message, role=role, **ctx)
        sent[role] = ok
        if not ok:
            self._count_gave_up(ev, role)
        elif role == "dead_letter":
            self._acct.dead_lettered += 1
            self._log.warning("event.dead_lettered", condition=condition, **ctx)

    def _count_gave_up(self, ev: Event, role: str) -> None:
        if role == "dead_letter":
            self._acct.dead_letter_errors += 1
        else:
            self._acct.destination_errors += 1
        if self._hooks is not None:
            self._hooks.delivery_failed(ev, role)

    def _finish_failed(self, ev: Event, expired: bool) -> None:
        if expired:
            self._acct.expired += 1
        self.finish(ev, Outcome.FAILED)

    def _give_back(self, ev: Event, why: str) -> None:
        """Hand an unfinished event back to the source that holds it, to try it later."""
        self._log.error("event.given_back", reason=why, **log_context(ev))
        self._acct.returned += 1
        self.finish(ev, Outcome.UNDELIVERED)

    # -- the engine's own failures ---------------------------------------------------

    def internal_error(self, ev: Event, bug: Exception) -> None:
        """eventflow itself failed finishing ``ev``: keep the worker, account and settle it."""
        self._log.critical(
            "worker.internal_error", payload=ev.payload, exc_info=bug, **log_context(ev)
        )
        self._acct.internal_errors += 1
        # a source keeps it, to try it later
        self.finish(ev, Outcome.UNDELIVERED)

    def cancelled(self, ev: Event) -> None:
        """``ev``'s worker is cancelled (shutdown): spill it, unless it has its outcome."""
        if ev in self._given_up:
            self._given_up.discard(ev)
        else:
            self._interrupted.append(ev)  # still in flight; spilled at shutdown

    async def release(self, ev: Event, spill: Sink | None) -> None:
        """The app stops before ``ev`` finished: give it back to the source that holds it,
        or send it to the ``spill`` sink (or log it with its payload); ``RELEASED``."""
        ctx = log_context(ev)
        if ev.settle is not None:
            # the source still holds it (an SQS message, say): give it back, don't spill
            self.finish(ev, Outcome.RELEASED)
            self._log.warning("event.released", **ctx)
            return
        sent = False
        if spill is not None:
            sent = await self._deliverer.deliver(spill, spill_message(ev), role="spill", **ctx)
            if sent:
                self._log.warning("event.spilled", **ctx)
        if not sent:
            self._log.error(
                "event.undelivered",
                reason="the app stopped before this event finished",
                payload=ev.payload,
                **ctx,
            )
        self.finish(ev, Outcome.RELEASED)

    def take_interrupted(self) -> list[Event]:
        """The events whose worker was cancelled before their outcome, for the spill."""
        events, self._interrupted = self._interrupted, []
        return events
