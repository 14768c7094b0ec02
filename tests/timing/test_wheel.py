"""Tests of the retry scheduler's timer wheel: synchronous, virtual time, no sleeps."""

from __future__ import annotations

import math
import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from eventflow._errors import ConfigurationError, SchedulerFull
from eventflow._wheel import Timer, TimerWheel, WheelStatistics


def just_before(x: float) -> float:
    return math.nextafter(x, -math.inf)


def just_after(x: float) -> float:
    return math.nextafter(x, math.inf)


# -- schedule and advance ---------------------------------------------------------------------


def test_fires_at_the_first_advance_reaching_the_deadline() -> None:
    wheel: TimerWheel[str] = TimerWheel()
    wheel.schedule(5.0, "a")
    assert wheel.advance(1.0) == []
    assert wheel.advance(4.99) == []
    assert wheel.advance(just_before(5.0)) == []
    assert wheel.advance(5.0) == ["a"]
    assert wheel.advance(6.0) == []
    assert len(wheel) == 0


def test_fires_when_advance_overshoots_the_deadline() -> None:
    wheel: TimerWheel[str] = TimerWheel()
    wheel.schedule(5.0, "a")
    assert wheel.advance(7.5) == ["a"]


def test_schedule_returns_a_handle_carrying_deadline_and_item() -> None:
    wheel: TimerWheel[str] = TimerWheel()
    timer = wheel.schedule(2.5, "payload")
    assert isinstance(timer, Timer)
    assert timer.deadline == 2.5
    assert timer.item == "payload"
    assert "pending" in repr(timer)


TRICKY_DEADLINES = [
    60.0,
    0.1 + 0.2,
    180.00000000000003,
    0.3,
    0.01,
    0.07,
    1.0,
    123.45,
    1e-9,
    1_700_000_000.123,
    # tick boundaries computed the way a caller might: now + k * tick
    1000.0 + 7 * 0.01,
    1000.0 + 7 * 0.001,
]


@pytest.mark.parametrize("tick", [0.01, 0.001, 0.1, 1 / 3])
@pytest.mark.parametrize("deadline", TRICKY_DEADLINES)
def test_never_fires_early_at_float_boundaries(tick: float, deadline: float) -> None:
    wheel: TimerWheel[str] = TimerWheel(tick=tick, slots=64)
    wheel.advance(deadline / 2)
    wheel.schedule(deadline, "x")
    assert wheel.next_deadline() == deadline
    assert wheel.advance(just_before(deadline)) == []
    assert wheel.advance(deadline) == ["x"]


@pytest.mark.parametrize("tick", [0.01, 0.001])
@given(
    deadline=st.floats(min_value=0.0, max_value=1e7, allow_nan=False, allow_infinity=False),
    head_start=st.floats(min_value=0.0, max_value=1.0),
)
@settings(max_examples=200, deadline=None)
def test_never_fires_early_nor_late_for_any_deadline(
    tick: float, deadline: float, head_start: float
) -> None:
    wheel: TimerWheel[str] = TimerWheel(tick=tick, slots=256)
    start = deadline * head_start
    wheel.advance(start)
    wheel.schedule(deadline, "x")
    assert wheel.next_deadline() == deadline
    before = just_before(deadline)
    if before >= start:
        assert wheel.advance(before) == []
    assert wheel.advance(deadline) == ["x"]


def test_tick_boundaries_fire_exactly_in_a_stepped_clock() -> None:
    # Deadlines on, just before and just after every tick boundary, with a clock that
    # advances to each of them in turn: every item fires exactly at its own deadline.
    wheel: TimerWheel[float] = TimerWheel(tick=0.01, slots=16)
    deadlines = sorted(
        {f(k * 0.01) for k in range(1, 200) for f in (just_before, float, just_after)}
        | {k / 100 for k in range(1, 200)}
    )
    for deadline in deadlines:
        wheel.schedule(deadline, deadline)
    for now in deadlines:
        assert wheel.advance(now) == [now]
    assert len(wheel) == 0


