"""Checks of the options ``App(...)`` takes, with messages that say how to fix them."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ._clock import Clock
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._contracts import SharedQueue, Sink, Source

__all__ = ("check_int", "check_parts", "check_seconds", "wall_clock")


def check_int(option: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{option} must be an integer >= {minimum}, got {value!r}.")
    return value


def check_seconds(option: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{option} must be a number of seconds, got {value!r}.")
    if not (value > 0 and math.isfinite(value)):
        raise ConfigurationError(f"{option} must be a positive number of seconds, got {value!r}.")
    return float(value)


def check_parts(
    spill: Sink | None, clock: Clock | None, queue: SharedQueue | None, sources: Iterable[Source]
) -> list[Source]:
    """Check the objects an app is given; returns the sources as a list."""
    if spill is not None and not callable(getattr(spill, "send", None)):
        raise ConfigurationError(
            f"spill must be a sink (an object with 'async def send(self, message)'), got {spill!r}."
        )
    if clock is not None and not isinstance(clock, Clock):
        raise ConfigurationError(
            f"clock must have now() and call_at(when, callback) methods, got {clock!r}."
        )
    if queue is not None and not all(
        callable(getattr(queue, m, None)) for m in ("put", "run", "wait_empty")
    ):
        raise ConfigurationError(
            f"queue must be a shared event queue (with put(), run() and wait_empty(), "
            f"such as eventflow.aws.SQSEventQueue or eventflow.queues.MemoryQueue), "
            f"got {queue!r}; leave it None for the in-memory queue."
        )
    out = list(sources)
    for src in out:
        if not callable(getattr(src, "run", None)):
            raise ConfigurationError(
                f"sources must hold sources, objects with "
                f"'async def run(self, app, *, task_status)', got {src!r}."
            )
    return out


def wall_clock(clock: Clock) -> Callable[[], float]:
    """Wall-clock seconds that move with ``clock``, from now on."""
    offset = time.time() - clock.now()
    now = clock.now
    return lambda: offset + now()
