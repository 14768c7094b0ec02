"""Benchmark: eventflow's TimerWheel against asyncio's call_later and a heapq with lazy deletion.

Usage::

    python benchmarks/timer_wheel.py [--timers 1000000] [--repeat 3] [--seed 20240611]

For N timers with delays drawn uniformly over 0-180 s (fixed seed), each contender schedules
all N, cancels every other one, then fires the rest in virtual time:

* TimerWheel: exactly as the async driver does, ``advance(next_deadline())`` until empty. The
  wheel is first advanced to the virtual "now", as a running driver keeps it.
* ``loop.call_later`` on a fresh, not running, event loop: its clock is then replaced by a
  virtual one far beyond 180 s and ``run_until_complete(asyncio.sleep(0))`` lets ``_run_once``
  pop every due timer and run its callback (the callbacks are counted).
* heapq of (deadline, seq, item) with cancelled seqs in a set, like trio's deadlines: popped
  until nothing is due.

Each phase is timed with ``time.perf_counter``, the collector collected before it and disabled
during it, for every contender alike. The contenders take turns for ``--repeat`` rounds of
schedule and cancel, keeping the best of each, which filters out a noisy neighbour; firing, the
slowest phase, is timed once, on the last round's timers. A separate pass measures with
tracemalloc the bytes that scheduling N timers allocates (items are pre-built ints shared by all
contenders, so they are not counted), divided by N. Mass cancellation, last: all N timers
scheduled, then every one cancelled (best of ``--repeat`` rounds, per cancelled timer); for
``call_later`` the loop's next iteration, which drops the cancelled handles, is timed with
it, as the wheel's own clean-up is. The script always exits 0: it is a report, printing
PASS or FAIL for each target.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import math
import platform
import random
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    from eventflow._wheel import TimerWheel
except ImportError:  # a checkout where the package is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from eventflow._wheel import TimerWheel

# Virtual "now" of the wheel and the heap; asyncio's loop keeps its own clock until firing.
BASE = 1000.0
MAX_DELAY = 180.0

SCHEDULE_TARGET = 2.0  # at least this many times call_later's scheduling rate
FIRE_TARGET = 5.0  # at least this many times call_later's firing speed
BYTES_TARGET = 0.6  # at most this fraction of call_later's bytes per timer
MASS_CANCEL_TARGET = 1.0  # cancelling every timer at least as fast as call_later's handles


@dataclass
class Result:
    """Best phase durations over the rounds, and the bytes per timer of one contender."""

    name: str
    schedule: float = math.inf
    cancel: float = math.inf
    fire: float = math.inf
    bytes_per_timer: float = 0.0
    mass_cancel: float = math.inf

    def add(self, watch: Stopwatch) -> None:
        """Keep the best of each phase the stopwatch timed (fire is timed on the last round)."""
        self.schedule = min(self.schedule, watch.laps[0])
        self.cancel = min(self.cancel, watch.laps[1])
        if len(watch.laps) > 2:
            self.fire = min(self.fire, watch.laps[2])


class Stopwatch:
    """Times phases with the collector collected first and disabled throughout."""

    def __init__(self) -> None:
        self.laps: list[float] = []

    @contextmanager
    def phase(self) -> Iterator[None]:
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.laps.append(time.perf_counter() - start)
            gc.enable()


def traced_bytes(build: Callable[[], None]) -> int:
    """Return the bytes that build() allocated and still holds, as tracemalloc counts them."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        build()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


# Contenders that fired the wrong items; their figures, and the verdict, are then void.
INVALID: list[str] = []


def expect_fired(name: str, fired: list[int], items: list[int]) -> None:
    """Every other item, starting with the second, must have fired, each exactly once."""
    if sorted(fired) != items[1::2]:
        print(f"INVALID: {name} fired {len(fired)} items, not every other one exactly once")
        INVALID.append(name)


# -- eventflow's TimerWheel ------------------------------------------------------------------


def time_wheel(delays: list[float], items: list[int], fire: bool) -> Stopwatch:
    watch = Stopwatch()
    wheel: TimerWheel[int] = TimerWheel()
    wheel.advance(BASE)  # a running driver keeps the wheel's cursor at "now"
    schedule = wheel.schedule
    with watch.phase():
        handles = [schedule(BASE + delay, item) for delay, item in zip(delays, items, strict=True)]
    cancel = wheel.cancel
    with watch.phase():
        for handle in handles[::2]:
            cancel(handle)
    if not fire:
        return watch
    fired: list[int] = []
    next_deadline = wheel.next_deadline
    advance = wheel.advance
    with watch.phase():
        # What the async driver does: sleep until the next deadline, then advance to it.
        while (deadline := next_deadline()) is not None:
            fired += advance(deadline)
    expect_fired("TimerWheel", fired, items)
    return watch