def test_items_of_earlier_ticks_come_first() -> None:
    wheel: TimerWheel[int] = TimerWheel(tick=0.01)
    order = list(range(1, 50))
    random.Random(7).shuffle(order)
    for k in order:
        wheel.schedule(k / 10, k)
    assert wheel.advance(10.0) == list(range(1, 50))


def test_past_deadline_fires_at_the_next_advance() -> None:
    wheel: TimerWheel[str] = TimerWheel()
    wheel.advance(100.0)
    wheel.schedule(3.0, "late")
    wheel.schedule(-1.0, "negative")
    assert wheel.next_deadline() == -1.0
    assert sorted(wheel.advance(100.0)) == ["late", "negative"]


def test_past_deadlines_come_out_in_deadline_order_before_later_ticks() -> None:
    wheel: TimerWheel[float] = TimerWheel(tick=0.01)
    wheel.advance(10.0)
    for deadline in (10.25, 5.0, 3.0, 9.0, 10.0, 10.125, 7.5):
        wheel.schedule(deadline, deadline)
    assert wheel.advance(10.3) == [3.0, 5.0, 7.5, 9.0, 10.0, 10.125, 10.25]


def test_past_deadline_before_any_advance_fires_at_the_first_advance() -> None:
    wheel: TimerWheel[str] = TimerWheel()
    wheel.schedule(0.0, "zero")
    wheel.schedule(-5.0, "negative")
    assert wheel.advance(0.0) == ["negative", "zero"]


def test_same_deadline_items_fire_together() -> None:
    wheel: TimerWheel[int] = TimerWheel()
    for item in range(5):
        wheel.schedule(1.5, item)
    assert wheel.advance(1.49) == []
    assert sorted(wheel.advance(1.5)) == [0, 1, 2, 3, 4]


