"""What follows an attempt: success records, retries, dead letters, failure records."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio

from ._contracts import Message, Outcome, Sink
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
    marshal_failure,
)

__all__ = ("Outcomes",)

_STOPPED = "the app stopped before it was sent, and the event has its outcome already"


class Outcomes(EngineBase):
    """Terminal outcomes and retry scheduling."""

    def _log_success(self, ev: Event) -> None:
        if self._log_attempts:
            self._log.info("attempt.succeeded", **self._log_context(ev))

    def _log_failure(self, ev: Event, error: dict[str, Any], exc: BaseException | None) -> None:
        self._log.error(
            "attempt.failed",
            **self._log_context(ev),
            error_type=error.get("errorType"),
            error_message=error.get("errorMessage"),
            exc_info=exc if exc is not None else False,
        )

    async def _succeed_with_destination(self, ev: Event, result: Any) -> dict[str, Any] | None:
        """Send the on-success record and count the success.

        Returns Lambda's ``Runtime.MarshalError`` instead, having done nothing, when the
        result cannot be encoded: the attempt failed after all.
        """
        sink = ev.cfg.on_success
        assert sink is not None and self._deliverer is not None
        try:
            record = destination_record(ev, SUCCESS, response=result)
        except (TypeError, ValueError, RecursionError) as exc:
            return marshal_failure(exc, ev.request_id)
        self._log_success(ev)
        ctx = self._log_context(ev)
        try:
            sent = await self._deliverer.deliver(sink, record, role="on_success", **ctx)
        except asyncio.CancelledError:
            # the app stopped: the event succeeded all the same and must not run again
            self._deliverer.give_up(sink, record, role="on_success", error=_STOPPED, **ctx)
            self._count_gave_up(ev, "on_success")
            self._given_up.add(ev)
            self._finish_succeeded(ev)
            raise
        if not sent:
            self._count_gave_up(ev, "on_success")
        self._finish_succeeded(ev)
        return None

    def _finish(self, ev: Event, outcome: Outcome) -> None:
        """``ev`` leaves the engine with its terminal ``outcome``: count it (keeping
        ``received == succeeded + failed + undelivered + ...``), settle it with its source,
        tell the middleware, and wake ``drain()`` if the app is idle now."""
        self._acct.finish(outcome)
        if self._hooks is not None:
            self._hooks.finished(ev, outcome)
        if ev.settle is not None:
            self._settle(ev, outcome)

    def _finish_succeeded(self, ev: Event) -> None:
        self._finish(ev, Outcome.SUCCEEDED)

    async def _after_failure(
        self, ev: Event, error: dict[str, Any], exc: BaseException | None
    ) -> None:
        self._acct.errors += 1
        ev.error = error
        if self._hooks is not None:
            self._hooks.attempt_failed(ev, error)
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
        self._acct.in_flight -= 1
        self._acct.retries += 1
        if self._hooks is not None:
            self._hooks.retry_scheduled(ev, delay)
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
                **self._log_context(ev),
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

    async def _fail(self, ev: Event, condition: str, reason: str) -> None:
        """The event failed for good: dead letter and/or on-failure record, then count it.

        When none of its failure records could be sent and a source holds the event, it is
        given back to the source (``Outcome.UNDELIVERED``) to be tried again later. Once one
        of them was sent, the event has failed for good, even if the app stops meanwhile:
        a send still owed then is given up, counted and logged with its body.
        """
        h = ev.cfg
        ctx = self._log_context(ev)
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
            assert self._deliverer is not None
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
        assert self._deliverer is not None
        ctx = self._log_context(ev)
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
        self._finish(ev, Outcome.FAILED)

    def _give_back(self, ev: Event, why: str) -> None:
        """Hand an unfinished event back to the source that holds it, to try it later."""
        self._log.error("event.given_back", reason=why, **self._log_context(ev))
        self._acct.returned += 1
        self._finish(ev, Outcome.UNDELIVERED)

    def _internal_error(self, ev: Event, bug: Exception) -> None:
        """eventflow itself failed finishing ``ev``: keep the worker, account and settle it."""
        self._log.critical(
            "worker.internal_error",
            request_id=ev.request_id,
            handler=ev.rt.name,
            attempt=ev.attempts,
            payload=ev.payload,
            exc_info=bug,
        )
        self._acct.internal_errors += 1
        # a source keeps it, to try it later
        self._finish(ev, Outcome.UNDELIVERED)

    def _settle(self, ev: Event, outcome: Outcome) -> None:
        settle, ev.settle = ev.settle, None
        assert settle is not None
        try:
            settle(ev.request_id, outcome)
        except Exception as exc:  # a source's bug must not take the worker down
            self._log.error(
                "source.settle_failed", outcome=outcome.value, exc_info=exc, **self._log_context(ev)
            )