def wheel_bytes(delays: list[float], items: list[int]) -> int:
    n = len(delays)
    wheel: TimerWheel[int] = TimerWheel()
    wheel.advance(BASE)
    # The wheel and a pre-sized handle list exist before tracing: only timers are counted.
    handles: list[object] = [None] * n
    schedule = wheel.schedule

    def build() -> None:
        for index in range(n):
            handles[index] = schedule(BASE + delays[index], items[index])

    return traced_bytes(build)


# -- asyncio's loop.call_later ---------------------------------------------------------------


def time_call_later(delays: list[float], items: list[int], fire: bool) -> Stopwatch:
    watch = Stopwatch()
    loop = asyncio.new_event_loop()
    try:
        fired: list[int] = []
        callback = fired.append
        call_later = loop.call_later
        with watch.phase():
            handles = [
                call_later(delay, callback, item) for delay, item in zip(delays, items, strict=True)
            ]
        with watch.phase():
            for handle in handles[::2]:
                handle.cancel()
        if not fire:
            return watch
        # A virtual clock far beyond every deadline: _run_once pops every timer and runs it.
        virtual_now = loop.time() + 10 * MAX_DELAY
        loop.time = lambda: virtual_now  # type: ignore[method-assign]
        expected = len(items) // 2
        with watch.phase():
            loop.run_until_complete(asyncio.sleep(0))
            while len(fired) < expected:
                loop.run_until_complete(asyncio.sleep(0))
        expect_fired("loop.call_later", fired, items)
    finally:
        loop.close()
    return watch


def call_later_bytes(delays: list[float], items: list[int]) -> int:
    n = len(delays)
    loop = asyncio.new_event_loop()
    try:
        handles: list[object] = [None] * n
        fired: list[object] = []
        callback = fired.append
        call_later = loop.call_later

        def build() -> None:
            for index in range(n):
                handles[index] = call_later(delays[index], callback, items[index])

        return traced_bytes(build)
    finally:
        loop.close()


def mass_cancel_wheel(delays: list[float], items: list[int]) -> float:
    wheel: TimerWheel[int] = TimerWheel()
    wheel.advance(BASE)
    handles = [wheel.schedule(BASE + d, item) for d, item in zip(delays, items, strict=True)]
    cancel = wheel.cancel
    watch = Stopwatch()
    with watch.phase():
        for handle in handles:
            cancel(handle)
    assert len(wheel) == 0 and wheel.advance(BASE + 10 * MAX_DELAY) == []
    return watch.laps[0]


def mass_cancel_call_later(delays: list[float], items: list[int]) -> float:
    loop = asyncio.new_event_loop()
    try:
        fired: list[int] = []
        handles = [
            loop.call_later(d, fired.append, item) for d, item in zip(delays, items, strict=True)
        ]
        watch = Stopwatch()
        with watch.phase():
            for handle in handles:
                handle.cancel()
            # the loop's next iteration drops the cancelled handles from its heap
            loop.run_until_complete(asyncio.sleep(0))
        assert not fired
    finally:
        loop.close()
    return watch.laps[0]


# -- heapq with lazy deletion (like trio's deadlines) ----------------------------------------


