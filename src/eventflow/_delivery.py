"""Sending one message to a sink, with retries and backoff, never losing it silently.

Lambda drops an event whose dead-letter send fails once; eventflow retries a failing
sink with jittered exponential backoff until ``sink_timeout`` has passed, then counts
the failure and logs the whole message at error level, so it can still be recovered.
"""

from __future__ import annotations

import random
from typing import Any

from ._clock import Clock, sleep_until
from .sinks import Message, Sink, SinkRejected

__all__ = ("Deliverer",)


class Deliverer:
    """Sends messages to sinks for one app, with retries bounded in time."""

    __slots__ = ("_base_delay", "_clock", "_log", "_max_delay", "_timeout")

    def __init__(
        self,
        clock: Clock,
        log: Any,
        *,
        timeout: float,
        base_delay: float = 0.1,
        max_delay: float = 2.0,
    ) -> None:
        self._clock = clock
        self._log = log
        self._timeout = timeout
        self._base_delay = base_delay
        self._max_delay = max_delay

    async def deliver(self, sink: Sink, message: Message, *, role: str, **context: Any) -> bool:
        """Send ``message`` to ``sink``; True once sent, False once given up (and logged).

        Args:
            sink: The target.
            message: What to send.
            role: ``dead_letter``, ``on_success``, ``on_failure`` or ``spill``, for the logs.
            context: Log context (``request_id``, ``handler``, ``attempt``).
        """
        clock = self._clock
        give_up_at = clock.now() + self._timeout
        delay = self._base_delay
        tries = 0
        while True:
            tries += 1
            try:
                await sink.send(message)
            except Exception as exc:
                now = clock.now()
                if now >= give_up_at or isinstance(exc, SinkRejected):
                    self.give_up(
                        sink,
                        message,
                        role=role,
                        error=f"{type(exc).__name__}: {exc}",
                        tries=tries,
                        **context,
                    )
                    return False
                # the last try lands on the deadline, so giving up takes sink_timeout, not less
                wait = min(delay * (0.5 + random.random()), give_up_at - now)
                self._log.warning(
                    "sink.send_failed",
                    role=role,
                    sink=repr(sink),
                    tries=tries,
                    retry_in_s=round(wait, 3),
                    error=f"{type(exc).__name__}: {exc}",
                    **context,
                )
                await sleep_until(clock, now + wait)
                delay = min(delay * 2, self._max_delay)
            else:
                return True

    def give_up(
        self, sink: Sink, message: Message, *, role: str, error: str, tries: int = 0, **context: Any
    ) -> None:
        """Log a message that will not be sent, whole, at error level, so it can be recovered."""
        self._log.error(
            "sink.gave_up",
            role=role,
            sink=repr(sink),
            tries=tries,
            error=error,
            body=message.body,
            attributes=dict(message.attributes),
            **context,
        )
