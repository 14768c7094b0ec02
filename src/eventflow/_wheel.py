"""The retry scheduler's timer wheel: a pure, synchronous, simple hashed wheel (Netty-style).

A deadline maps to the absolute integer tick ``int(deadline * (1 / tick))`` and is appended to
the bucket ``tick & (slots - 1)``, a plain list, so ``schedule()`` and ``cancel()`` are O(1) where
``asyncio``'s ``call_later`` pays a heap push, a ``TimerHandle`` and a context copy per timer.
Ticks are truncated, not rounded up, exactly as ``now``'s tick is, so they are monotone in time:
a timer in a tick before ``now``'s is always due, one in a later tick never is, and only
``now``'s own tick mixes both. Timers further away than one rotation (``slots`` ticks) wait in
their bucket for their round. ``advance(now)`` walks the buckets from the cursor tick to
``now``'s, never more than one full rotation, so a virtual clock jumping hours ahead stays
O(slots + n); every decision to fire compares the exact float deadline, never only the bucket,
so rounding can never fire a timer early. The timers of the cursor's own tick sit in a small
``ready`` list sorted by deadline, which keeps the driver's loop (sleep until
``next_deadline()``, then ``advance()`` to it) O(1) per timer although it releases timers one
exact deadline at a time. Cancellation is lazy: the entry is marked, and buckets drop it when
visited. Dead entries never take more memory than live timers once did: a ``schedule()``
that finds them outnumbering the live ones plus the buckets sweeps them first (amortised O(1)),
and a ``cancel()`` of the last live timer drops them all without looking at them, so that
cancelling a million timers does not walk the buckets again and again. A timer is one
three-slot object. The module never reads a clock: the caller passes ``now``, so the wheel
runs the same on real or virtual time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import attrgetter
from typing import Final, Generic, TypeVar

from ._errors import ConfigurationError, SchedulerFull

__all__ = ("Timer", "TimerWheel", "WheelStatistics")

T = TypeVar("T")

_INF: Final = math.inf
# Marks the cached earliest deadline as unknown; -inf also makes schedule()'s "lower it" test fail.
_UNKNOWN: Final = -math.inf
_by_deadline = attrgetter("deadline")
# Building a Timer without running a Python __init__ frame makes that step a third cheaper.
_new_object = object.__new__


class Timer(Generic[T]):
    """Handle of one scheduled entry; returned by ``schedule()``, accepted by ``cancel()``.

    Attributes:
        deadline: The exact time, on the caller's clock, at which the item becomes due.
        item: The scheduled item.
    """

    # Three slots only: memory per timer matters, as a wheel may hold a million of them.
    __slots__ = ("_wheel", "deadline", "item")

    deadline: float
    item: T
    # The owning wheel while pending; None once fired, cancelled or drained.
    _wheel: TimerWheel[T] | None

    def __repr__(self) -> str:
        state = "pending" if self._wheel is not None else "done"
        return f"<Timer deadline={self.deadline!r} {state} item={self.item!r}>"


@dataclass(frozen=True, slots=True)
class WheelStatistics:
    """A snapshot of a wheel's configuration and counters.

    Attributes:
        pending: Live timers (scheduled, not yet fired, cancelled or drained).
        capacity: The most live timers the wheel accepts.
        tick: Seconds per bucket.
        slots: Buckets per rotation.
        scheduled_total: Timers ever scheduled (pending + fired + cancelled + drained).
        fired_total: Timers returned by ``advance()``.
        cancelled_total: Timers removed by a successful ``cancel()``.
    """

    pending: int
    capacity: int
    tick: float
    slots: int
    scheduled_total: int
    fired_total: int
    cancelled_total: int


class TimerWheel(Generic[T]):
    """A hashed timer wheel with O(1) schedule and cancel and exact, never-early firing.

    Invariants: the ``ready`` list holds the entries whose tick is at most the cursor (its
    own tick, plus deadlines already past when scheduled); bucket entries have a tick above
    the cursor. Ticks are monotone in the deadline, so an entry in a tick before ``now``'s
    tick is always due and one in a later tick never is; only ``now``'s own tick needs the
    exact comparison, which is nevertheless made everywhere.
    """

    __slots__ = (
        "_buckets",
        "_cancelled",
        "_capacity",
        "_cursor",
        "_drained",
        "_earliest",
        "_fired",
        "_live",
        "_mask",
        "_per_tick",
        "_ready",
        "_ready_sorted",
        "_slots",
        "_tick",
        "_unswept",
    )

    def __init__(
        self, *, tick: float = 0.01, slots: int = 32768, capacity: int = 1_000_000
    ) -> None:
        """Create an empty wheel.

        Args:
            tick: Seconds per bucket; a finite number greater than 0. It sets the granularity
                of the buckets only: firing always compares the exact deadline.
            slots: Buckets per rotation; a power of two (the bucket is found with a mask).
            capacity: The most live timers the wheel accepts; an integer of at least 1.

        Raises:
            ConfigurationError: An option is outside its accepted range.
        """
        if (
            isinstance(tick, bool)
            or not isinstance(tick, int | float)
            or not (0 < tick < _INF)
            or not math.isfinite(1.0 / tick)
        ):
            raise ConfigurationError(
                f"TimerWheel tick={tick!r} is not accepted: it must be a finite number of "
                "seconds greater than 0, such as 0.01."
            )
        if (
            isinstance(slots, bool)
            or not isinstance(slots, int)
            or slots < 1
            or slots & (slots - 1)
        ):
            raise ConfigurationError(
                f"TimerWheel slots={slots!r} is not accepted: it must be a power of two "
                "(1, 2, 4, ..., such as 32768)."
            )
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigurationError(
                f"TimerWheel capacity={capacity!r} is not accepted: it must be an integer of "
                "at least 1, such as 1000000."
            )
        self._tick = float(tick)
        # Multiplying by the inverse is cheaper than dividing, on every schedule and advance.
        self._per_tick = 1.0 / tick
        self._slots = slots
        self._mask = slots - 1
        self._capacity = capacity
        self._buckets: list[list[Timer[T]]] = [[] for _ in range(slots)]
        self._ready: list[Timer[T]] = []
        # ready is sorted by deadline, latest first, so the earliest pops off the end in O(1).
        self._ready_sorted = True
        self._cursor = 0
        self._earliest: float = _INF
        self._live = 0
        self._fired = 0
        self._cancelled = 0
        self._drained = 0
        self._unswept = 0

    def __len__(self) -> int:
        """Return the number of live timers (scheduled, not fired, cancelled or drained)."""
        return self._live

    def __repr__(self) -> str:
        return (
            f"<TimerWheel pending={self._live} capacity={self._capacity} "
            f"tick={self._tick!r} slots={self._slots}>"
        )

    def schedule(self, deadline: float, item: T) -> Timer[T]:
        """Schedule ``item`` to become due at ``deadline``, in O(1).

        Args:
            deadline: When the item is due, on the caller's clock. A deadline in the past is
                allowed: the item fires at the next ``advance()``.
            item: What ``advance()`` returns once the deadline has passed.

        Returns:
            The handle to pass to ``cancel()``.

        Raises:
            SchedulerFull: The wheel already holds ``capacity`` live timers.
            ValueError: ``deadline`` is NaN or infinite.
        """
        if self._unswept > self._live + self._slots:
            # Cancelled entries could outnumber the live ones: drop them before adding more.
            self._sweep()
        if self._live >= self._capacity:
            raise SchedulerFull(
                f"The retry timer wheel holds {self._live} pending timers, its capacity; "
                "wait for some to fire, or create the TimerWheel with a larger capacity=."
            )
        try:
            tick = int(deadline * self._per_tick)
        except (ValueError, OverflowError):
            raise ValueError(
                f"A timer deadline must be a finite number of seconds, not {deadline!r}."
            ) from None
        timer: Timer[T] = _new_object(Timer)
        timer.deadline = deadline
        timer.item = item
        timer._wheel = self
        if tick > self._cursor:
            self._buckets[tick & self._mask].append(timer)
        else:
            # At or before the cursor (a past deadline, or the cursor's own tick, whose bucket
            # was already split): the ready list, re-sorted lazily.
            self._ready.append(timer)
            self._ready_sorted = False
        self._live += 1
        # An unknown (-inf) or earlier cached minimum is left alone by this test.
        if deadline < self._earliest:
            self._earliest = deadline
        return timer

    def cancel(self, timer: Timer[T]) -> bool:
        """Cancel a pending timer in O(1); its bucket drops the entry later (or at once with
        every other, when it was the last live timer).

        Args:
            timer: A handle returned by this wheel's ``schedule()``.

        Returns:
            True if the timer was pending; False if it had already fired, been cancelled or
            drained, or belongs to another wheel.
        """
        if timer._wheel is not self:
            return False
        timer._wheel = None
        live = self._live = self._live - 1
        self._cancelled += 1
        unswept = self._unswept = self._unswept + 1
        if not live:
            self._earliest = _INF
            if unswept > self._slots:
                # Every entry is dead: replacing the buckets is cheaper than sweeping them.
                self._clear()
        elif timer.deadline == self._earliest:
            # It may have been the earliest: next_deadline() recomputes it, so it stays exact.
            self._earliest = _UNKNOWN
        return True

    def advance(self, now: float) -> list[T]:
        """Remove and return every live item whose deadline is at or before ``now``.

        An item whose deadline is after ``now`` is never returned. Items of earlier ticks come
        first; within one tick, or when ``now`` jumps more than one rotation ahead (every
        bucket is then visited once), the order is unspecified.

        Args:
            now: The current time on the caller's clock.

        Returns:
            The due items, possibly none.

        Raises:
            ValueError: ``now`` is NaN or infinite.
        """
        try:
            target = int(now * self._per_tick)
        except (ValueError, OverflowError):
            raise ValueError(f"advance() needs a finite time in seconds, not {now!r}.") from None
        cursor = self._cursor
        fired: list[T] = []
        if now < self._earliest:
            # Nothing is due (or the wheel is empty). Every live tick is >= target, so the
            # cursor may catch up to just before it for free, saving a long walk later.
            if target - 1 > cursor:
                self._cursor = target - 1
            return fired
        ready = self._ready
        if target <= cursor:
            # Only the ready list can hold due entries: pop its earliest end while due.
            if not self._ready_sorted:
                ready.sort(key=_by_deadline, reverse=True)
                self._ready_sorted = True
            earliest = _UNKNOWN
            while ready:
                timer = ready[-1]
                if timer._wheel is not None:
                    deadline = timer.deadline
                    if deadline > now:
                        # Ready entries precede every bucket entry, so this is the new minimum:
                        # caching it spares the driver's next next_deadline() any work.
                        earliest = deadline
                        break
                    timer._wheel = None
                    fired.append(timer.item)
                ready.pop()
            count = len(fired)
            if count:
                live = self._live = self._live - count
                self._fired += count
                self._earliest = earliest if live else _INF
            elif earliest != _UNKNOWN:
                self._earliest = earliest
            return fired
        append = fired.append
        new_ready: list[Timer[T]] = []
        if ready:
            # Every ready entry has a tick before target, hence is due; compare anyway.
            # Sorted, earliest last, so that reversed() releases them in deadline order.
            if not self._ready_sorted:
                ready.sort(key=_by_deadline, reverse=True)
            for timer in reversed(ready):
                if timer._wheel is not None:
                    if timer.deadline <= now:
                        timer._wheel = None
                        append(timer.item)
                    else:
                        new_ready.append(timer)
        buckets = self._buckets
        mask = self._mask
        if target - cursor <= self._slots:
            # Ticks strictly between the cursor and target are wholly due, except entries
            # of later rotations, which stay for their round.
            for tick in range(cursor + 1, target):
                index = tick & mask
                bucket = buckets[index]
                if bucket:
                    keep: list[Timer[T]] = []
                    for timer in bucket:
                        if timer._wheel is not None:
                            if timer.deadline <= now:
                                timer._wheel = None
                                append(timer.item)
                            else:
                                keep.append(timer)
                    buckets[index] = keep
            partitioned = range(target, target + 1)
        else:
            # now is more than a rotation ahead: visit every bucket exactly once, starting
            # after the cursor so that the first rotation still comes out in tick order.
            partitioned = range(cursor + 1, cursor + self._slots + 1)
        # Fire what is due; what remains of target's own tick moves to the ready list.
        per_tick = self._per_tick
        for tick in partitioned:
            index = tick & mask
            bucket = buckets[index]
            if bucket:
                keep = []
                for timer in bucket:
                    if timer._wheel is not None:
                        deadline = timer.deadline
                        if deadline <= now:
                            timer._wheel = None
                            append(timer.item)
                        elif int(deadline * per_tick) <= target:
                            new_ready.append(timer)
                        else:
                            keep.append(timer)
                buckets[index] = keep
        self._ready = new_ready
        self._ready_sorted = True
        self._cursor = target
        count = len(fired)
        live = self._live
        if count:
            live = self._live = live - count
            self._fired += count
        if new_ready:
            # Sorting now is needed before any use anyway, and it makes the minimum known.
            new_ready.sort(key=_by_deadline, reverse=True)
            self._earliest = new_ready[-1].deadline
        elif count:
            self._earliest = _UNKNOWN if live else _INF
        return fired

    def next_deadline(self) -> float | None:
        """Return the exact earliest deadline among live timers, or None when there are none.

        The value is cached: ``schedule()`` can only lower it, and ``cancel()`` of the earliest
        timer or ``advance()`` that fires makes the next call recompute it, so it is always
        exact, never merely a lower bound.
        """
        earliest = self._earliest
        if earliest == _UNKNOWN:
            earliest = self._find_earliest()
        return None if earliest == _INF else earliest

    def _find_earliest(self) -> float:
        """Recompute, cache and return the earliest live deadline (+inf when empty)."""
        if not self._live:
            self._earliest = _INF
            return _INF
        ready = self._ready
        if ready:
            if not self._ready_sorted:
                ready.sort(key=_by_deadline, reverse=True)
                self._ready_sorted = True
            while ready:
                timer = ready[-1]
                if timer._wheel is not None:
                    earliest = self._earliest = timer.deadline
                    return earliest
                ready.pop()
        buckets = self._buckets
        mask = self._mask
        per_tick = self._per_tick
        cursor = self._cursor
        best = _INF
        for tick in range(cursor + 1, cursor + self._slots + 1):
            bucket = buckets[tick & mask]
            if bucket:
                for timer in bucket:
                    if timer._wheel is not None and timer.deadline < best:
                        best = timer.deadline
                # Later rotations have later deadlines, so the bucket's minimum decides.
                if best != _INF and int(best * per_tick) <= tick:
                    self._earliest = best
                    return best
        # No live timer is due within a rotation of the cursor: best is the overall minimum.
        self._earliest = best
        return best

    def drain(self) -> list[T]:
        """Remove and return every pending item (used at shutdown).

        Returns:
            The pending items, roughly earliest first (exactly so within one rotation's ticks;
            order within a tick is unspecified). The wheel is empty afterwards.
        """
        drained: list[T] = []
        append = drained.append
        ready = self._ready
        if not self._ready_sorted:
            ready.sort(key=_by_deadline, reverse=True)
        for timer in reversed(ready):
            if timer._wheel is not None:
                timer._wheel = None
                append(timer.item)
        buckets = self._buckets
        mask = self._mask
        cursor = self._cursor
        for tick in range(cursor + 1, cursor + self._slots + 1):
            index = tick & mask
            bucket = buckets[index]
            if bucket:
                for timer in bucket:
                    if timer._wheel is not None:
                        timer._wheel = None
                        append(timer.item)
                buckets[index] = []
        self._ready = []
        self._ready_sorted = True
        self._drained += len(drained)
        self._live = 0
        self._earliest = _INF
        self._unswept = 0
        return drained

    def statistics(self) -> WheelStatistics:
        """Return a snapshot of the configuration and the counters."""
        return WheelStatistics(
            pending=self._live,
            capacity=self._capacity,
            tick=self._tick,
            slots=self._slots,
            scheduled_total=self._live + self._fired + self._cancelled + self._drained,
            fired_total=self._fired,
            cancelled_total=self._cancelled,
        )

    def _clear(self) -> None:
        """Drop every entry, all of them cancelled, without visiting them: O(slots)."""
        buckets = self._buckets
        for index, bucket in enumerate(buckets):
            if bucket:
                buckets[index] = []
        self._ready = []
        self._ready_sorted = True
        self._unswept = 0

    def _sweep(self) -> None:
        """Drop every cancelled entry from the buckets and the ready list, in O(slots + n)."""
        buckets = self._buckets
        for index, bucket in enumerate(buckets):
            if bucket:
                keep: list[Timer[T]] = []
                for timer in bucket:
                    if timer._wheel is not None:
                        keep.append(timer)
                buckets[index] = keep
        # Filtering keeps the ready list's order, sorted or not.
        ready: list[Timer[T]] = []
        for timer in self._ready:
            if timer._wheel is not None:
                ready.append(timer)
        self._ready = ready
        self._unswept = 0