class HeapTimers:
    """A binary heap of (deadline, seq, item); cancel() adds seq to a set, popping skips it."""

    __slots__ = ("_cancelled", "_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int]] = []
        self._cancelled: set[int] = set()
        self._seq = 0

    def schedule(self, deadline: float, item: int) -> int:
        seq = self._seq = self._seq + 1
        heapq.heappush(self._heap, (deadline, seq, item))
        return seq

    def cancel(self, seq: int) -> None:
        self._cancelled.add(seq)

    def advance(self, now: float) -> list[int]:
        heap = self._heap
        cancelled = self._cancelled
        pop = heapq.heappop
        fired: list[int] = []
        while heap and heap[0][0] <= now:
            _, seq, item = pop(heap)
            if seq in cancelled:
                cancelled.discard(seq)
            else:
                fired.append(item)
        return fired


def time_heap(delays: list[float], items: list[int], fire: bool) -> Stopwatch:
    watch = Stopwatch()
    timers = HeapTimers()
    schedule = timers.schedule
    with watch.phase():
        handles = [schedule(BASE + delay, item) for delay, item in zip(delays, items, strict=True)]
    cancel = timers.cancel
    with watch.phase():
        for handle in handles[::2]:
            cancel(handle)
    if not fire:
        return watch
    with watch.phase():
        fired = timers.advance(BASE + 10 * MAX_DELAY)
    expect_fired("heapq + lazy delete", fired, items)
    return watch


def heap_bytes(delays: list[float], items: list[int]) -> int:
    n = len(delays)
    timers = HeapTimers()
    handles: list[object] = [None] * n
    schedule = timers.schedule

    def build() -> None:
        for index in range(n):
            handles[index] = schedule(BASE + delays[index], items[index])

    return traced_bytes(build)


# -- report ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="TimerWheel vs call_later vs heapq.")
    parser.add_argument("--timers", type=int, default=1_000_000, help="timers per contender")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of schedule and cancel; the best is kept"
    )
    parser.add_argument("--seed", type=int, default=20240611, help="seed of the delays")
    args = parser.parse_args(argv)
    n = args.timers
    if n < 2 or args.repeat < 1:
        parser.error("--timers must be at least 2 and --repeat at least 1")
    rng = random.Random(args.seed)
    delays = [rng.uniform(0.0, MAX_DELAY) for _ in range(n)]
    items = list(range(n))  # pre-built and shared, so that no contender pays for them

    print(
        f"{n:,} timers, delays uniform over 0-{MAX_DELAY:g} s (seed {args.seed}), every other one"
        f" cancelled; schedule and cancel best of {args.repeat} rounds, fire timed once;"
        f" Python {platform.python_version()} on {platform.machine()}"
    )
    wheel = Result("TimerWheel")
    call_later = Result("loop.call_later")
    heap = Result("heapq + lazy delete")
    contenders = [
        (wheel, time_wheel, wheel_bytes),
        (call_later, time_call_later, call_later_bytes),
        (heap, time_heap, heap_bytes),
    ]
    for round_ in range(1, args.repeat + 1):
        for result, timed, _measure in contenders:
            result.add(timed(delays, items, round_ == args.repeat))
    for result, _timed, measure in contenders:
        result.bytes_per_timer = measure(delays, items) / n
    for _ in range(args.repeat):
        wheel.mass_cancel = min(wheel.mass_cancel, mass_cancel_wheel(delays, items))
        call_later.mass_cancel = min(call_later.mass_cancel, mass_cancel_call_later(delays, items))

    cancelled = (n + 1) // 2
    fired = n // 2
    print()
    header = f"{'contender':<22}{'schedule µs':>13}{'cancel µs':>12}{'fire µs':>10}{'bytes':>9}"
    print(header)
    print("-" * len(header))
    for r in (wheel, call_later, heap):
        print(
            f"{r.name:<22}{r.schedule / n * 1e6:>13.3f}{r.cancel / cancelled * 1e6:>12.3f}"
            f"{r.fire / fired * 1e6:>10.3f}{r.bytes_per_timer:>9.1f}"
        )
    print("(µs per timer scheduled, cancelled, fired; bytes per scheduled timer)")
    print(
        f"cancelling all {n:,}: TimerWheel {wheel.mass_cancel / n * 1e6:.3f} µs, "
        f"loop.call_later {call_later.mass_cancel / n * 1e6:.3f} µs per timer"
    )
    print()

    schedule_ratio = call_later.schedule / wheel.schedule
    fire_ratio = call_later.fire / wheel.fire
    bytes_ratio = wheel.bytes_per_timer / call_later.bytes_per_timer
    mass_cancel_ratio = call_later.mass_cancel / wheel.mass_cancel
    checks = [
        ("schedule rate vs call_later", schedule_ratio, ">=", SCHEDULE_TARGET),
        ("firing speed vs call_later", fire_ratio, ">=", FIRE_TARGET),
        ("bytes per timer vs call_later", bytes_ratio, "<=", BYTES_TARGET),
        ("cancelling all, speed vs call_later", mass_cancel_ratio, ">=", MASS_CANCEL_TARGET),
    ]
    met = 0
    for label, ratio, op, target in checks:
        ok = ratio >= target if op == ">=" else ratio <= target
        met += ok
        print(f"{label}: {ratio:.2f}x (target {op} {target:g}x)  {'PASS' if ok else 'FAIL'}")
    print(
        "for reference, TimerWheel vs heapq + lazy delete:"
        f" schedule rate {heap.schedule / wheel.schedule:.2f}x,"
        f" cancel rate {heap.cancel / wheel.cancel:.2f}x,"
        f" firing speed {heap.fire / wheel.fire:.2f}x,"
        f" bytes per timer {wheel.bytes_per_timer / heap.bytes_per_timer:.2f}x"
    )
    if INVALID:
        print(f"verdict: FAIL (invalid run: {', '.join(INVALID)} fired the wrong items)")
    else:
        verdict = "PASS" if met == len(checks) else "FAIL"
        print(f"verdict: {verdict} ({met}/{len(checks)} targets met)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