def test_a_clock_going_backwards_fires_nothing_early() -> None:
    wheel: TimerWheel[str] = TimerWheel()
    wheel.schedule(50.0, "a")
    wheel.schedule(20.0, "b")
    assert wheel.advance(30.0) == ["b"]
    assert wheel.advance(10.0) == []
    assert wheel.advance(49.0) == []
    assert wheel.advance(50.0) == ["a"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_deadline_is_rejected_without_side_effects(bad: float) -> None:
    wheel: TimerWheel[str] = TimerWheel()
    with pytest.raises(ValueError, match="finite"):
        wheel.schedule(bad, "x")
    assert len(wheel) == 0
    assert wheel.next_deadline() is None
    assert wheel.statistics().scheduled_total == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_now_is_rejected(bad: float) -> None:
    wheel: TimerWheel[str] = TimerWheel()
    wheel.schedule(1.0, "x")
    with pytest.raises(ValueError, match="finite"):
        wheel.advance(bad)
    assert wheel.advance(1.0) == ["x"]


# -- cancel and len -----------------------------------------------------------------------------


def test_cancel_before_fire_prevents_it() -> None:
    wheel: TimerWheel[str] = TimerWheel()
    keep = wheel.schedule(1.0, "keep")
    drop = wheel.schedule(1.0, "drop")
    assert len(wheel) == 2
    assert wheel.cancel(drop) is True
    assert len(wheel) == 1
    assert wheel.advance(2.0) == ["keep"]
    assert wheel.cancel(keep) is False


def test_cancel_twice_returns_false_the_second_time() -> None:
    wheel: TimerWheel[str] = TimerWheel()
    timer = wheel.schedule(1.0, "x")
    assert wheel.cancel(timer) is True
    assert wheel.cancel(timer) is False
    assert len(wheel) == 0
    assert wheel.statistics().cancelled_total == 1


def test_cancel_after_fire_returns_false() -> None:
    wheel: TimerWheel[str] = TimerWheel()
    timer = wheel.schedule(1.0, "x")
    assert wheel.advance(1.0) == ["x"]
    assert wheel.cancel(timer) is False
    assert len(wheel) == 0
    assert "done" in repr(timer)


def test_cancel_of_another_wheels_timer_returns_false() -> None:
    first: TimerWheel[str] = TimerWheel()
    second: TimerWheel[str] = TimerWheel()
    timer = first.schedule(1.0, "x")
    second.schedule(1.0, "y")
    assert second.cancel(timer) is False
    assert len(first) == 1
    assert len(second) == 1
    assert first.advance(1.0) == ["x"]


def test_len_counts_live_timers_only() -> None:
    wheel: TimerWheel[int] = TimerWheel()
    timers = [wheel.schedule(float(k), k) for k in range(1, 11)]
    assert len(wheel) == 10
    wheel.cancel(timers[9])
    wheel.cancel(timers[0])
    assert len(wheel) == 8
    assert wheel.advance(5.0) == [2, 3, 4, 5]
    assert len(wheel) == 4


def test_many_cancellations_are_swept_and_do_not_disturb_firing() -> None:
    # More cancellations than live timers plus slots triggers the sweep of dead entries.
    wheel: TimerWheel[int] = TimerWheel(slots=8)
    timers = [wheel.schedule(1.0 + k * 0.37, k) for k in range(200)]
    for timer in timers[:150]:
        assert wheel.cancel(timer)
    assert len(wheel) == 50
    assert wheel.next_deadline() == timers[150].deadline
    # A jump of many rotations: every bucket is visited once, so compare as sets.
    assert sorted(wheel.advance(1000.0)) == list(range(150, 200))


def test_sweeping_cancelled_past_timers_keeps_the_rest() -> None:
    wheel: TimerWheel[int] = TimerWheel(slots=4)
    wheel.advance(500.0)
    timers = [wheel.schedule(400.0 + k, k) for k in range(60)]  # all past: the ready list
    for timer in timers[::2]:
        assert wheel.cancel(timer)
    for timer in timers[1:40:2]:
        assert wheel.cancel(timer)
    assert len(wheel) == 10
    assert wheel.next_deadline() == 441.0
    assert wheel.advance(500.0) == list(range(41, 60, 2))


def test_cancelling_every_timer_leaves_a_wheel_that_works_as_new() -> None:
    # More cancellations than buckets, down to no live timer: the entries are dropped at once.
    wheel: TimerWheel[int] = TimerWheel(tick=0.01, slots=8)
    wheel.advance(10.0)
    timers = [wheel.schedule(10.0 + k * 0.013, k) for k in range(100)]
    timers.append(wheel.schedule(9.0, 100))  # a past deadline: the ready list
    rng = random.Random(5)
    rng.shuffle(timers)
    for timer in timers:
        assert wheel.cancel(timer)
        assert not wheel.cancel(timer)
    assert len(wheel) == 0
    assert wheel.next_deadline() is None
    assert wheel.advance(1000.0) == []
    wheel.schedule(1000.5, 7)
    wheel.schedule(999.0, 8)
    assert wheel.next_deadline() == 999.0
    assert wheel.advance(1000.5) == [8, 7]
    stats = wheel.statistics()
    assert (stats.cancelled_total, stats.fired_total, stats.pending) == (101, 2, 0)


def test_cancelled_entries_stay_bounded_while_the_clock_stands_still() -> None:
    # schedule and cancel, over and over, never advancing: the dead entries must not pile up
    tracemalloc.start()
    try:
        wheel: TimerWheel[int] = TimerWheel(tick=0.01, slots=8)
        keep = wheel.schedule(5.0, -1)
        for k in range(100):  # reach the steady state first
            wheel.cancel(wheel.schedule(1.0 + k * 0.01, k))
        before = tracemalloc.get_traced_memory()[0]
        for k in range(20_000):
            wheel.cancel(wheel.schedule(1.0 + (k % 500) * 0.01, k))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 20,000 dead timers kept would be over a megabyte; a few dozen entries are allowed
    assert grown < 8_000, grown
    assert wheel.advance(5.0) == [-1]
    assert keep.deadline == 5.0


def test_a_mass_cancellation_then_new_timers_fire_exactly_the_live_ones() -> None:
    wheel: TimerWheel[int] = TimerWheel(tick=0.01, slots=16)
    rng = random.Random(9)
    timers = [wheel.schedule(rng.uniform(0.0, 3.0), k) for k in range(2_000)]
    survivors = set(rng.sample(range(2_000), 20))
    for timer in timers:
        if timer.item not in survivors:
            wheel.cancel(timer)
    for k in range(2_000, 2_050):  # each schedule may sweep the dead entries first
        wheel.schedule(rng.uniform(0.0, 3.0), k)
        survivors.add(k)
    fired: list[int] = []
    while (deadline := wheel.next_deadline()) is not None:
        fired += wheel.advance(deadline)
    assert sorted(fired) == sorted(survivors)


# -- rotations and jumps ------------------------------------------------------------------------


def test_delays_of_many_rotations_fire_on_time_not_a_rotation_early() -> None:
    # 8 slots of 1 s: a rotation is 8 s; 100.5 s is twelve rotations away.
    wheel: TimerWheel[str] = TimerWheel(tick=1.0, slots=8)
    wheel.schedule(100.5, "far")
    wheel.schedule(4.5, "near")
    wheel.schedule(12.5, "next-rotation")
    fired: dict[str, float] = {}
    now = 0.0
    while now <= 120.0:
        for item in wheel.advance(now):
            fired[item] = now
        now += 0.25
    assert fired == {"near": 4.5, "next-rotation": 12.5, "far": 100.5}


def test_entries_of_different_rounds_share_a_bucket() -> None:
    wheel: TimerWheel[int] = TimerWheel(tick=1.0, slots=4)
    for rounds in range(6):
        wheel.schedule(2.5 + 4 * rounds, rounds)  # all in bucket 2
    for rounds in range(6):
        deadline = 2.5 + 4 * rounds
        assert wheel.next_deadline() == deadline
        assert wheel.advance(just_before(deadline)) == []
        assert wheel.advance(deadline) == [rounds]


def test_a_jump_of_hours_fires_everything_once() -> None:
    wheel: TimerWheel[int] = TimerWheel(tick=0.01, slots=1024)
    rng = random.Random(3)
    deadlines = [rng.uniform(0.0, 180.0) for _ in range(5000)]
    deadlines += [rng.uniform(180.0, 3600.0) for _ in range(500)]  # many rotations away
    for item, deadline in enumerate(deadlines):
        wheel.schedule(deadline, item)
    fired = wheel.advance(10 * 3600.0)
    assert sorted(fired) == list(range(len(deadlines)))
    assert len(wheel) == 0
    assert wheel.next_deadline() is None
    assert wheel.advance(20 * 3600.0) == []
    # The wheel keeps working on the far side of the jump.
    wheel.schedule(10 * 3600.0 + 5.0, -1)
    assert wheel.advance(10 * 3600.0 + 4.0) == []
    assert wheel.advance(10 * 3600.0 + 5.0) == [-1]


def test_a_jump_keeps_later_timers_and_the_first_rotation_in_order() -> None:
    wheel: TimerWheel[float] = TimerWheel(tick=1.0, slots=8)
    # 1 s ticks, 8 s rotations; 29.5, 31.5, 40.5 and 43.0 are rounds later than 1.5, 3.5, 6.5.
    for deadline in (1.5, 3.5, 6.5, 29.5, 31.5, 40.5, 43.0, 45.0):
        wheel.schedule(deadline, deadline)
    fired = wheel.advance(43.5)
    assert [d for d in fired if d < 9] == [1.5, 3.5, 6.5]
    assert sorted(fired) == [1.5, 3.5, 6.5, 29.5, 31.5, 40.5, 43.0]
    assert wheel.next_deadline() == 45.0
    assert wheel.advance(45.0) == [45.0]


def test_idle_wheel_catches_up_without_losing_timers() -> None:
    wheel: TimerWheel[str] = TimerWheel(tick=0.01, slots=64)
    wheel.schedule(1.0, "a")
    assert wheel.advance(1.0) == ["a"]
    assert wheel.advance(5000.0) == []  # empty: the cursor just moves
    wheel.schedule(5000.5, "b")
    wheel.schedule(5000.25, "c")
    assert wheel.next_deadline() == 5000.25
    assert wheel.advance(5000.3) == ["c"]
    assert wheel.advance(5000.5) == ["b"]


# -- next_deadline ------------------------------------------------------------------------------


def test_next_deadline_is_none_when_empty() -> None:
    wheel: TimerWheel[str] = TimerWheel()
    assert wheel.next_deadline() is None
    timer = wheel.schedule(3.0, "x")
    wheel.cancel(timer)
    assert wheel.next_deadline() is None


def test_next_deadline_is_exact_and_drops_for_an_earlier_timer() -> None:
    wheel: TimerWheel[str] = TimerWheel()
    wheel.schedule(10.123, "b")
    assert wheel.next_deadline() == 10.123
    wheel.schedule(20.0, "c")
    assert wheel.next_deadline() == 10.123
    wheel.schedule(3.3, "a")
    assert wheel.next_deadline() == 3.3


def test_next_deadline_stays_exact_after_cancel_and_advance() -> None:
    wheel: TimerWheel[str] = TimerWheel()
    first = wheel.schedule(1.25, "a")
    wheel.schedule(2.5, "b")
    wheel.schedule(700.75, "c")  # more than one rotation (327.68 s) away
    assert wheel.cancel(first)
    assert wheel.next_deadline() == 2.5
    assert wheel.advance(2.5) == ["b"]
    assert wheel.next_deadline() == 700.75
    assert wheel.advance(700.0) == []
    assert wheel.next_deadline() == 700.75
    assert wheel.advance(700.75) == ["c"]
    assert wheel.next_deadline() is None


def test_driving_by_next_deadline_releases_everything_in_deadline_order() -> None:
    wheel: TimerWheel[int] = TimerWheel(tick=0.01, slots=512)
    rng = random.Random(11)
    deadlines = [rng.uniform(0.0, 20.0) for _ in range(2000)]
    timers = [wheel.schedule(d, i) for i, d in enumerate(deadlines)]
    for timer in timers[::3]:
        wheel.cancel(timer)
    released: list[int] = []
    while (deadline := wheel.next_deadline()) is not None:
        due = wheel.advance(deadline)
        assert due, "advance(next_deadline()) released nothing"
        assert all(deadlines[i] == deadline for i in due)
        released += due
    expected = sorted((i for i in range(2000) if i % 3), key=lambda i: deadlines[i])
    assert released == expected


# -- capacity and configuration -----------------------------------------------------------------


def test_capacity_raises_scheduler_full_and_frees_up() -> None:
    wheel: TimerWheel[str] = TimerWheel(capacity=2)
    first = wheel.schedule(1.0, "a")
    wheel.schedule(2.0, "b")
    with pytest.raises(SchedulerFull, match=r"capacity") as raised:
        wheel.schedule(3.0, "c")
    assert "2" in str(raised.value)
    assert len(wheel) == 2
    wheel.cancel(first)
    wheel.schedule(3.0, "c")  # room again after a cancel
    with pytest.raises(SchedulerFull):
        wheel.schedule(4.0, "d")
    assert wheel.advance(2.0) == ["b"]
    wheel.schedule(4.0, "d")  # room again after a fire
    assert len(wheel) == 2


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"tick": 0}, "tick"),
        ({"tick": -0.5}, "tick"),
        ({"tick": math.nan}, "tick"),
        ({"tick": math.inf}, "tick"),
        ({"tick": 5e-324}, "tick"),
        ({"tick": "0.01"}, "tick"),
        ({"slots": 0}, "slots"),
        ({"slots": 3}, "slots"),
        ({"slots": 1000}, "slots"),
        ({"slots": -8}, "slots"),
        ({"slots": 8.0}, "slots"),
        ({"capacity": 0}, "capacity"),
        ({"capacity": -1}, "capacity"),
        ({"capacity": 1.5}, "capacity"),
    ],
)
def test_invalid_options_raise_configuration_error(options: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        TimerWheel(**options)  # type: ignore[arg-type]
    message = str(raised.value)
    assert f"{name}=" in message
    assert repr(options[name]) in message
    assert "must be" in message
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("slots", [1, 2, 64, 32768])
def test_power_of_two_slots_are_accepted(slots: int) -> None:
    wheel: TimerWheel[str] = TimerWheel(slots=slots, tick=0.5, capacity=1)
    wheel.schedule(100.25, "x")
    assert wheel.advance(100.0) == []
    assert wheel.advance(100.25) == ["x"]


# -- drain and statistics -----------------------------------------------------------------------


def test_drain_returns_every_pending_item_and_empties_the_wheel() -> None:
    wheel: TimerWheel[int] = TimerWheel(tick=0.1, slots=8)
    timers = [wheel.schedule(0.05 + k * 0.7, k) for k in range(40)]  # several rotations
    wheel.cancel(timers[3])
    assert wheel.advance(1.0) == [0, 1]
    wheel.schedule(0.5, 100)  # already past: in the ready list
    drained = wheel.drain()
    assert sorted(drained) == sorted({*range(2, 40), 100} - {3})
    assert len(wheel) == 0
    assert wheel.next_deadline() is None
    assert wheel.advance(1000.0) == []
    assert wheel.cancel(timers[10]) is False
    assert wheel.drain() == []
    wheel.schedule(1001.0, 7)
    assert wheel.advance(1001.0) == [7]


def test_drain_returns_items_earliest_first_within_a_rotation() -> None:
    wheel: TimerWheel[float] = TimerWheel(tick=0.01)
    wheel.advance(10.0)
    for deadline in (12.0, 5.0, 11.0, 3.0, 10.5):
        wheel.schedule(deadline, deadline)
    assert wheel.drain() == [3.0, 5.0, 10.5, 11.0, 12.0]


def test_statistics_count_every_outcome() -> None:
    wheel: TimerWheel[int] = TimerWheel(tick=0.05, slots=16, capacity=10)
    assert wheel.statistics() == WheelStatistics(
        pending=0,
        capacity=10,
        tick=0.05,
        slots=16,
        scheduled_total=0,
        fired_total=0,
        cancelled_total=0,
    )
    timers = [wheel.schedule(float(k), k) for k in range(6)]
    wheel.cancel(timers[5])
    wheel.cancel(timers[5])
    wheel.advance(2.0)
    wheel.drain()
    stats = wheel.statistics()
    assert stats.pending == 0
    assert stats.scheduled_total == 6
    assert stats.fired_total == 3
    assert stats.cancelled_total == 1
    with pytest.raises(AttributeError):
        stats.pending = 5  # type: ignore[misc]


# -- model-based test ---------------------------------------------------------------------------


class WheelAgainstModel(RuleBasedStateMachine):
    """Random interleavings of schedule, cancel, advance and drain against a plain dict."""

    timers = Bundle("timers")

    def __init__(self) -> None:
        super().__init__()
        self.wheel: TimerWheel[int] = TimerWheel(slots=1)  # replaced by configure()
        self.tick = 0.01
        self.slots = 8
        self.model: dict[int, float] = {}  # item -> deadline of the live timers
        self.now = 0.0
        self.advanced = False
        self.next_item = 0

    @initialize(
        tick=st.sampled_from([0.01, 0.1, 1.0, 0.003]),
        slots=st.sampled_from([1, 2, 8, 64]),
        start=st.sampled_from([0.0, 1.0, 1000.0, 1_700_000_000.0]),
    )
    def configure(self, tick: float, slots: int, start: float) -> None:
        self.wheel = TimerWheel(tick=tick, slots=slots, capacity=10_000)
        self.tick = tick
        self.slots = slots
        self.now = start

    @rule(
        target=timers,
        offset=st.one_of(
            st.floats(min_value=-2.0, max_value=60.0),
            st.integers(min_value=-3, max_value=400).map(float),
        ),
        ticks=st.integers(min_value=-2, max_value=300),
        nudge=st.sampled_from([-1, 0, 1]),
        on_tick=st.booleans(),
    )
    def schedule(self, offset: float, ticks: int, nudge: int, on_tick: bool) -> Timer[int]:
        if on_tick:
            # Deadlines on tick boundaries and one ulp either side of them.
            deadline = self.now + ticks * self.tick
            if nudge:
                deadline = math.nextafter(deadline, nudge * math.inf)
        else:
            deadline = self.now + offset * self.tick * 10
        item = self.next_item
        self.next_item += 1
        timer = self.wheel.schedule(deadline, item)
        self.model[item] = deadline
        return timer

    @rule(timer=consumes(timers))
    def cancel(self, timer: Timer[int]) -> None:
        was_pending = timer.item in self.model
        assert self.wheel.cancel(timer) is was_pending
        self.model.pop(timer.item, None)
        assert self.wheel.cancel(timer) is False

    @rule(
        step=st.one_of(
            st.floats(min_value=0.0, max_value=5.0),
            st.integers(min_value=0, max_value=50).map(float),
            st.just(0.0),
        ),
        scale=st.sampled_from([0.1, 1.0, 10.0, 1000.0]),
    )
    def advance(self, step: float, scale: float) -> None:
        previous = self.now
        self.now += step * self.tick * scale
        self._advance_and_check(previous)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def advance_to_a_deadline(self, data: st.DataObject) -> None:
        # The driver's move: advance exactly to next_deadline(), or to one of the deadlines.
        previous = self.now
        expected = min(self.model.values())
        assert self.wheel.next_deadline() == expected
        choice = data.draw(st.sampled_from(sorted(self.model.values())))
        target = expected if data.draw(st.booleans()) else choice
        self.now = max(self.now, target)
        self._advance_and_check(previous)

    def _advance_and_check(self, previous: float) -> None:
        fired = self.wheel.advance(self.now)
        due = {item for item, deadline in self.model.items() if deadline <= self.now}
        assert len(fired) == len(set(fired)), "an item fired twice"
        assert set(fired) == due
        per_tick = 1.0 / self.tick
        if self.advanced and int(self.now * per_tick) - int(previous * per_tick) + 1 <= self.slots:
            # Within one rotation, items come out tick by tick.
            ticks = [int(self.model[item] * per_tick) for item in fired]
            assert ticks == sorted(ticks)
        for item in fired:
            del self.model[item]
        self.advanced = True

    @rule()
    def drain(self) -> None:
        drained = self.wheel.drain()
        assert sorted(drained) == sorted(self.model)
        self.model.clear()

    @invariant()
    def agrees_with_the_model(self) -> None:
        assert len(self.wheel) == len(self.model)
        expected = min(self.model.values()) if self.model else None
        assert self.wheel.next_deadline() == expected
        stats = self.wheel.statistics()
        assert stats.pending == len(self.model)
        assert stats.scheduled_total == self.next_item


TestWheelAgainstModel = WheelAgainstModel.TestCase
TestWheelAgainstModel.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
